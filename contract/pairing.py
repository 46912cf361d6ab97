"""Drawing the two models of a battle: pure functions of the roster, counts, votes and a seeded rng.

Lives in `contract` (numpy only, no Redis) so the bot's pairing step and the analysis simulation
run the same code. Besides the draw it holds the small Bradley–Terry estimate `active` steers by
and the "votes still needed" projection the study status shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from statistics import NormalDist
from typing import NamedTuple

import numpy as np

from contract.keys import pair_field
from contract.records import Strategy

# `active`: the share of draws that are uniform whatever the votes say, so no pair starves and a
# wrong early estimate cannot lock the design in.
ACTIVE_FLOOR = 0.05
# `active`: a model with fewer battles than this (a new study, or a model that joined late) is
# placed first: its least-battled pairs are drawn before the information score takes over.
PLACEMENT_BATTLES = 10
# `active`: an adjacent pair whose intervals are already apart keeps this weight (not 0), so its
# difference still tightens, only more slowly than the pairs whose order is in doubt.
SEPARATED_WEIGHT = 0.25
# Ridge on θ for the running estimate (−log L + PRIOR·Σθ²): keeps a model without decided votes
# (or one that always wins) at a finite rating, with a wide variance that draws votes to it.
PRIOR = 0.01


class PairOutcome(NamedTuple):
    """Decided votes of one unordered pair, keyed by `keys.pair_field(low, high)`."""

    low_wins: float  # wins of the model whose id sorts first
    high_wins: float
    ties: float = 0.0  # ties of either kind; each counts half a win to each side


def all_pairs(roster: Sequence[str]) -> list[tuple[str, str]]:
    """Every unordered pair of distinct models, in a stable (sorted) order."""
    models = sorted(set(roster))
    return list(combinations(models, 2))


@dataclass(frozen=True)
class Estimate:
    """Running Bradley–Terry estimate of a roster (natural-log strengths, centred)."""

    models: tuple[str, ...]  # sorted
    theta: np.ndarray  # (m,)
    cov: np.ndarray  # (m, m) covariance of the centred θ (inverse Fisher information)
    votes: float  # decided votes the estimate rests on
    iterations: int

    def contrast_var(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Var(θ_i − θ_j) for index arrays i, j."""
        c = self.cov
        # numpy types fancy indexing as Any; the result is an array like the indices.
        var: np.ndarray = c[i, i] + c[j, j] - 2 * c[i, j]
        return var


def estimate_strengths(
    roster: Sequence[str],
    outcomes: Mapping[str, PairOutcome],
    *,
    start: np.ndarray | None = None,
    prior: float = PRIOR,
    tol: float = 1e-8,
    max_iter: int = 50,
) -> Estimate:
    """Penalised Bradley–Terry fit of the decided votes, ties half, by Newton's method.

    `start` (θ over the sorted roster, e.g. the previous estimate) warm-starts it; from zero it
    takes 4–8 steps for a few thousand votes. Outcomes of pairs outside the roster are ignored.
    """
    if prior <= 0:
        raise ValueError(f"prior must be > 0 (it keeps unbeaten models finite), got {prior}")
    models = tuple(sorted(set(roster)))
    m = len(models)
    i, j = np.triu_indices(m, 1)
    wins = np.zeros(i.size)
    n = np.zeros(i.size)
    for k, (a, b) in enumerate(zip(i, j, strict=True)):
        got = outcomes.get(pair_field(models[a], models[b]))
        if got is not None:
            low, high, tied = (float(v) for v in got)
            if min(low, high, tied) < 0:
                raise ValueError(f"negative vote count in {models[a]}|{models[b]}: {got!r}")
            wins[k] = low + tied / 2
            n[k] = low + high + tied
    theta = np.zeros(m) if start is None else np.array(start, dtype=float)
    if theta.shape != (m,):
        raise ValueError(f"start must have one value per model ({m}), got shape {theta.shape}")
    ridge = 2 * prior * np.eye(m)
    hess = ridge
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - `it` is reported after the loop
        p = 1 / (1 + np.exp(-(theta[i] - theta[j])))
        resid = wins - n * p
        grad = np.bincount(i, resid, m) - np.bincount(j, resid, m) - 2 * prior * theta
        hess = _laplacian(m, i, j, n * p * (1 - p)) + ridge
        step = np.linalg.solve(hess, grad)
        theta = theta + step
        if np.abs(step).max() < tol:
            break
    centre = np.eye(m) - 1.0 / m
    cov = centre @ np.linalg.inv(hess) @ centre
    return Estimate(models, theta - theta.mean(), cov, float(n.sum()), it)


def _laplacian(m: int, i: np.ndarray, j: np.ndarray, w: np.ndarray) -> np.ndarray:
    lap = np.zeros((m, m))
    lap[i, j] = -w
    lap[j, i] = -w
    lap[np.arange(m), np.arange(m)] = np.bincount(i, w, m) + np.bincount(j, w, m)
    return lap


def _neighbours(est: Estimate, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(upper, lower, intervals_overlap) of each adjacent pair in the current ranking."""
    order = np.argsort(-est.theta, kind="stable")
    upper, lower = order[:-1], order[1:]
    z = NormalDist().inv_cdf(0.5 + level / 2)
    sd = np.sqrt(np.maximum(np.diag(est.cov), 0))
    gap = est.theta[upper] - est.theta[lower]
    return upper, lower, gap < z * (sd[upper] + sd[lower])


def active_scores(
    est: Estimate, pending: np.ndarray | None = None, level: float = 0.95
) -> np.ndarray:
    """Per pair (np.triu_indices order): how much one more vote shrinks the adjacent pairs'
    uncertainty, Σ_k u_k · ΔVar(θ_upper − θ_lower), from the rank-one update of the covariance.

    u_k is 1 for adjacent pairs whose intervals overlap, SEPARATED_WEIGHT otherwise. `pending`
    (battles per pair drawn but not voted yet) is counted as votes already planned, so battles
    drawn concurrently spread out instead of piling on one pair.
    """
    m = len(est.models)
    i, j = np.triu_indices(m, 1)
    p = 1 / (1 + np.exp(-(est.theta[i] - est.theta[j])))
    info = p * (1 - p)  # Fisher information of one vote on the pair's difference
    cov = est.cov
    if pending is not None and pending.any():
        planned = _laplacian(m, i, j, pending * info)
        # Σ' = (Σ⁺ + planned)⁺ in the centred space; Σ⁺ via the +11ᵀ/m trick (Σ1 = 0).
        ones = np.full((m, m), 1.0 / m)
        cov = np.linalg.inv(np.linalg.inv(cov + ones) + planned) - ones
    upper, lower, overlap = _neighbours(est, level)
    weight = np.where(overlap, 1.0, SEPARATED_WEIGHT)
    # (K, P): Cov(c_k·θ, x_p·θ) for contrasts c_k = e_upper − e_lower, x_p = e_i − e_j.
    cross = cov[upper][:, i] - cov[upper][:, j] - cov[lower][:, i] + cov[lower][:, j]
    var_x = cov[i, i] + cov[j, j] - 2 * cov[i, j]
    # numpy types fancy indexing (hence cross, var_x) as Any; the gain is one value per pair.
    gain: np.ndarray = info * (weight @ cross**2) / (1 + info * var_x)
    return gain


def pick_pair(
    roster: Sequence[str],
    strategy: Strategy,
    pair_counts: Mapping[str, int],
    target: int,
    rng: np.random.Generator,
    outcomes: Mapping[str, PairOutcome] | None = None,
) -> tuple[str, str]:
    """The unordered pair to battle next, as (low, high) in sorted order.

    `uniform`: every pair equally likely. `balanced`: among pairs still under `target` battles,
    one of the least-battled (ties broken at random); once every pair has reached the target, as
    `uniform`. `active`: see `pick_active`; `outcomes` are its decided votes (None: no votes
    yet). `pair_counts` (battles drawn per pair, voted or not) and `outcomes` are keyed by
    `keys.pair_field`; missing pairs count 0.
    """
    pairs = all_pairs(roster)
    if not pairs:
        raise ValueError(f"need at least 2 distinct models to draw a pair, got roster {roster!r}")
    if strategy is Strategy.BALANCED:
        counts = np.array([pair_counts.get(pair_field(*p), 0) for p in pairs])
        if counts.min() < target:
            candidates = np.flatnonzero(counts == counts.min())
            return pairs[int(candidates[rng.integers(len(candidates))])]
    elif strategy is Strategy.ACTIVE:
        return pick_active(roster, pair_counts, outcomes or {}, rng)
    elif strategy is not Strategy.UNIFORM:
        raise ValueError(f"unknown pairing strategy {strategy!r}")
    return pairs[int(rng.integers(len(pairs)))]


def pick_active(
    roster: Sequence[str],
    pair_counts: Mapping[str, int],
    outcomes: Mapping[str, PairOutcome],
    rng: np.random.Generator,
    *,
    floor: float = ACTIVE_FLOOR,
    placement: int = PLACEMENT_BATTLES,
) -> tuple[str, str]:
    """`active`, in order: with probability `floor` a uniform pair; else, while some model has
    fewer than `placement` battles, the least-battled pair of the least-battled model; else the
    pair with the highest `active_scores` (ties at random).

    Battles counted in `pair_counts` but not yet decided in `outcomes` are treated as pending
    votes of the pair.
    """
    pairs = all_pairs(roster)
    if not pairs:
        raise ValueError(f"need at least 2 distinct models to draw a pair, got roster {roster!r}")
    if not 0 <= floor <= 1:
        raise ValueError(f"floor must be in [0, 1], got {floor}")
    if rng.random() < floor:
        return pairs[int(rng.integers(len(pairs)))]
    fields = [pair_field(*p) for p in pairs]
    counts = np.array([pair_counts.get(f, 0) for f in fields], dtype=float)
    models = sorted(set(roster))
    m = len(models)
    i, j = np.triu_indices(m, 1)
    per_model = np.bincount(i, counts, m) + np.bincount(j, counts, m)
    if per_model.min() < placement:
        newest = np.flatnonzero(per_model == per_model.min())
        model = int(newest[rng.integers(len(newest))])
        own = np.flatnonzero((i == model) | (j == model))
        least = own[counts[own] == counts[own].min()]
        return pairs[int(least[rng.integers(len(least))])]
    est = estimate_strengths(roster, outcomes)
    decided = np.array([sum(outcomes.get(f, (0.0, 0.0, 0.0))) for f in fields])
    scores = active_scores(est, np.maximum(counts - decided, 0))
    best = np.flatnonzero(scores >= scores.max() * (1 - 1e-9))
    return pairs[int(best[rng.integers(len(best))])]


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
    outcomes: Mapping[str, PairOutcome] | None = None,
) -> tuple[str, str]:
    return order_sides(pick_pair(roster, strategy, pair_counts, target, rng, outcomes), rng)


class NeighbourGap(NamedTuple):
    """One adjacent pair of the current ranking and the votes it still needs to separate."""

    upper: str
    lower: str
    gap: float  # θ_upper − θ_lower (natural-log scale)
    votes_needed: float  # 0 when already apart; inf when the two are estimated equal


def votes_still_needed(
    theta: np.ndarray, cov: np.ndarray, votes: float, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each adjacent pair of the ranking by θ: (upper index, lower index, further votes).

    Further votes until the two models' `level` intervals (θ ± z·sd, sd from `cov`) no longer
    overlap, assuming the gap stays at its estimate and the votes keep falling as they have so
    far, so every sd shrinks as √(votes / (votes + x)): x = votes·((z(sd_u + sd_l)/gap)² − 1).
    0 when already apart, inf when the gap is 0 or nothing has been voted.
    """
    theta = np.asarray(theta, dtype=float)
    cov = np.asarray(cov, dtype=float)
    if theta.ndim != 1 or cov.shape != (theta.size, theta.size):
        raise ValueError(f"theta (m,) and cov (m, m) expected, got {theta.shape}, {cov.shape}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    order = np.argsort(-theta, kind="stable")
    upper, lower = order[:-1], order[1:]
    z = NormalDist().inv_cdf(0.5 + level / 2)
    sd = np.sqrt(np.maximum(np.diag(cov), 0))
    gap = theta[upper] - theta[lower]
    width = z * (sd[upper] + sd[lower])
    with np.errstate(divide="ignore", invalid="ignore"):
        needed = np.where(gap > 0, votes * ((width / gap) ** 2 - 1), np.inf)
    needed = np.where(gap >= width, 0.0, needed)
    if votes <= 0:
        needed = np.where(gap >= width, 0.0, np.inf)
    return upper, lower, np.ceil(needed)


def neighbour_gaps(
    roster: Sequence[str], outcomes: Mapping[str, PairOutcome], level: float = 0.95
) -> list[NeighbourGap]:
    """`votes_still_needed` from the study's own running estimate (what `/study status` shows)."""
    est = estimate_strengths(roster, outcomes)
    upper, lower, needed = votes_still_needed(est.theta, est.cov, est.votes, level)
    return [
        NeighbourGap(est.models[u], est.models[lo], float(est.theta[u] - est.theta[lo]), float(x))
        for u, lo, x in zip(upper, lower, needed, strict=True)
    ]
