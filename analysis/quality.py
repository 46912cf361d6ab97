"""Per-participant vote-quality statistics, computed from an export (Chatbot Arena style).

Three signs that a participant's votes may not be honest judgements, each kept as a number so a
researcher can judge and filter (nothing here deletes a vote):

- **Against the board**: each decisive vote gets a p-value under the fitted Bradley–Terry model
  (the chance of an outcome at least as surprising: `P(winner)` when the winner was the less
  likely side, 1 otherwise); a participant's p-values are combined with Fisher's method
  (−2 Σ ln p ~ χ²(2n)), as Chatbot Arena's anomalous-user detection does. Ties carry no evidence.
- **Position bias**: the share of decisive votes for side A, with a two-sided binomial test
  against 1/2 (A/B order is a fair coin, so an honest voter is near 1/2).
- **Speed**: the median seconds from both replies shown to the vote (`vote_delay_s`).

A participant is listed as anomalous when any test is below `alpha` after a Bonferroni correction
over the participants tested, or the median vote is faster than `fast_median_s`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

DECISIVE = ("model_a", "model_b")


@dataclass(frozen=True)
class QualityOptions:
    alpha: float = 0.01  # family-wise, Bonferroni over the participants tested
    min_votes: int = 10  # fewer decisive votes than this: not tested
    fast_median_s: float = 3.0

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.min_votes < 1:
            raise ValueError(f"min_votes must be >= 1, got {self.min_votes}")
        if self.fast_median_s < 0:
            raise ValueError(f"fast_median_s must be >= 0, got {self.fast_median_s}")


def vote_p_values(battles: pd.DataFrame, ratings: Mapping[str, float]) -> pd.Series:
    """Per battle, the p-value of its outcome under `ratings` (Elo scale, 400·log10); NaN for ties,
    unvoted battles and models without a rating."""
    ra = battles["model_a"].map(ratings).to_numpy(dtype=float)
    rb = battles["model_b"].map(ratings).to_numpy(dtype=float)
    p_a = 1.0 / (1.0 + np.power(10.0, (rb - ra) / 400.0))
    winner = battles["winner"].to_numpy()
    p_winner = np.where(winner == "model_a", p_a, np.where(winner == "model_b", 1.0 - p_a, np.nan))
    p_value = np.where(p_winner < 0.5, p_winner, 1.0)
    return pd.Series(np.where(np.isnan(p_winner), np.nan, p_value), index=battles.index)


def fisher_combined(p_values: np.ndarray) -> float:
    """Fisher's combined p-value of independent tests; 1.0 for none."""
    p = np.clip(np.asarray(p_values, dtype=float), 1e-300, 1.0)
    if p.size == 0:
        return 1.0
    return float(stats.chi2.sf(-2.0 * np.log(p).sum(), 2 * p.size))


def participant_quality(
    battles: pd.DataFrame,
    ratings: Mapping[str, float],
    options: QualityOptions | None = None,
) -> pd.DataFrame:
    """One row per participant with a vote: the statistics above and `anomalous` with `reasons`."""
    options = options or QualityOptions()
    voted = battles[battles["winner"].fillna("") != ""].copy()
    voted["_p"] = vote_p_values(voted, ratings)
    voted["_decisive"] = voted["winner"].isin(DECISIVE)
    voted["_a"] = voted["winner"] == "model_a"
    has_delay = "vote_delay_s" in voted.columns
    rows = []
    for participant, group in voted.groupby("participant", sort=True):
        decisive = group[group["_decisive"]]
        n = len(decisive)
        wins_a = int(decisive["_a"].sum())
        rows.append(
            {
                "participant": participant,
                "votes": len(group),
                "decisive": n,
                "fisher_p": fisher_combined(decisive["_p"].dropna().to_numpy()),
                "share_a": wins_a / n if n else np.nan,
                "position_p": float(stats.binomtest(wins_a, n, 0.5).pvalue) if n else 1.0,
                "median_vote_s": (
                    float(pd.to_numeric(group["vote_delay_s"], errors="coerce").median())
                    if has_delay
                    else np.nan
                ),
            }
        )
    table = pd.DataFrame(
        rows,
        columns=[
            "participant",
            "votes",
            "decisive",
            "fisher_p",
            "share_a",
            "position_p",
            "median_vote_s",
        ],
    )
    tested = table["decisive"] >= options.min_votes
    threshold = options.alpha / max(int(tested.sum()), 1)
    reasons: list[str] = []
    for row, is_tested in zip(table.itertuples(index=False), tested, strict=True):
        why = []
        if is_tested and row.fisher_p < threshold:
            why.append("against_board")
        if is_tested and row.position_p < threshold:
            why.append("position_bias")
        if not np.isnan(row.median_vote_s) and row.median_vote_s < options.fast_median_s:
            why.append("fast_median")
        reasons.append(",".join(why))
    table["reasons"] = reasons
    table["anomalous"] = table["reasons"] != ""
    return table


def anomalous_participants(quality: pd.DataFrame) -> frozenset[str]:
    return frozenset(quality.loc[quality["anomalous"], "participant"].astype(str))
