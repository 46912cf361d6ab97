"""Per-participant vote quality: planted anomalies are found, honest voters are not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.quality import (
    QualityOptions,
    anomalous_participants,
    fisher_combined,
    participant_quality,
    vote_p_values,
)

RATINGS = {"strong": 1200.0, "mid": 1000.0, "weak": 800.0}


def honest_votes(rng: np.random.Generator, participant: str, n: int) -> list[dict[str, object]]:
    models = list(RATINGS)
    rows = []
    for _ in range(n):
        a, b = rng.choice(models, size=2, replace=False)
        p_a = 1 / (1 + 10 ** ((RATINGS[b] - RATINGS[a]) / 400))
        winner = "model_a" if rng.random() < p_a else "model_b"
        rows.append(
            {
                "participant": participant,
                "model_a": a,
                "model_b": b,
                "winner": winner,
                "vote_delay_s": float(rng.uniform(8, 30)),
            }
        )
    return rows


def test_vote_p_values_golden() -> None:
    battles = pd.DataFrame(
        {
            "model_a": ["strong", "strong", "strong", "strong"],
            "model_b": ["weak", "weak", "weak", "unknown"],
            "winner": ["model_a", "model_b", "tie", "model_b"],
        }
    )
    p = vote_p_values(battles, RATINGS)
    upset = 1 / (1 + 10 ** (400 / 400))  # weak beats strong: 1/11
    assert p.iloc[0] == 1.0
    assert p.iloc[1] == pytest.approx(upset)
    assert np.isnan(p.iloc[2])
    assert np.isnan(p.iloc[3])


def test_fisher_matches_scipy() -> None:
    from scipy import stats

    ps = np.array([0.01, 0.2, 0.5, 1.0])
    assert fisher_combined(ps) == pytest.approx(stats.combine_pvalues(ps, method="fisher").pvalue)
    assert fisher_combined(np.array([])) == 1.0


def test_planted_anomalies_are_found_and_honest_voters_are_not() -> None:
    rng = np.random.default_rng(5)
    rows: list[dict[str, object]] = []
    for i in range(30):
        rows += honest_votes(rng, f"honest{i}", 40)
    # Always the weaker model: against the board.
    for row in honest_votes(rng, "contrarian", 40):
        weaker_is_a = RATINGS[str(row["model_a"])] < RATINGS[str(row["model_b"])]
        rows.append({**row, "winner": "model_a" if weaker_is_a else "model_b"})
    # Always A.
    rows += [{**r, "winner": "model_a"} for r in honest_votes(rng, "clicker", 40)]
    # Honest choices, no time to read.
    rows += [{**r, "vote_delay_s": 1.0} for r in honest_votes(rng, "speedy", 40)]
    quality = participant_quality(pd.DataFrame(rows), RATINGS, QualityOptions(alpha=0.01))
    found = anomalous_participants(quality)
    assert found == {"contrarian", "clicker", "speedy"}
    reasons = dict(zip(quality["participant"], quality["reasons"], strict=True))
    assert "against_board" in reasons["contrarian"]
    assert "position_bias" in reasons["clicker"]
    assert reasons["speedy"] == "fast_median"


def test_few_votes_are_not_tested() -> None:
    rows = [{**r, "winner": "model_a"} for r in honest_votes(np.random.default_rng(1), "p", 5)]
    quality = participant_quality(pd.DataFrame(rows), RATINGS, QualityOptions(min_votes=10))
    assert not quality["anomalous"].any()


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="alpha"):
        QualityOptions(alpha=1.5)
