"""Point fit plus a vectorised multinomial bootstrap of the Bradley–Terry ratings.

A bootstrap round that redraws battles with replacement only changes how many battles fall in
each (pair, outcome) cell, so each round is one multinomial draw over the cells, and all rounds
of a chunk are fitted together (see `bradley_terry`). That is what makes 10,000 rounds cheap.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TypedDict

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from analysis.bradley_terry import (
    Fit,
    PairDesign,
    TieMode,
    fit_bradley_terry,
    fit_davidson,
    is_connected,
    refit_bradley_terry,
)
from analysis.pairs import BOTH_BAD, I_WINS, TIE, PairCounts, outcomes

# Rounds fitted together; bounds memory at chunk × models² floats for the Hessians.
DEFAULT_CHUNK = 500


class FitOptions(TypedDict, total=False):
    """The keyword options of `fit_ratings` that callers pass through (`topic_leaderboards`)."""

    ties: TieMode
    bothbad_as_tie: bool
    seed: int | None
    alpha: float
    chunk: int
    progress: bool
    participants: sp.csr_matrix | None


@dataclass(frozen=True)
class Ratings:
    """A fitted study: point θ, bootstrap θ per round and per-round empirical pair win rates."""

    pairs: PairCounts
    theta: np.ndarray  # (m,)
    log_nu: float | None  # Davidson's tie parameter, else None
    boot_theta: np.ndarray  # (R, m); R = 0 without a bootstrap
    boot_pair_win_rate: np.ndarray  # (R, P) float32: i's wins + half ties over the pair's battles
    ties: TieMode
    bothbad_as_tie: bool
    rounds: int
    seed: int | None
    resample: str = "battles"  # what a bootstrap round redraws: battles or participants

    @property
    def models(self) -> tuple[str, ...]:
        return self.pairs.models


def _fit(
    design: PairDesign,
    counts: np.ndarray,
    ties: TieMode,
    bothbad: bool,
    *,
    alpha: float,
    start: np.ndarray | None = None,
) -> Fit:
    wins_i, wins_j, tied = outcomes(counts, ties, bothbad)
    if ties is TieMode.DAVIDSON:
        return fit_davidson(design, wins_i, wins_j, tied, alpha=alpha, init=start)
    if start is not None:
        return refit_bradley_terry(design, wins_i, wins_j, start, alpha=alpha)
    return fit_bradley_terry(design, wins_i, wins_j, alpha=alpha)


def pair_win_rate(counts: np.ndarray) -> np.ndarray:
    """(…, P, 4) → i's share of each pair's battles, ties (both kinds) counting half."""
    n = counts.sum(axis=-1)
    score = counts[..., I_WINS] + 0.5 * (counts[..., TIE] + counts[..., BOTH_BAD])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, score / np.where(n > 0, n, 1), np.nan)


def fit_ratings(
    pairs: PairCounts,
    *,
    ties: TieMode = TieMode.HALF,
    bothbad_as_tie: bool = True,
    rounds: int = 1000,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
    alpha: float = 0.0,
    chunk: int = DEFAULT_CHUNK,
    progress: bool = False,
    participants: sp.csr_matrix | None = None,
) -> Ratings:
    """Fit the point estimate, then `rounds` bootstrap rounds drawn with `rng`.

    Pass either a Generator (`rng`) or a `seed` (recorded in the signature); rounds=0 skips the
    bootstrap. With `participants` (`pairs.participant_counts`: U × cells) a round redraws U
    participants with replacement, each with all their votes, instead of the battles one by one.
    Raises when the comparison graph is not connected: ratings of models that were
    never compared, even indirectly, are not identified.
    """
    if rounds < 0:
        raise ValueError(f"rounds must be >= 0, got {rounds}")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    if rng is None:
        if rounds > 0 and seed is None:
            raise ValueError("a bootstrap needs a seed or a numpy Generator")
        rng = np.random.default_rng(seed)
    design = pairs.design
    wins_i, wins_j, tied = outcomes(pairs.counts, ties, bothbad_as_tie)
    # A penalty (alpha > 0) identifies every rating, compared or not; plain ML needs one graph.
    if alpha == 0 and not is_connected(design, wins_i + wins_j + tied):
        raise ValueError(
            f"the comparison graph of {list(pairs.models)} is not connected under ties={ties}: "
            "some models were never compared, directly or through others (collect more "
            "battles, or pass alpha > 0 / --alpha for penalised ratings)"
        )
    point = _fit(design, pairs.counts, ties, bothbad_as_tie, alpha=alpha)
    if not point.converged:
        warnings.warn(
            f"the Bradley–Terry fit did not converge in {point.iterations} iterations; a model "
            "that never wins (or never loses) has no finite maximum-likelihood rating "
            "(pass alpha > 0 / --alpha for penalised ratings)",
            RuntimeWarning,
            stacklevel=2,
        )
    if participants is not None and participants.shape[1] != pairs.counts.size:
        raise ValueError(
            f"participant counts have {participants.shape[1]} cells, pairs {pairs.counts.size}"
        )
    # Multinomial redraw of battles = multinomial redraw of the non-empty cells.
    flat = pairs.counts.reshape(-1)
    nonzero = np.flatnonzero(flat)
    total = int(flat.sum())
    probs = flat[nonzero] / total
    boot_theta = np.empty((rounds, design.n_models))
    boot_rate = np.empty((rounds, design.pair_i.size), dtype=np.float32)
    with tqdm(total=rounds, desc="bootstrap", unit="round", disable=not progress) as bar:
        for start in range(0, rounds, chunk):
            size = min(chunk, rounds - start)
            if participants is None:
                draws = np.zeros((size, flat.size))
                draws[:, nonzero] = rng.multinomial(total, probs, size=size)
            else:
                users = participants.shape[0]
                times = rng.multinomial(users, np.full(users, 1.0 / users), size=size)
                draws = np.asarray((participants.T @ times.T).T, dtype=float)
            counts = draws.reshape(size, *pairs.counts.shape)
            fit = _fit(design, counts, ties, bothbad_as_tie, alpha=alpha, start=point.theta)
            boot_theta[start : start + size] = fit.theta
            boot_rate[start : start + size] = pair_win_rate(counts)
            bar.update(size)
    return Ratings(
        pairs=pairs,
        theta=point.theta,
        log_nu=None if point.log_nu is None else float(point.log_nu),
        boot_theta=boot_theta,
        boot_pair_win_rate=boot_rate,
        ties=ties,
        bothbad_as_tie=bothbad_as_tie,
        rounds=rounds,
        seed=seed,
        resample="battles" if participants is None else "participants",
    )


def rank_by_ci(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Chatbot Arena's rank: 1 + the number of models whose lower bound is above my upper bound."""
    lo, hi = np.asarray(lo), np.asarray(hi)
    rank: np.ndarray = 1 + (lo[None, :] > hi[:, None]).sum(axis=1)
    return rank
