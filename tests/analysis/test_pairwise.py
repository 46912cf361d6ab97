"""`analysis.leaderboard.pairwise` on a hand-built fit: golden values for the table's columns,
both directions of each pair, the bootstrap p-value and its significance threshold.

The fit is built by hand (not fitted) so every bootstrap difference is chosen: ties at 0,
differences between 0 and 1, a pair whose rounds all agree. Mutation survivors of the first
mutmut run (docs/testing.md) each fail one of these tests.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from analysis.bradley_terry import PairDesign, TieMode
from analysis.leaderboard import pairwise
from analysis.pairs import PairCounts
from analysis.ratings import Ratings

MODELS = ("a", "b", "c")
# Pairs (a, b), (a, c), (b, c); counts per pair: i wins, j wins, tie, both bad.
COUNTS = np.array([[6, 2, 1, 1], [3, 5, 0, 0], [4, 4, 2, 0]])
THETA = np.array([0.4, 0.1, -0.5])
COLUMNS = [
    "model",
    "opponent",
    "battles",
    "win_rate",
    "win_rate_lo",
    "win_rate_hi",
    "predicted",
    "predicted_lo",
    "predicted_hi",
    "p_value",
    "significant",
]


def _boot_theta() -> np.ndarray:
    """20 rounds; θ_c is 0, so each pair's difference is set through θ_a and θ_b."""
    # a - b: 4 rounds at or below 0 (two of them exactly 0), 16 in (0, 1): p = 2 * 4/20 = 0.4.
    d_ab = np.array([-0.3, -0.1, 0.0, 0.0] + [0.5] * 16)
    # b - c: mostly negative, one 0, three in (0, 1): >= 0 is the smaller side, p = 2 * 4/20.
    d_bc = np.array([-0.7] * 16 + [0.0, 0.2, 0.4, 0.6])
    theta_b = d_bc
    theta_a = d_ab + theta_b
    return np.column_stack([theta_a, theta_b, np.zeros(20)])


def _ratings(boot_theta: np.ndarray, boot_rates: np.ndarray | None = None) -> Ratings:
    rounds = boot_theta.shape[0]
    design = PairDesign(3, np.array([0, 0, 1]), np.array([1, 2, 2]))
    if boot_rates is None:
        rng = np.random.default_rng(7)
        boot_rates = rng.uniform(0.2, 0.8, size=(rounds, 3)).astype(np.float32)
    return Ratings(
        pairs=PairCounts(MODELS, design, COUNTS),
        theta=THETA,
        log_nu=None,
        boot_theta=boot_theta,
        boot_pair_win_rate=boot_rates,
        ties=TieMode.HALF,
        bothbad_as_tie=True,
        rounds=rounds,
        seed=None,
    )


def _row(table: pd.DataFrame, model: str, opponent: str) -> pd.Series:
    [index] = table.index[(table["model"] == model) & (table["opponent"] == opponent)]
    return table.loc[index]


def test_layout_both_directions_sorted_with_a_plain_index() -> None:
    table = pairwise(_ratings(_boot_theta()))
    assert list(table.columns) == COLUMNS
    assert list(table.index) == list(range(6))
    assert list(zip(table["model"], table["opponent"], strict=True)) == [
        ("a", "b"),
        ("a", "c"),
        ("b", "a"),
        ("b", "c"),
        ("c", "a"),
        ("c", "b"),
    ]
    assert table["battles"].dtype.kind == "i"
    assert list(table["battles"]) == [10, 8, 10, 10, 8, 10]


def test_observed_and_predicted_win_rates() -> None:
    table = pairwise(_ratings(_boot_theta()))
    # a vs b: 6 wins and 2 half-counting ties of 10.
    assert _row(table, "a", "b")["win_rate"] == pytest.approx(0.7)
    assert _row(table, "b", "a")["win_rate"] == pytest.approx(0.3)
    for _, row in table.iterrows():
        i, j = MODELS.index(row["model"]), MODELS.index(row["opponent"])
        assert row["predicted"] == pytest.approx(expit(THETA[i] - THETA[j]))


def test_intervals_at_the_level_asked_and_mirrored_for_the_opponent() -> None:
    ratings = _ratings(_boot_theta())
    level = 0.8  # not the default: an interval computed at the default level fails
    table = pairwise(ratings, level=level)
    rates = ratings.boot_pair_win_rate.astype(float)
    diffs = ratings.boot_theta[:, [0, 0, 1]] - ratings.boot_theta[:, [1, 2, 2]]
    for p, (m, o) in enumerate([("a", "b"), ("a", "c"), ("b", "c")]):
        forward, back = _row(table, m, o), _row(table, o, m)
        lo, hi = np.quantile(rates[:, p], [0.1, 0.9])
        assert (forward["win_rate_lo"], forward["win_rate_hi"]) == pytest.approx((lo, hi))
        assert (back["win_rate_lo"], back["win_rate_hi"]) == pytest.approx((1 - hi, 1 - lo))
        lo, hi = np.quantile(expit(diffs[:, p]), [0.1, 0.9])
        assert (forward["predicted_lo"], forward["predicted_hi"]) == pytest.approx((lo, hi))
        assert (back["predicted_lo"], back["predicted_hi"]) == pytest.approx((1 - hi, 1 - lo))
        assert back["predicted"] == pytest.approx(1 - forward["predicted"])
        assert back["p_value"] == forward["p_value"]


def test_p_value_counts_ties_on_both_sides() -> None:
    table = pairwise(_ratings(_boot_theta()))
    assert _row(table, "a", "b")["p_value"] == pytest.approx(0.4)
    assert _row(table, "b", "c")["p_value"] == pytest.approx(0.4)
    # a - c = d_ab + d_bc: 16 rounds below 0, then 0.5, 0.7, 0.9, 1.1 -> p = 2 * 4/20.
    assert _row(table, "a", "c")["p_value"] == pytest.approx(0.4)


def test_p_value_is_at_most_one() -> None:
    """Every round the same ratings: the difference is 0 in every round, both sides count it."""
    table = pairwise(_ratings(np.zeros((20, 3))))
    assert list(table["p_value"]) == [1.0] * 6
    assert not table["significant"].any()


def test_significant_means_below_one_minus_the_level() -> None:
    # a - b is 0 in 5 of 40 rounds, 1 in the rest: p = 2 * 5/40 = 0.25, not below 1 - 0.75
    # (both exact in binary), so not significant at 75 %; b - c and a - c never <= 0: p = 0.
    boot = np.zeros((40, 3))
    boot[:, 1] = 1.0  # b - c = 1
    boot[:, 0] = 2.0  # a - b = 1 ...
    boot[:5, 0] = 1.0  # ... but 0 in five rounds
    table = pairwise(_ratings(boot), level=0.75)
    assert _row(table, "a", "b")["p_value"] == 0.25
    assert not _row(table, "a", "b")["significant"]
    assert not _row(table, "b", "a")["significant"]
    assert _row(table, "b", "c")["significant"]
    assert _row(table, "c", "a")["significant"]
    loose = pairwise(_ratings(boot), level=0.5)
    assert loose["significant"].all()


def test_one_round_still_has_intervals() -> None:
    one = pairwise(_ratings(_boot_theta()[:1]))
    assert one["win_rate_lo"].notna().all()
    assert one["p_value"].notna().all()


def test_no_bootstrap_leaves_intervals_and_p_values_missing() -> None:
    # Quietly: no quantile or mean of zero rounds (each warns "All-NaN slice" / "Mean of empty").
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = pairwise(_ratings(np.zeros((0, 3)), np.zeros((0, 3), np.float32)))
    for column in ("win_rate_lo", "win_rate_hi", "predicted_lo", "predicted_hi", "p_value"):
        assert table[column].dtype == np.float64, column
        assert table[column].isna().all(), column
    assert table["win_rate"].notna().all()
    assert not table["significant"].any()
