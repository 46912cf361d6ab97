"""Golden cases of pair drawing: pure functions with a seeded rng, no Redis."""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
import pytest

from contract.keys import pair_field
from contract.pairing import (
    PairOutcome,
    active_scores,
    all_pairs,
    draw_battle_models,
    estimate_strengths,
    neighbour_gaps,
    order_sides,
    pick_active,
    pick_pair,
    votes_still_needed,
)
from contract.records import Strategy

ROSTER = ["delta", "alpha", "gamma", "beta"]


def test_all_pairs_are_the_sorted_unordered_pairs() -> None:
    assert all_pairs(ROSTER) == [
        ("alpha", "beta"),
        ("alpha", "delta"),
        ("alpha", "gamma"),
        ("beta", "delta"),
        ("beta", "gamma"),
        ("delta", "gamma"),
    ]
    assert all_pairs(["a", "a"]) == []


def test_uniform_covers_all_pairs_about_equally() -> None:
    rng = np.random.default_rng(2024)
    draws = Counter(pick_pair(ROSTER, Strategy.UNIFORM, {}, 50, rng) for _ in range(12_000))
    assert set(draws) == set(all_pairs(ROSTER))
    # 2,000 expected per pair; binomial sd ~ 41, so ±200 is ~5 sd.
    assert all(abs(n - 2000) < 200 for n in draws.values()), draws


def test_uniform_ignores_counts() -> None:
    rng = np.random.default_rng(1)
    counts = {pair_field("alpha", "beta"): 1000}
    draws = Counter(pick_pair(ROSTER, Strategy.UNIFORM, counts, 50, rng) for _ in range(600))
    assert draws[("alpha", "beta")] > 50


def test_balanced_picks_the_least_battled_pair() -> None:
    counts = {pair_field(*p): 5 for p in all_pairs(ROSTER)}
    counts[pair_field("beta", "gamma")] = 2
    rng = np.random.default_rng(0)
    for _ in range(50):
        assert pick_pair(ROSTER, Strategy.BALANCED, counts, 50, rng) == ("beta", "gamma")


def test_balanced_breaks_ties_among_least_battled_at_random() -> None:
    counts = {pair_field(*p): 5 for p in all_pairs(ROSTER)}
    counts[pair_field("alpha", "beta")] = 1
    counts[pair_field("delta", "gamma")] = 1
    rng = np.random.default_rng(3)
    draws = Counter(pick_pair(ROSTER, Strategy.BALANCED, counts, 50, rng) for _ in range(400))
    assert set(draws) == {("alpha", "beta"), ("delta", "gamma")}
    assert min(draws.values()) > 150


def test_balanced_fills_every_pair_to_the_target() -> None:
    rng = np.random.default_rng(5)
    counts: dict[str, int] = {}
    for _ in range(6 * 10):
        pair = pick_pair(ROSTER, Strategy.BALANCED, counts, 10, rng)
        counts[pair_field(*pair)] = counts.get(pair_field(*pair), 0) + 1
    assert sorted(counts.values()) == [10] * 6


def test_balanced_is_uniform_once_every_pair_reached_the_target() -> None:
    counts = {pair_field(*p): 10 for p in all_pairs(ROSTER)}
    counts[pair_field("alpha", "beta")] = 30
    rng = np.random.default_rng(9)
    draws = Counter(pick_pair(ROSTER, Strategy.BALANCED, counts, 10, rng) for _ in range(600))
    assert len(draws) == 6


def test_sides_are_a_fair_coin() -> None:
    rng = np.random.default_rng(11)
    firsts = Counter(order_sides(("alpha", "beta"), rng)[0] for _ in range(4000))
    assert abs(firsts["alpha"] - 2000) < 200
    assert abs(firsts["beta"] - 2000) < 200


def test_same_seed_same_draws() -> None:
    def draws(seed: int) -> list[tuple[str, str]]:
        rng = np.random.default_rng(seed)
        return [draw_battle_models(ROSTER, Strategy.UNIFORM, {}, 50, rng) for _ in range(20)]

    assert draws(42) == draws(42)
    assert draws(42) != draws(43)


def test_too_small_roster_fails_loudly() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        pick_pair(["alpha"], Strategy.UNIFORM, {}, 50, np.random.default_rng(0))


# --- active ---------------------------------------------------------------------------------

TEN = [f"m{k}" for k in range(10)]


def _votes(theta: dict[str, float], per_pair: int) -> dict[str, PairOutcome]:
    """Expected vote counts (no noise) of `per_pair` votes on every pair under BT."""
    out = {}
    for low, high in all_pairs(list(theta)):
        p = 1 / (1 + np.exp(theta[high] - theta[low]))
        out[pair_field(low, high)] = PairOutcome(per_pair * p, per_pair * (1 - p), 0.0)
    return out


def test_estimate_recovers_two_model_odds() -> None:
    est = estimate_strengths(["a", "b"], {"a|b": PairOutcome(30, 10, 0)})
    # ML: θ_a − θ_b = log 3; the ridge (0.01·Σθ²) pulls it in by well under 1%.
    assert est.theta[0] - est.theta[1] == pytest.approx(np.log(3), rel=0.01)
    # Var(θ_a − θ_b) = 1 / (n p (1 − p)) = 1 / (40 · 3/16).
    assert est.contrast_var(np.array([0]), np.array([1]))[0] == pytest.approx(1 / 7.5, rel=0.02)
    assert est.votes == 40


def test_estimate_counts_ties_half_and_ignores_pairs_off_the_roster() -> None:
    est = estimate_strengths(
        ["a", "b"], {"a|b": PairOutcome(10, 10, 20), "a|zz": PairOutcome(50, 0, 0)}
    )
    assert est.theta == pytest.approx([0.0, 0.0], abs=1e-9)
    with pytest.raises(ValueError, match="negative"):
        estimate_strengths(["a", "b"], {"a|b": PairOutcome(-1, 0, 0)})


def test_warm_start_converges_in_fewer_steps() -> None:
    theta = dict(zip(TEN, np.linspace(1, -1, 10), strict=True))
    votes = _votes(theta, 40)
    cold = estimate_strengths(TEN, votes)
    warm = estimate_strengths(TEN, votes, start=cold.theta)
    np.testing.assert_allclose(warm.theta, cold.theta, atol=1e-7)
    assert warm.iterations < cold.iterations


def test_active_places_a_model_that_joined_late_first() -> None:
    theta = dict(zip(TEN[:9], np.linspace(1, -1, 9), strict=True))
    votes = _votes(theta, 30)
    counts = {f: 30 for f in votes}
    rng = np.random.default_rng(0)
    for _ in range(20):
        pair = pick_active(TEN, counts, votes, rng, floor=0.0)
        assert "m9" in pair
        counts[pair_field(*pair)] = counts.get(pair_field(*pair), 0) + 1


def test_active_spends_votes_on_the_pair_whose_order_is_in_doubt() -> None:
    # a is far ahead; b and c are level: only b|c's order is uncertain.
    votes = {
        "a|b": PairOutcome(45, 5, 0),
        "a|c": PairOutcome(45, 5, 0),
        "b|c": PairOutcome(10, 10, 0),
    }
    counts = {f: 50 for f in votes}
    rng = np.random.default_rng(1)
    draws = Counter(pick_active(["a", "b", "c"], counts, votes, rng, floor=0.0) for _ in range(50))
    assert draws == Counter({("b", "c"): 50})


def test_active_spreads_pending_battles_instead_of_piling_on_one_pair() -> None:
    theta = dict(zip(TEN, np.linspace(1, -1, 10), strict=True))
    votes = _votes(theta, 20)
    counts = {f: 20 for f in votes}
    rng = np.random.default_rng(2)
    first = pick_active(TEN, counts, votes, rng, floor=0.0)
    drawn = Counter()
    for _ in range(30):  # 30 battles drawn, none voted yet
        pair = pick_active(TEN, counts, votes, rng, floor=0.0)
        drawn[pair] += 1
        counts[pair_field(*pair)] += 1
    assert first in drawn
    assert len(drawn) >= 5, drawn


def test_active_floor_is_uniform() -> None:
    rng = np.random.default_rng(4)
    votes = {"a|b": PairOutcome(45, 5, 0), "a|c": PairOutcome(45, 5, 0), "b|c": PairOutcome(10, 10)}
    counts = {f: 50 for f in votes}
    draws = Counter(pick_active(["a", "b", "c"], counts, votes, rng, floor=1.0) for _ in range(600))
    assert all(abs(n - 200) < 60 for n in draws.values()), draws


def test_active_without_votes_balances_and_is_seeded() -> None:
    def draws(seed: int) -> list[tuple[str, str]]:
        rng = np.random.default_rng(seed)
        return [draw_battle_models(ROSTER, Strategy.ACTIVE, {}, 50, rng) for _ in range(20)]

    assert draws(7) == draws(7)
    assert set(draws(7)) <= {side for p in all_pairs(ROSTER) for side in (p, p[::-1])}


def test_active_takes_a_few_milliseconds_for_ten_models() -> None:
    theta = dict(zip(TEN, np.linspace(1, -1, 10), strict=True))
    votes = _votes(theta, 40)
    counts = {f: 40 for f in votes}
    rng = np.random.default_rng(5)
    start = time.perf_counter()
    for _ in range(50):
        pick_active(TEN, counts, votes, rng, floor=0.0)
    assert (time.perf_counter() - start) / 50 < 0.01  # measured ≈ 0.5 ms; 10 ms is the alarm


def test_active_scores_prefer_neighbours_to_distant_pairs() -> None:
    theta = dict(zip(TEN, np.linspace(1, -1, 10), strict=True))
    est = estimate_strengths(TEN, _votes(theta, 40))
    scores = active_scores(est)
    i, j = np.triu_indices(10, 1)
    assert scores[(j - i) == 1].min() > 1.5 * scores[(j - i) >= 5].max()


# --- votes still needed ---------------------------------------------------------------------


def test_votes_still_needed_golden() -> None:
    theta = np.array([0.0, 0.5, 0.45])
    cov = np.diag([0.04, 0.04, 0.01])  # sds 0.2, 0.2, 0.1
    upper, lower, needed = votes_still_needed(theta, cov, votes=100)
    assert list(upper) == [1, 2]
    assert list(lower) == [2, 0]
    # 1 vs 2: gap 0.05, width 1.96·0.3 = 0.588 → 100·((0.588/0.05)² − 1)
    z = 1.959963984540054
    assert needed[0] == np.ceil(100 * ((z * 0.3 / 0.05) ** 2 - 1))
    # 2 vs 0: gap 0.45, width 1.96·0.3 = 0.588 → 100·((0.588/0.45)² − 1) = 70.7 → 71
    assert needed[1] == np.ceil(100 * ((z * 0.3 / 0.45) ** 2 - 1)) == 71


def test_votes_still_needed_is_zero_when_apart_and_inf_when_level() -> None:
    _, _, needed = votes_still_needed(np.array([1.0, 0.0, 0.0]), np.eye(3) * 0.01, votes=50)
    assert needed[0] == 0
    assert needed[1] == np.inf
    _, _, none_yet = votes_still_needed(np.array([0.1, 0.0]), np.eye(2), votes=0)
    assert none_yet[0] == np.inf
    with pytest.raises(ValueError, match="level"):
        votes_still_needed(np.zeros(2), np.eye(2), 10, level=1.5)


def test_neighbour_gaps_from_the_running_estimate() -> None:
    theta = dict(zip(["a", "b", "c"], [1.0, 0.0, -0.05], strict=True))
    gaps = neighbour_gaps(["a", "b", "c"], _votes(theta, 200))
    assert [(g.upper, g.lower) for g in gaps] == [("a", "b"), ("b", "c")]
    assert gaps[0].votes_needed == 0
    assert 1000 < gaps[1].votes_needed < np.inf
