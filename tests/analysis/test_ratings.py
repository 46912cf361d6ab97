"""The bootstrap, CI ranks and the leaderboard / pairwise tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.bradley_terry import TieMode
from analysis.leaderboard import leaderboard, matrix, pairwise
from analysis.pairs import count_pairs
from analysis.ratings import fit_ratings, rank_by_ci
from analysis.simulate import simulate_battles

TRUTH = dict(zip(["a", "b", "c", "d", "e", "f"], np.linspace(-0.8, 0.8, 6), strict=True))


def test_rank_by_ci_as_chatbot_arena() -> None:
    # Model 0 clearly beats everyone; 1 and 2 overlap; 3 is below all.
    lo = np.array([1200.0, 1090, 1080, 900])
    hi = np.array([1250.0, 1150, 1140, 950])
    np.testing.assert_array_equal(rank_by_ci(lo, hi), [1, 2, 2, 4])
    # Intervals that only touch (a lower bound equal to an upper bound) are not separated.
    np.testing.assert_array_equal(
        rank_by_ci(np.array([1100.0, 1000]), np.array([1200.0, 1100])), [1, 1]
    )


def test_bootstrap_is_seeded_and_chunking_does_not_change_it() -> None:
    pairs = count_pairs(simulate_battles(TRUTH, 800, np.random.default_rng(0)))
    one = fit_ratings(pairs, rounds=300, seed=4)
    again = fit_ratings(pairs, rounds=300, seed=4, chunk=7)
    other = fit_ratings(pairs, rounds=300, seed=5)
    np.testing.assert_allclose(one.boot_theta, again.boot_theta, atol=1e-9)
    assert not np.allclose(one.boot_theta, other.boot_theta)


# Votes follow plain BT; with tie_rate > 0 ties come at random, independent of strength, so
# dropping them keeps the estimand the true θ (counting them half would shrink it towards 0).
@pytest.mark.parametrize(("ties", "tie_rate"), [(TieMode.HALF, 0.0), (TieMode.DROP, 0.15)])
def test_intervals_cover_the_truth_at_about_the_nominal_rate(
    ties: TieMode, tie_rate: float
) -> None:
    truth = np.array(list(TRUTH.values()))
    truth = 1000 + 400 / np.log(10) * (truth - truth.mean())
    covered = total = 0
    for seed in range(40):
        battles = simulate_battles(
            TRUTH, 1500, np.random.default_rng(1000 + seed), tie_rate=tie_rate
        )
        table = leaderboard(fit_ratings(count_pairs(battles), rounds=300, seed=seed, ties=ties))
        table = table.set_index("model").loc[list(TRUTH)]
        covered += int(((table["rating_lo"] <= truth) & (truth <= table["rating_hi"])).sum())
        total += len(truth)
    # 240 intervals at 95%: the binomial sd of the rate is 1.4 points.
    assert 0.90 <= covered / total <= 0.99, f"coverage {covered}/{total}"


def _wald_half_width(pairs, theta: np.ndarray, z: float) -> np.ndarray:
    """z × the asymptotic standard error of each Elo rating, from the Fisher information of the
    Bradley–Terry likelihood (the ratings are centred: the pseudo-inverse's covariance)."""
    i, j = pairs.design.pair_i, pairs.design.pair_j
    n = pairs.counts.sum(axis=1)
    p = 1 / (1 + np.exp(theta[j] - theta[i]))
    info = np.zeros((theta.size, theta.size))
    w = n * p * (1 - p)
    np.add.at(info, (i, i), w)
    np.add.at(info, (j, j), w)
    np.add.at(info, (i, j), -w)
    np.add.at(info, (j, i), -w)
    return z * 400 / np.log(10) * np.sqrt(np.diag(np.linalg.pinv(info)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_intervals_are_as_wide_as_a_95_percent_interval_should_be(seed: int) -> None:
    """Coverage alone cannot tell a 95% interval from a 97.5% one with a few hundred intervals;
    the width can. The bootstrap's half-width must match 1.96 standard errors within a few
    percent: a wider interval (97.5%: 2.24 SE) fails as surely as a narrower one (90%: 1.64)."""
    battles = simulate_battles(TRUTH, 3000, np.random.default_rng(50 + seed), tie_rate=0.0)
    pairs = count_pairs(battles)
    ratings = fit_ratings(pairs, rounds=1000, seed=seed)
    table = leaderboard(ratings).set_index("model").loc[list(pairs.models)]
    half = (table["rating_hi"] - table["rating_lo"]).to_numpy() / 2
    expected = _wald_half_width(pairs, ratings.theta, 1.959964)
    ratio = float(np.mean(half / expected))
    assert 0.93 <= ratio <= 1.07, f"interval half-width is {ratio:.3f} × 1.96 SE"


def test_leaderboard_has_the_design_columns() -> None:
    battles = simulate_battles(TRUTH, 3000, np.random.default_rng(2))
    table = leaderboard(fit_ratings(count_pairs(battles), rounds=200, seed=0))
    for col in (
        "model",
        "rating",
        "rating_lo",
        "rating_hi",
        "strength_pct",
        "rank",
        "battles",
        "win_rate",
    ):
        assert col in table.columns
    assert table["rating"].mean() == pytest.approx(1000)
    assert table["strength_pct"].sum() == pytest.approx(100)
    assert (table["rating_lo"] <= table["rating"]).all()
    assert (table["rating"] <= table["rating_hi"]).all()
    assert table["battles"].sum() == 2 * 3000
    assert list(table["model"]) == ["f", "e", "d", "c", "b", "a"]


def test_pairwise_tables_are_consistent() -> None:
    battles = simulate_battles(TRUTH, 3000, np.random.default_rng(3))
    ratings = fit_ratings(count_pairs(battles), rounds=200, seed=0)
    table = pairwise(ratings)
    win = matrix(table, "win_rate", list(TRUTH))
    off_diagonal = ~np.eye(len(TRUTH), dtype=bool)
    np.testing.assert_allclose((win.to_numpy() + win.T.to_numpy())[off_diagonal], 1.0)
    counts = matrix(table, "battles", list(TRUTH))
    np.testing.assert_array_equal(counts.fillna(0), counts.T.fillna(0))
    assert counts.fillna(0).to_numpy().sum() == 2 * 3000
    # The strongest and weakest differ by 1.6 in θ: clearly significant.
    row = table[(table["model"] == "f") & (table["opponent"] == "a")].iloc[0]
    assert row["significant"]
    assert row["win_rate_lo"] <= row["win_rate"] <= row["win_rate_hi"]


def test_disconnected_comparisons_fail_loudly() -> None:
    battles = pd.DataFrame(
        {"model_a": ["a", "c"], "model_b": ["b", "d"], "winner": ["model_a", "model_b"]}
    )
    with pytest.raises(ValueError, match="not connected"):
        fit_ratings(count_pairs(battles), rounds=0)


def test_bootstrap_needs_a_seed() -> None:
    pairs = count_pairs(simulate_battles(TRUTH, 100, np.random.default_rng(0)))
    with pytest.raises(ValueError, match="seed"):
        fit_ratings(pairs, rounds=10)


def test_a_penalty_rates_disconnected_models() -> None:
    battles = pd.DataFrame(
        {
            "model_a": ["a", "c", "a"],
            "model_b": ["b", "d", "b"],
            "winner": ["model_a", "model_b", "tie"],
        }
    )
    table = leaderboard(fit_ratings(count_pairs(battles), rounds=20, seed=0, alpha=0.1))
    ratings = table.set_index("model")["rating"]
    assert ratings["a"] > ratings["b"]
    assert ratings["d"] > ratings["c"]
    assert table["rating"].mean() == pytest.approx(1000)
