"""Bradley–Terry (and Davidson) maximum-likelihood fits over pair counts, batched over rounds.

Every fit here works on *pair cells*, not battles: for each unordered pair (i, j) with i < j the
counts of i-wins, j-wins and ties. A bootstrap round only changes those counts, so one call fits a
whole (rounds × pairs) array at once with a batched Newton iteration on a (rounds × models) array.
Cost scales with pairs and models, never with battles.

Parameters are natural-log strengths θ (P(i beats j) = σ(θ_i − θ_j)), centred to mean 0. The
penalty `alpha` follows choix: the objective is −log L + alpha · Σ θ².
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

# 400·log10 scale, as Elo and Chatbot Arena: 400/ln(10) rating points per unit of θ.
ELO_SCALE = 400.0 / np.log(10.0)
ELO_MEAN = 1000.0
# A Newton step longer than this (in θ units) is shortened: it keeps separable rounds (a model
# that never wins in one bootstrap draw) from jumping to huge values in one step.
MAX_STEP = 4.0
# Added to the Newton matrix only (the fixed point, gradient = 0, is unchanged): keeps the solve
# defined when a bootstrap round leaves a model with no battles or splits the comparison graph.
RIDGE = 1e-8


class TieMode(StrEnum):
    HALF = "half"  # a tie is half a win for each side
    DAVIDSON = "davidson"  # Davidson (1970): ties get their own probability, with parameter ν
    DROP = "drop"  # ties are left out of the fit


@dataclass(frozen=True)
class PairDesign:
    """The comparison graph: which model is i and j in each pair cell."""

    n_models: int
    pair_i: np.ndarray  # (P,) int, i < j
    pair_j: np.ndarray  # (P,) int

    def __post_init__(self) -> None:
        if self.pair_i.shape != self.pair_j.shape or self.pair_i.ndim != 1:
            raise ValueError(
                f"pair_i and pair_j must be 1-D of one length, got {self.pair_i.shape} "
                f"and {self.pair_j.shape}"
            )
        if self.pair_i.size and (
            self.pair_i.min() < 0 or max(self.pair_i.max(), self.pair_j.max()) >= self.n_models
        ):
            raise ValueError(f"pair indices out of range for {self.n_models} models")

    @property
    def signed_incidence(self) -> sp.csr_matrix:
        """(P, m): +1 at i, −1 at j; gradient = residual @ this."""
        p = self.pair_i.size
        rows = np.concatenate([np.arange(p), np.arange(p)])
        cols = np.concatenate([self.pair_i, self.pair_j])
        vals = np.concatenate([np.ones(p), -np.ones(p)])
        return sp.csr_matrix((vals, (rows, cols)), shape=(p, self.n_models))

    @property
    def incidence(self) -> sp.csr_matrix:
        """(P, m): 1 at both i and j; the Laplacian's diagonal = weights @ this."""
        return abs(self.signed_incidence).tocsr()


@dataclass(frozen=True)
class Fit:
    """θ of shape (R, m) (or (m,) for a single fit) and, for Davidson, log ν per round."""

    theta: np.ndarray
    log_nu: np.ndarray | None
    iterations: int
    converged: bool


def is_connected(design: PairDesign, n: np.ndarray) -> bool:
    """Whether the models form one connected comparison graph over pairs with n > 0."""
    from scipy.sparse.csgraph import connected_components

    used = n > 0
    graph = sp.csr_matrix(
        (np.ones(int(used.sum())), (design.pair_i[used], design.pair_j[used])),
        shape=(design.n_models, design.n_models),
    )
    n_components, _ = connected_components(graph, directed=False)
    return bool(n_components == 1)


def _laplacian(design: PairDesign, weights: np.ndarray) -> np.ndarray:
    """Batched weighted graph Laplacian: (R, P) weights → (R, m, m)."""
    rounds, m = weights.shape[0], design.n_models
    lap = np.zeros((rounds, m, m))
    lap[:, design.pair_i, design.pair_j] = -weights
    lap[:, design.pair_j, design.pair_i] = -weights
    diag = (design.incidence.T @ weights.T).T  # (R, m)
    idx = np.arange(m)
    lap[:, idx, idx] = diag
    return lap


def _as_batch(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    return a[None, :] if a.ndim == 1 else a


def fit_bradley_terry(
    design: PairDesign,
    wins_i: np.ndarray,
    wins_j: np.ndarray,
    *,
    alpha: float = 0.0,
    init: np.ndarray | None = None,
    tol: float = 1e-10,
    max_iter: int = 100,
) -> Fit:
    """Maximum-likelihood BT strengths for (R, P) (or (P,)) win counts; fractional wins allowed.

    Newton's method on the concave log-likelihood, all rounds at once. The Hessian is singular
    along the all-ones direction (θ is defined up to a shift), so the step solves (L + 11ᵀ) Δ = g,
    which picks the step with Σ Δ = 0 and keeps θ centred.
    """
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    single = np.asarray(wins_i).ndim == 1
    w_ij, w_ji = _as_batch(wins_i), _as_batch(wins_j)
    if w_ij.shape != w_ji.shape or w_ij.shape[1] != design.pair_i.size:
        raise ValueError(
            f"win arrays {w_ij.shape} and {w_ji.shape} do not match {design.pair_i.size} pairs"
        )
    n = w_ij + w_ji
    rounds, m = w_ij.shape[0], design.n_models
    theta = np.zeros((rounds, m)) if init is None else np.broadcast_to(init, (rounds, m)).copy()
    theta -= theta.mean(axis=1, keepdims=True)
    signed = design.signed_incidence
    ones = np.ones((m, m))
    eye = np.eye(m)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - `it` is reported after the loop
        d = theta[:, design.pair_i] - theta[:, design.pair_j]
        p = expit(d)
        grad = (signed.T @ (w_ij - n * p).T).T - 2 * alpha * theta
        hess = _laplacian(design, n * p * (1 - p)) + (2 * alpha + RIDGE) * eye + ones
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        biggest = np.abs(step).max(axis=1, keepdims=True)
        step *= np.minimum(1.0, MAX_STEP / np.maximum(biggest, 1e-300))
        theta += step
        theta -= theta.mean(axis=1, keepdims=True)
        if biggest.max() < tol:
            converged = True
            break
    return Fit(theta=theta[0] if single else theta, log_nu=None, iterations=it, converged=converged)


def refit_bradley_terry(
    design: PairDesign,
    wins_i: np.ndarray,
    wins_j: np.ndarray,
    start: np.ndarray,
    *,
    alpha: float = 0.0,
    tol: float = 1e-10,
    max_iter: int = 60,
) -> Fit:
    """Fit many rounds near a known solution `start` (m,), e.g. bootstrap redraws of one study.

    A chord (simplified Newton) iteration with one Hessian, taken at `start` for the average
    counts, shared by every round: each step is then a matrix product instead of a batched
    solve, and the redraws are close enough to `start` that it contracts fast. Rounds that have
    not converged after `max_iter` steps (sparse or degenerate draws) finish with full Newton.
    """
    w_ij, w_ji = _as_batch(wins_i), _as_batch(wins_j)
    n = w_ij + w_ji
    m = design.n_models
    theta = np.broadcast_to(start - start.mean(), (w_ij.shape[0], m)).copy()
    p0 = expit(start[design.pair_i] - start[design.pair_j])
    mean_n = n.mean(axis=0, keepdims=True)
    hess = _laplacian(design, mean_n * p0 * (1 - p0))[0] + (2 * alpha + RIDGE) * np.eye(m)
    inverse = np.linalg.inv(hess + np.ones((m, m)))
    signed = design.signed_incidence
    active = np.arange(w_ij.shape[0])
    for it in range(1, max_iter + 1):
        th = theta[active]
        p = expit(th[:, design.pair_i] - th[:, design.pair_j])
        grad = (signed.T @ (w_ij[active] - n[active] * p).T).T - 2 * alpha * th
        step = grad @ inverse  # inverse is symmetric
        theta[active] = th + step - step.mean(axis=1, keepdims=True)
        active = active[np.abs(step).max(axis=1) >= tol]
        if active.size == 0:
            return Fit(theta=theta, log_nu=None, iterations=it, converged=True)
    rest = fit_bradley_terry(
        design, w_ij[active], w_ji[active], alpha=alpha, init=theta[active], tol=tol
    )
    theta[active] = rest.theta
    return Fit(
        theta=theta, log_nu=None, iterations=max_iter + rest.iterations, converged=rest.converged
    )


def fit_davidson(
    design: PairDesign,
    wins_i: np.ndarray,
    wins_j: np.ndarray,
    ties: np.ndarray,
    *,
    alpha: float = 0.0,
    init: np.ndarray | None = None,
    tol: float = 1e-10,
    max_iter: int = 100,
) -> Fit:
    """Davidson's tie model: P(i) ∝ π_i, P(j) ∝ π_j, P(tie) ∝ ν √(π_i π_j); Newton on (θ, log ν).

    Per pair the log-likelihood depends only on d = θ_i − θ_j and η = log ν:
    ℓ = (w_ij − w_ji)·d/2 + t·η − n·log(2 cosh(d/2) + e^η).
    """
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    single = np.asarray(wins_i).ndim == 1
    w_ij, w_ji, t = _as_batch(wins_i), _as_batch(wins_j), _as_batch(ties)
    if not (w_ij.shape == w_ji.shape == t.shape) or w_ij.shape[1] != design.pair_i.size:
        raise ValueError(f"count arrays do not match {design.pair_i.size} pairs")
    if (t.sum(axis=1) <= 0).any():
        raise ValueError("the Davidson model needs at least one tie; use ties='half' or 'drop'")
    n = w_ij + w_ji + t
    rounds, m = w_ij.shape[0], design.n_models
    theta = np.zeros((rounds, m)) if init is None else np.broadcast_to(init, (rounds, m)).copy()
    theta -= theta.mean(axis=1, keepdims=True)
    # Start ν where equal strengths would give the observed tie share: t/n = ν/(2+ν).
    tie_share = t.sum(axis=1) / n.sum(axis=1)
    eta = np.log(2 * tie_share / np.maximum(1 - tie_share, 1e-12))
    signed = design.signed_incidence
    ones = np.zeros((m + 1, m + 1))
    ones[:m, :m] = 1.0
    ridge = np.eye(m + 1) * RIDGE
    ridge[np.arange(m), np.arange(m)] = 2 * alpha + RIDGE
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - `it` is reported after the loop
        half_d = np.clip(theta[:, design.pair_i] - theta[:, design.pair_j], -80, 80) / 2
        nu = np.exp(eta)[:, None]
        big_d = 2 * np.cosh(half_d) + nu
        sinh = np.sinh(half_d)
        g_d = (w_ij - w_ji) / 2 - n * sinh / big_d
        g_eta = (t - n * nu / big_d).sum(axis=1)
        h_dd = n * (np.cosh(half_d) / (2 * big_d) - sinh**2 / big_d**2)
        h_deta = -n * sinh * nu / big_d**2
        h_eta = (n * (nu / big_d - nu**2 / big_d**2)).sum(axis=1)
        hess = np.zeros((rounds, m + 1, m + 1))
        hess[:, :m, :m] = _laplacian(design, h_dd)
        cross = (signed.T @ h_deta.T).T
        hess[:, :m, m] = cross
        hess[:, m, :m] = cross
        hess[:, m, m] = h_eta
        hess += ones + ridge
        grad = np.concatenate([(signed.T @ g_d.T).T - 2 * alpha * theta, g_eta[:, None]], axis=1)
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        biggest = np.abs(step).max(axis=1, keepdims=True)
        step *= np.minimum(1.0, MAX_STEP / np.maximum(biggest, 1e-300))
        theta += step[:, :m]
        theta -= theta.mean(axis=1, keepdims=True)
        eta = eta + step[:, m]
        if biggest.max() < tol:
            converged = True
            break
    return Fit(
        theta=theta[0] if single else theta,
        log_nu=eta[0] if single else eta,
        iterations=it,
        converged=converged,
    )


def to_elo(theta: np.ndarray) -> np.ndarray:
    """θ (any shape, models last) → ratings on the 400·log10 scale with mean 1000."""
    centred = theta - theta.mean(axis=-1, keepdims=True)
    elo: np.ndarray = ELO_MEAN + ELO_SCALE * centred
    return elo


def to_strength_pct(theta: np.ndarray) -> np.ndarray:
    """θ → BT strengths π = e^θ normalised to sum to 100 (softmax, computed stably)."""
    shifted = np.exp(theta - theta.max(axis=-1, keepdims=True))
    pct: np.ndarray = 100.0 * shifted / shifted.sum(axis=-1, keepdims=True)
    return pct
