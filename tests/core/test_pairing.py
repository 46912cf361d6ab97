"""Golden cases of pair drawing: pure functions with a seeded rng, no Redis."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from bot.core.pairing import all_pairs, draw_battle_models, order_sides, pick_pair
from contract.keys import pair_field
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
