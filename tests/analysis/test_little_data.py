"""The analysis must not overclaim from little data: intervals contain their estimate, a small
board is marked preliminary with warnings in the report, and `correlate` fails early and says
which ids matched nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import cli
from analysis import study as study_module
from analysis.leaderboard import MIN_BATTLES, PRELIMINARY_BATTLES, data_warnings, leaderboard
from analysis.pairs import count_pairs
from analysis.ratings import fit_ratings
from analysis.report import build_report
from analysis.simulate import simulate_battles

ONE_VOTE = pd.DataFrame(
    {
        "battle_id": ["b1"],
        "tstamp": [pd.Timestamp("2026-01-01", tz="UTC")],
        "participant": ["p1"],
        "model_a": ["alpha"],
        "model_b": ["beta"],
        "winner": ["model_a"],
    }
)


def test_one_vote_gives_an_interval_that_contains_its_estimate() -> None:
    with pytest.warns(RuntimeWarning, match="did not converge"):
        ratings = fit_ratings(count_pairs(ONE_VOTE), rounds=200, seed=0)
    board = leaderboard(ratings)
    assert (board["rating_lo"] <= board["rating"]).all()
    assert (board["rating"] <= board["rating_hi"]).all()
    assert board["preliminary"].all()
    notes = data_warnings(board)
    assert any("preliminary" in note for note in notes)
    assert any(f"under {MIN_BATTLES} battles" in note for note in notes)


def test_a_big_enough_board_is_not_preliminary() -> None:
    truth = {"a": -0.3, "b": 0.0, "c": 0.3}
    battles = simulate_battles(truth, 3 * PRELIMINARY_BATTLES, np.random.default_rng(0))
    board = leaderboard(fit_ratings(count_pairs(battles), rounds=100, seed=0))
    assert not board["preliminary"].any()
    assert data_warnings(board) == []


def test_the_report_of_one_vote_warns_and_claims_no_separation(tmp_path: Path) -> None:
    with pytest.warns(RuntimeWarning, match="did not converge"):
        path = build_report(ONE_VOTE, tmp_path, rounds=100, seed=0, topics=False)
    text = path.read_text()
    assert "<h2>Warnings</h2>" in text
    assert "preliminary" in text
    assert "did not converge" in text  # the fit's warning is in the report, not only on stderr
    assert "Every pair of models is separated" not in text


def _scores(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "scores.csv"
    pd.DataFrame({"model": rows, "bench": np.arange(len(rows), dtype=float)}).to_csv(
        path, index=False
    )
    return path


def test_correlate_names_the_ids_that_matched_nothing_before_any_bootstrap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    battles = simulate_battles(
        {"qwen-audio": 0.0, "diva": 0.2, "gpt4o": 0.4}, 60, np.random.default_rng(1)
    )
    battles_csv = tmp_path / "battles.csv"
    battles.to_csv(battles_csv, index=False)
    scores = _scores(tmp_path, ["Qwen-Audio", "SALMONN", "Typhoon"])

    def no_fit(*args: object, **kwargs: object) -> None:
        raise AssertionError("the ratings were fitted before the benchmark table was checked")

    monkeypatch.setattr(study_module, "fit_ratings", no_fit)
    code = cli.main(
        ["correlate", str(battles_csv), "--benchmarks", str(scores), "--rounds", "10000"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "matched no table row: ['diva', 'gpt4o']" in err
    assert "SALMONN" in err
