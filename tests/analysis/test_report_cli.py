"""The CLI as docs/interfaces.md states it, and the HTML report on the real static table."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.cli import main
from analysis.report import build_report
from analysis.signature import parley_version
from tests.analysis.paths import data_dir

LEADERBOARD_COLUMNS = [
    "model",
    "rating",
    "rating_lo",
    "rating_hi",
    "strength_pct",
    "rank",
    "battles",
    "win_rate",
]


@pytest.fixture(scope="module")
def battles_csv(tmp_path_factory: pytest.TempPathFactory, study_battles: pd.DataFrame) -> Path:
    path = tmp_path_factory.mktemp("battles") / "battles.csv"
    unvoted = study_battles.head(5).assign(battle_id=lambda f: f["battle_id"] + "-u", winner="")
    pd.concat([study_battles, unvoted]).to_csv(path, index=False)
    return path


def test_leaderboard_command(
    battles_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "leaderboard",
            str(battles_csv),
            "--out",
            str(tmp_path),
            "--rounds",
            "100",
            "--seed",
            "3",
            "--cap",
            "500",
            "--no-progress",
        ]
    )
    assert code == 0
    table = pd.read_csv(tmp_path / "leaderboard.csv")
    assert list(table.columns[: len(LEADERBOARD_COLUMNS)]) == LEADERBOARD_COLUMNS
    signature = (
        f"votes:2000|filters:unvoted,flagged=identity_leak,cap=500|rounds:100|seed:3|ties:half|"
        f"bothbad:tie|resample:battles|style:none|parley:{parley_version()}"
    )
    assert set(table["signature"]) == {signature}
    assert (tmp_path / "signature.txt").read_text().strip() == signature
    assert signature in capsys.readouterr().out
    filters = pd.read_csv(tmp_path / "filters.csv")
    assert filters.set_index("filter").loc["unvoted", "removed"] == 5


def test_correlate_command_on_the_real_table(battles_csv: Path, tmp_path: Path) -> None:
    d = data_dir()
    code = main(
        [
            "correlate",
            str(battles_csv),
            "--benchmarks",
            str(d / "talkarena_static_scores.csv"),
            "--meta",
            str(d / "talkarena_static_benchmarks.csv"),
            "--out",
            str(tmp_path),
            "--rounds",
            "100",
            "--ties",
            "davidson",
            "--no-progress",
        ]
    )
    assert code == 0
    corr = pd.read_csv(tmp_path / "correlations.csv")
    for col in ("benchmark", "n_models", "kendall_tau", "kendall_p", "spearman_rho", "spearman_p"):
        assert col in corr.columns
    assert len(corr) == 18
    assert (corr["n_models"] == 11).all()
    assert corr["signature"].str.contains("ties:davidson").all()
    for name in ("pca_variance", "pca_loadings", "mixed_effects", "vif_screen", "leaderboard"):
        assert (tmp_path / f"{name}.csv").exists(), name


def test_winrates_command(battles_csv: Path, tmp_path: Path) -> None:
    assert (
        main(
            [
                "winrates",
                str(battles_csv),
                "--out",
                str(tmp_path),
                "--rounds",
                "50",
                "--bothbad",
                "drop",
                "--no-progress",
            ]
        )
        == 0
    )
    counts = (
        pd.read_csv(tmp_path / "battle_counts.csv").set_index("model").drop(columns="signature")
    )
    assert counts.shape == (11, 11)
    assert "p_value" in pd.read_csv(tmp_path / "winrates.csv").columns


def test_bad_input_gives_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "b.csv"
    pd.DataFrame({"model_a": ["x"], "model_b": ["y"], "winner": ["left"]}).to_csv(bad, index=False)
    assert main(["leaderboard", str(bad), "--no-progress"]) == 2
    assert "unknown winner value(s) ['left']" in capsys.readouterr().err


def _images(html: str) -> list[str]:
    return re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)


def test_report_on_the_real_static_table(study_battles: pd.DataFrame, tmp_path: Path) -> None:
    d = data_dir()
    path = build_report(
        study_battles.drop(columns=["transcript"]),
        tmp_path,
        benchmarks=d / "talkarena_static_scores.csv",
        meta=d / "talkarena_static_benchmarks.csv",
        rounds=200,
        seed=1,
    )
    html = path.read_text()
    assert path == tmp_path / "report.html"
    # Leaderboard, win rates, battle counts, correlations, PCA: five embedded figures.
    assert len(_images(html)) == 5
    for heading in ("Leaderboard", "Head to head", "Static benchmarks", "Topics", "Methods"):
        assert f"<h2>{heading}</h2>" in html
    assert "no transcripts" in html
    assert "votes:2000|filters:unvoted,flagged=identity_leak|rounds:200|seed:1" in html
    assert "GPT4o" in html
    assert "slurp_intent" in html
    for name in ("leaderboard", "winrates", "correlations", "mixed_effects", "filters"):
        assert (tmp_path / f"{name}.csv").exists(), name
    assert not (tmp_path / "topics.csv").exists()
    assert "<script" not in html
    assert "http" not in html.split("</style>")[1]


def test_report_without_benchmarks_from_the_cli(battles_csv: Path, tmp_path: Path) -> None:
    assert (
        main(
            [
                "report",
                str(battles_csv),
                "--out",
                str(tmp_path),
                "--rounds",
                "50",
                "--no-topics",
                "--no-progress",
            ]
        )
        == 0
    )
    html = (tmp_path / "report.html").read_text()
    assert "No benchmark table given" in html
    assert len(_images(html)) == 3


@pytest.mark.slow
def test_report_and_topics_command_with_transcripts(
    study_battles: pd.DataFrame, battles_csv: Path, tmp_path: Path
) -> None:
    path = build_report(study_battles, tmp_path / "report", rounds=100, seed=0)
    html = path.read_text()
    assert len(_images(html)) == 4  # leaderboard, win rates, counts, topic shares
    shares = pd.read_csv(tmp_path / "report" / "topics.csv")
    assert shares["share"].sum() == pytest.approx(1.0)
    assert (tmp_path / "report" / "topic_leaderboards.csv").exists()
    assert (
        main(
            [
                "topics",
                str(battles_csv),
                "--k",
                "4",
                "--rounds",
                "50",
                "--out",
                str(tmp_path / "topics"),
                "--no-progress",
            ]
        )
        == 0
    )
    assigned = pd.read_csv(tmp_path / "topics" / "topic_assignments.csv")
    assert len(assigned) == len(study_battles)
    assert set(assigned["topic"]) == {0, 1, 2, 3}


def test_report_on_a_tiny_study_with_unknown_models(tmp_path: Path) -> None:
    from analysis.simulate import simulate_battles

    battles = simulate_battles(
        {"demo-a": 0.3, "demo-b": -0.3}, 12, np.random.default_rng(0), with_transcripts=False
    )
    d = data_dir()
    path = build_report(
        battles,
        tmp_path,
        benchmarks=d / "talkarena_static_scores.csv",
        meta=d / "talkarena_static_benchmarks.csv",
        rounds=50,
        seed=0,
    )
    html = path.read_text()
    assert "Correlations skipped: only 0 rated model(s)" in html
    assert "no transcripts" in html
