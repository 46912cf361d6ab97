"""Sandwich (robust) standard errors of the Bradley–Terry ratings, as Chatbot Arena now reports.

Cov(θ̂) ≈ H⁺ B H⁺ with H the Fisher information (the weighted graph Laplacian at θ̂) and B the
summed outer products of the score contributions. With battles as the unit B is the empirical
information of single votes; with participants as the unit each person's votes are summed first,
so votes that lean together (one person's taste) widen the errors as a participant bootstrap
does. One small matrix product instead of a bootstrap.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from analysis.bradley_terry import ELO_SCALE, TieMode
from analysis.pairs import BOTH_BAD, I_WINS, J_WINS, N_OUTCOMES, TIE, PairCounts


def _residuals(
    pairs: PairCounts, theta: np.ndarray, ties: TieMode, bothbad_as_tie: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(P, 4) score residual s − p of one vote in each cell (0 for votes left out), and (P,)
    votes each pair contributes to the fit."""
    if ties is TieMode.DAVIDSON:
        raise ValueError("sandwich errors are for the Bradley–Terry fit; use ties half or drop")
    i, j = pairs.design.pair_i, pairs.design.pair_j
    p = expit(theta[i] - theta[j])
    resid = np.zeros((p.size, N_OUTCOMES))
    resid[:, I_WINS] = 1 - p
    resid[:, J_WINS] = -p
    used = np.ones(N_OUTCOMES, dtype=bool)
    if ties is TieMode.HALF:
        resid[:, TIE] = 0.5 - p
        if bothbad_as_tie:
            resid[:, BOTH_BAD] = 0.5 - p
        else:
            used[BOTH_BAD] = False
    else:
        used[[TIE, BOTH_BAD]] = False
    return resid, (pairs.counts * used).sum(axis=1)


def sandwich_cov(
    pairs: PairCounts,
    theta: np.ndarray,
    *,
    ties: TieMode = TieMode.HALF,
    bothbad_as_tie: bool = True,
    participants: sp.csr_matrix | None = None,
) -> np.ndarray:
    """(m, m) robust covariance of the centred θ at the fit `theta`; clustered by participant
    when `participants` (`pairs.participant_counts`) is given, else by battle."""
    design = pairs.design
    m = design.n_models
    resid, n = _residuals(pairs, theta, ties, bothbad_as_tie)
    i, j = design.pair_i, design.pair_j
    p = expit(theta[i] - theta[j])
    w = n * p * (1 - p)
    hess = np.zeros((m, m))
    np.add.at(hess, (i, j), -w)
    np.add.at(hess, (j, i), -w)
    hess[np.arange(m), np.arange(m)] = -hess.sum(axis=1)
    ones = np.full((m, m), 1.0 / m)
    bread = np.linalg.inv(hess + ones) - ones  # H⁺ on the centred space (H·1 = 0)
    signed = design.signed_incidence  # (P, m)
    if participants is None:
        # Σ over votes of r² x xᵀ = Laplacian with pair weights Σ_cells count · r².
        meat_w = (pairs.counts * resid**2).sum(axis=1)
        meat = (signed.T @ sp.diags(meat_w) @ signed).toarray()
    else:
        # Each participant's summed score: (U, cells) · r → (U, P) → (U, m).
        per_user = participants.multiply(resid.reshape(1, -1)).tocsr()
        pair_sum = per_user @ sp.kron(sp.eye(resid.shape[0]), np.ones((N_OUTCOMES, 1)))
        scores = np.asarray((pair_sum @ signed).todense())
        meat = scores.T @ scores
    cov: np.ndarray = bread @ meat @ bread
    return cov


def sandwich_se_elo(cov: np.ndarray) -> np.ndarray:
    """Per-model standard error on the Elo scale."""
    se: np.ndarray = ELO_SCALE * np.sqrt(np.maximum(np.diag(cov), 0))
    return se
