"""Drawing the two models of a battle: pure functions of the roster, counts and a seeded rng."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np

from contract.keys import pair_field
from contract.records import Strategy


def all_pairs(roster: Sequence[str]) -> list[tuple[str, str]]:
    """Every unordered pair of distinct models, in a stable (sorted) order."""
    models = sorted(set(roster))
    return list(combinations(models, 2))


def pick_pair(
    roster: Sequence[str],
    strategy: Strategy,
    pair_counts: Mapping[str, int],
    target: int,
    rng: np.random.Generator,
) -> tuple[str, str]:
    """The unordered pair to battle next, as (low, high) in sorted order.

    `uniform`: every pair equally likely. `balanced`: among pairs still under `target` battles,
    one of the least-battled (ties broken at random); once every pair has reached the target, as
    `uniform`. `pair_counts` is keyed by `keys.pair_field`; missing pairs count 0.
    """
    pairs = all_pairs(roster)
    if not pairs:
        raise ValueError(f"need at least 2 distinct models to draw a pair, got roster {roster!r}")
    if strategy is Strategy.BALANCED:
        counts = np.array([pair_counts.get(pair_field(*p), 0) for p in pairs])
        if counts.min() < target:
            candidates = np.flatnonzero(counts == counts.min())
            return pairs[int(candidates[rng.integers(len(candidates))])]
    elif strategy is not Strategy.UNIFORM:
        raise ValueError(f"unknown pairing strategy {strategy!r}")
    return pairs[int(rng.integers(len(pairs)))]


def order_sides(pair: tuple[str, str], rng: np.random.Generator) -> tuple[str, str]:
    """(model_a, model_b): which model shows first is a fair coin, so position bias averages out."""
    first, second = pair
    return (second, first) if rng.random() < 0.5 else (first, second)


def draw_battle_models(
    roster: Sequence[str],
    strategy: Strategy,
    pair_counts: Mapping[str, int],
    target: int,
    rng: np.random.Generator,
) -> tuple[str, str]:
    return order_sides(pick_pair(roster, strategy, pair_counts, target, rng), rng)
