"""Tables over fitted ratings: the leaderboard and the pairwise win-rate / battle-count tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit

from analysis.bradley_terry import to_elo, to_strength_pct
from analysis.pairs import BOTH_BAD, I_WINS, J_WINS, TIE
from analysis.ratings import Ratings, pair_win_rate, rank_by_ci

CI_LEVEL = 0.95
# How many battles a model needs before its rating means much. TTS Arena lists a model only from
# 100 votes and marks it preliminary under 300; Parley keeps every model on the board (a small
# study must still see its data) but marks it, and the report says the board is preliminary.
MIN_BATTLES = 100
PRELIMINARY_BATTLES = 300


def _quantiles(samples: np.ndarray, level: float = CI_LEVEL) -> tuple[np.ndarray, np.ndarray]:
    tail = (1 - level) / 2
    return np.nanquantile(samples, tail, axis=0), np.nanquantile(samples, 1 - tail, axis=0)


def leaderboard(ratings: Ratings, level: float = CI_LEVEL) -> pd.DataFrame:
    """One row per model, best first; columns as docs/interfaces.md's leaderboard.csv.

    Without bootstrap rounds the interval collapses to the point rating (and ranks are by
    rating alone).
    """
    pairs = ratings.pairs
    rating = to_elo(ratings.theta)
    if ratings.rounds > 0:
        lo, hi = _quantiles(to_elo(ratings.boot_theta), level)
        # With few votes (or a fit that did not converge) every bootstrap round can land on one
        # side of the point estimate; an interval that leaves out its own estimate is nonsense.
        lo, hi = np.minimum(lo, rating), np.maximum(hi, rating)
    else:
        lo, hi = rating.copy(), rating.copy()
    m = len(pairs.models)
    c = pairs.counts
    i, j = pairs.design.pair_i, pairs.design.pair_j
    battles = np.bincount(i, c.sum(axis=1), m) + np.bincount(j, c.sum(axis=1), m)
    tied = c[:, TIE] + c[:, BOTH_BAD]
    wins = np.bincount(i, c[:, I_WINS], m) + np.bincount(j, c[:, J_WINS], m)
    ties = np.bincount(i, tied, m) + np.bincount(j, tied, m)
    table = pd.DataFrame(
        {
            "model": pairs.models,
            "rating": rating,
            "rating_lo": lo,
            "rating_hi": hi,
            "strength_pct": to_strength_pct(ratings.theta),
            "rank": rank_by_ci(lo, hi) if ratings.rounds > 0 else _plain_rank(rating),
            "battles": battles.astype(int),
            "win_rate": (wins + ties / 2) / np.maximum(battles, 1),
            "wins": wins.astype(int),
            "ties": ties.astype(int),
            "losses": (battles - wins - ties).astype(int),
            "preliminary": battles < PRELIMINARY_BATTLES,
        }
    )
    return table.sort_values(["rating"], ascending=False, kind="stable").reset_index(drop=True)


def data_warnings(board: pd.DataFrame) -> list[str]:
    """What the leaderboard's amount of data does not support, in words for the report/CLI."""
    notes = []
    few = board[board["battles"] < MIN_BATTLES]
    if not few.empty:
        listed = ", ".join(f"{m} ({n})" for m, n in zip(few["model"], few["battles"], strict=True))
        notes.append(
            f"Too few battles to rank: {listed} — under {MIN_BATTLES} battles a model's rating "
            "is shown for information only."
        )
    if board["preliminary"].any():
        notes.append(
            f"This leaderboard is preliminary: a model needs {PRELIMINARY_BATTLES} battles "
            f"before its rating is settled, and {int(board['preliminary'].sum())} of "
            f"{len(board)} have fewer (the fewest: {int(board['battles'].min())})."
        )
    return notes


def _plain_rank(rating: np.ndarray) -> np.ndarray:
    rank: np.ndarray = 1 + (rating[None, :] > rating[:, None]).sum(axis=1)
    return rank


def pairwise(ratings: Ratings, level: float = CI_LEVEL) -> pd.DataFrame:
    """Both directions of every pair that met: observed and BT-predicted win rate, CIs, test.

    `p_value` is the two-sided bootstrap p-value of "the two ratings are equal"; `significant`
    says whether the rating difference's CI excludes 0 at `level`.
    """
    pairs = ratings.pairs
    i, j = pairs.design.pair_i, pairs.design.pair_j
    theta = ratings.theta
    observed = pair_win_rate(pairs.counts)
    predicted = expit(theta[i] - theta[j])
    if ratings.rounds > 0:
        obs_lo, obs_hi = _quantiles(ratings.boot_pair_win_rate.astype(float), level)
        diff = ratings.boot_theta[:, i] - ratings.boot_theta[:, j]
        pred_lo, pred_hi = _quantiles(expit(diff), level)
        p_value = np.minimum(1.0, 2 * np.minimum((diff <= 0).mean(0), (diff >= 0).mean(0)))
    else:
        obs_lo = obs_hi = pred_lo = pred_hi = p_value = np.full(i.size, np.nan)
    one_way = pd.DataFrame(
        {
            "model": np.asarray(pairs.models)[i],
            "opponent": np.asarray(pairs.models)[j],
            "battles": pairs.counts.sum(axis=1).astype(int),
            "win_rate": observed,
            "win_rate_lo": obs_lo,
            "win_rate_hi": obs_hi,
            "predicted": predicted,
            "predicted_lo": pred_lo,
            "predicted_hi": pred_hi,
            "p_value": p_value,
        }
    )
    flipped = one_way.rename(columns={"model": "opponent", "opponent": "model"}).assign(
        win_rate=1 - one_way["win_rate"],
        win_rate_lo=1 - one_way["win_rate_hi"],
        win_rate_hi=1 - one_way["win_rate_lo"],
        predicted=1 - one_way["predicted"],
        predicted_lo=1 - one_way["predicted_hi"],
        predicted_hi=1 - one_way["predicted_lo"],
    )
    both = pd.concat([one_way, flipped[one_way.columns]], ignore_index=True)
    both["significant"] = both["p_value"] < (1 - level)
    return both.sort_values(["model", "opponent"]).reset_index(drop=True)


def matrix(table: pd.DataFrame, value: str, order: list[str]) -> pd.DataFrame:
    """Long pairwise table → models × opponents matrix of `value` (NaN where they never met)."""
    return table.pivot(index="model", columns="opponent", values=value).reindex(
        index=order, columns=order
    )
