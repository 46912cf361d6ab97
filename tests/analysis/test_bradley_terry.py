"""Golden cases for the Bradley–Terry / Davidson fits, and agreement with choix."""

from __future__ import annotations

import choix
import numpy as np
import pytest
from scipy.optimize import minimize

from analysis.bradley_terry import (
    PairDesign,
    fit_bradley_terry,
    fit_davidson,
    to_elo,
    to_strength_pct,
)

THREE = PairDesign(3, np.array([0, 0, 1]), np.array([1, 2, 2]))


def full_design(m: int) -> PairDesign:
    i, j = np.triu_indices(m, 1)
    return PairDesign(m, i, j)


def test_three_models_by_hand() -> None:
    # Counts that match strengths 4 : 2 : 1 exactly (A–B 2:1, A–C 4:1, B–C 2:1) make the
    # likelihood equations hold at those strengths, so the MLE is log(4, 2, 1), centred.
    fit = fit_bradley_terry(THREE, np.array([2.0, 4.0, 2.0]), np.array([1.0, 1.0, 1.0]))
    assert fit.converged
    np.testing.assert_allclose(fit.theta, np.log([4, 2, 1]) - np.log([4, 2, 1]).mean(), atol=1e-12)
    # 400·log10(2) = 120.41 points between neighbours, mean 1000.
    np.testing.assert_allclose(to_elo(fit.theta), [1120.411998, 1000.0, 879.588002], atol=1e-6)
    np.testing.assert_allclose(to_strength_pct(fit.theta), [400 / 7, 200 / 7, 100 / 7])


def test_two_models_closed_form() -> None:
    fit = fit_bradley_terry(
        PairDesign(2, np.array([0]), np.array([1])), np.array([3.0]), np.array([1.0])
    )
    assert fit.theta[0] - fit.theta[1] == pytest.approx(np.log(3), abs=1e-12)


def random_counts(
    rng: np.random.Generator, m: int
) -> tuple[PairDesign, np.ndarray, np.ndarray, np.ndarray]:
    design = full_design(m)
    size = design.pair_i.size
    return (
        design,
        rng.integers(1, 40, size).astype(float),
        rng.integers(1, 40, size).astype(float),
        rng.integers(0, 8, size).astype(float),
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_choix_ilsr_with_half_ties(seed: int) -> None:
    design, wi, wj, ties = random_counts(np.random.default_rng(seed), 7)
    fit = fit_bradley_terry(design, wi + ties / 2, wj + ties / 2)
    comp = np.zeros((7, 7))
    comp[design.pair_i, design.pair_j] = wi + ties / 2
    comp[design.pair_j, design.pair_i] = wj + ties / 2
    ref = choix.ilsr_pairwise_dense(comp, alpha=0.0, tol=1e-14, max_iter=100_000)
    np.testing.assert_allclose(fit.theta, ref - ref.mean(), atol=1e-6)


def test_agrees_with_choix_opt_with_penalty() -> None:
    design, wi, wj, _ = random_counts(np.random.default_rng(5), 5)
    data = []
    for p in range(design.pair_i.size):
        data += [(design.pair_i[p], design.pair_j[p])] * int(wi[p])
        data += [(design.pair_j[p], design.pair_i[p])] * int(wj[p])
    ref = choix.opt_pairwise(5, data, alpha=0.3, method="Newton-CG", tol=1e-12)
    fit = fit_bradley_terry(design, wi, wj, alpha=0.3)
    np.testing.assert_allclose(fit.theta, ref, atol=1e-6)


def test_batched_rounds_equal_single_fits() -> None:
    rng = np.random.default_rng(3)
    design = full_design(5)
    wi = rng.integers(1, 20, (4, design.pair_i.size)).astype(float)
    wj = rng.integers(1, 20, (4, design.pair_i.size)).astype(float)
    batch = fit_bradley_terry(design, wi, wj).theta
    for r in range(4):
        np.testing.assert_allclose(
            batch[r], fit_bradley_terry(design, wi[r], wj[r]).theta, atol=1e-10
        )


def test_davidson_symmetric_by_hand() -> None:
    # 2 wins each and 1 tie: equal strengths; P(tie) = ν / (2 + ν) = 1/5 gives ν = 0.5.
    fit = fit_davidson(
        PairDesign(2, np.array([0]), np.array([1])),
        np.array([2.0]),
        np.array([2.0]),
        np.array([1.0]),
    )
    np.testing.assert_allclose(fit.theta, [0.0, 0.0], atol=1e-12)
    assert np.exp(fit.log_nu) == pytest.approx(0.5, abs=1e-10)


def test_davidson_matches_direct_optimisation() -> None:
    design, wi, wj, ties = random_counts(np.random.default_rng(8), 5)

    def nll(params: np.ndarray) -> float:
        theta = np.concatenate([[0.0], params[:-1]])
        eta = params[-1]
        d = theta[design.pair_i] - theta[design.pair_j]
        n = wi + wj + ties
        return -float(
            ((wi - wj) * d / 2 + ties * eta - n * np.log(2 * np.cosh(d / 2) + np.exp(eta))).sum()
        )

    ref = minimize(nll, np.zeros(5), method="BFGS", options={"gtol": 1e-10})
    fit = fit_davidson(design, wi, wj, ties)
    theta_ref = np.concatenate([[0.0], ref.x[:-1]])
    np.testing.assert_allclose(fit.theta, theta_ref - theta_ref.mean(), atol=1e-5)
    assert fit.log_nu == pytest.approx(ref.x[-1], abs=1e-5)


def test_davidson_without_ties_fails_loudly() -> None:
    with pytest.raises(ValueError, match="at least one tie"):
        fit_davidson(THREE, np.ones(3), np.ones(3), np.zeros(3))


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="alpha"):
        fit_bradley_terry(THREE, np.ones(3), np.ones(3), alpha=-1)
    with pytest.raises(ValueError, match="3 pairs"):
        fit_bradley_terry(THREE, np.ones(2), np.ones(2))
    with pytest.raises(ValueError, match="out of range"):
        PairDesign(2, np.array([0]), np.array([2]))


def test_chord_refit_agrees_with_newton_on_redraws() -> None:
    from analysis.bradley_terry import refit_bradley_terry

    rng = np.random.default_rng(4)
    design = full_design(12)
    theta = rng.normal(0, 1, 12)
    p = 1 / (1 + np.exp(-(theta[design.pair_i] - theta[design.pair_j])))
    # Mostly large counts, plus one sparse round (3 battles a pair) that needs the fallback.
    n = np.array([[60]] * 20 + [[3]])
    wins = rng.binomial(n, p).astype(float)
    start = fit_bradley_terry(design, wins[:20].mean(0), (n - wins)[:20].mean(0)).theta
    chord = refit_bradley_terry(design, wins, n - wins, start)
    newton = fit_bradley_terry(design, wins, n - wins)
    assert chord.converged
    np.testing.assert_allclose(chord.theta, newton.theta, atol=1e-8)
