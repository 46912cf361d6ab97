"""The report's vote-quality parts: why battles were dropped (flags by name, anomalous
participants) and the per-participant quality table with the anomalous ones marked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.filters import FilterConfig
from analysis.report import build_report, flag_counts
from tests.analysis.test_quality import honest_votes


def study_with_planted_voters() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows: list[dict[str, object]] = []
    for i in range(12):
        rows += honest_votes(rng, f"honest{i}", 30)
    rows += [{**r, "winner": "model_a"} for r in honest_votes(rng, "clicker", 40)]
    battles = pd.DataFrame(rows)
    battles["battle_id"] = [f"b{i}" for i in range(len(battles))]
    battles["tstamp"] = pd.Timestamp("2026-11-01", tz="UTC") + pd.to_timedelta(
        np.arange(len(battles)), unit="min"
    )
    flags = [""] * len(battles)
    flags[0] = "identity_leak"
    flags[1] = "identity_leak,fast_vote"
    flags[2] = "fast_vote"
    battles["flags"] = flags
    return battles


def test_flag_counts_read_the_comma_separated_column() -> None:
    battles = pd.DataFrame({"flags": ["identity_leak", "identity_leak,fast_vote", "", None]})
    assert flag_counts(battles) == {"fast_vote": 1, "identity_leak": 2}
    assert flag_counts(pd.DataFrame({"winner": ["tie"]})) == {}


def test_the_report_says_why_battles_were_dropped_and_marks_anomalous_voters(
    tmp_path: Path,
) -> None:
    battles = study_with_planted_voters()
    path = build_report(battles, tmp_path / "kept", rounds=20, seed=0, topics=False)
    text = path.read_text()
    assert "Vote quality per participant" in text
    # The default drops identity_leak battles (2 of them) and says so, flags by name.
    assert "<code>flagged=identity_leak</code>: 2 dropped (2 identity_leak)" in text
    assert "1 fast_vote" in text or "2 fast_vote" in text
    assert "⚠️ anomalous" in text
    assert "their votes are in the ratings" in text
    quality = pd.read_csv(tmp_path / "kept" / "participant_quality.csv")
    marked = dict(zip(quality["participant"], quality["anomalous"], strict=True))
    assert marked["clicker"]
    assert not any(v for k, v in marked.items() if k.startswith("honest"))

    path = build_report(
        battles,
        tmp_path / "excluded",
        rounds=20,
        seed=0,
        topics=False,
        filters=FilterConfig(exclude_anomalous=True),
    )
    text = path.read_text()
    assert "<code>anomalous=1</code>: 40 dropped (1 participant(s): anomalous)" in text
    assert "left out of the ratings (--exclude-anomalous)" in text
    # Still listed, so a reader sees who was left out.
    assert "clicker" in text
