"""Style control, as LMArena's: Bradley–Terry with covariates for how the two replies differ.

logit P(a beats b) = θ_a − θ_b + Σ_k β_k z_k, z_k = (x_a − x_b)/(x_a + x_b) of a reply feature
(characters of the reply text, response latency, speech duration), divided by its SD over the
battles so each β is per SD. θ is then the preference with style held level. Fitted per battle
(the covariates differ battle by battle), Newton for the point fit and a chord iteration (one
Hessian, taken at the point fit) for the bootstrap rounds, all rounds of a chunk at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import expit

from analysis.bradley_terry import TieMode
from analysis.pairs import codes_of

# Covariate name → (column of side a, column of side b, how a value is read).
STYLE_FEATURES: dict[str, tuple[str, str]] = {
    "length": ("reply_a", "reply_b"),  # characters of the reply text
    "latency": ("latency_a", "latency_b"),  # seconds to the whole reply
    "speech": ("speech_seconds_a", "speech_seconds_b"),  # seconds of the spoken reply
}
# Bootstrap rounds × battles held in memory at once (floats).
_CELLS_PER_CHUNK = 4_000_000


def parse_style(text: str | None) -> tuple[str, ...]:
    """ "length,latency" → ("length", "latency"); None or "" → ()."""
    if not text:
        return ()
    names = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    unknown = [n for n in names if n not in STYLE_FEATURES]
    if unknown:
        raise ValueError(
            f"unknown style covariate(s) {unknown}; choose from {list(STYLE_FEATURES)}"
        )
    return names


def style_features(
    battles: pd.DataFrame, names: tuple[str, ...]
) -> tuple[np.ndarray, pd.DataFrame]:
    """(n, k) standardised differences for voted battles, and a table of what went in
    (covariate, columns, sd, missing). A battle missing a side's value gets 0 (no known
    difference), counted in `missing`."""
    df = battles[battles["winner"] != ""]
    cols, rows = [], []
    for name in names:
        col_a, col_b = STYLE_FEATURES[name]
        absent = [c for c in (col_a, col_b) if c not in df.columns]
        if absent:
            raise ValueError(
                f"style covariate {name!r} needs column(s) {absent}; not in the battles"
            )
        if name == "length":
            a = df[col_a].map(lambda v: len(v) if isinstance(v, str) else np.nan).to_numpy(float)
            b = df[col_b].map(lambda v: len(v) if isinstance(v, str) else np.nan).to_numpy(float)
        else:
            a = pd.to_numeric(df[col_a], errors="coerce").to_numpy(float)
            b = pd.to_numeric(df[col_b], errors="coerce").to_numpy(float)
        total = a + b
        ok = np.isfinite(total) & (total > 0) & (a >= 0) & (b >= 0)
        diff = np.where(ok, (a - b) / np.where(ok, total, 1.0), 0.0)
        sd = float(diff[ok].std()) if ok.sum() > 1 else 0.0
        if sd == 0:
            raise ValueError(
                f"style covariate {name!r} does not vary over the battles ({col_a}, {col_b})"
            )
        cols.append(diff / sd)
        rows.append(
            {
                "covariate": name,
                "columns": f"{col_a},{col_b}",
                "sd": sd,
                "missing": int((~ok).sum()),
            }
        )
    return np.column_stack(cols), pd.DataFrame(rows)


@dataclass(frozen=True)
class StyleFit:
    models: tuple[str, ...]
    names: tuple[str, ...]
    theta: np.ndarray  # (m,) centred
    beta: np.ndarray  # (k,) logit per SD of each covariate
    boot_theta: np.ndarray  # (R, m)
    boot_beta: np.ndarray  # (R, k)
    features: pd.DataFrame  # covariate, columns, sd, missing


def _design(battles: pd.DataFrame, models: tuple[str, ...], z: np.ndarray) -> sp.csr_matrix:
    df = battles[battles["winner"] != ""]
    a = codes_of(df["model_a"], list(models))
    b = codes_of(df["model_b"], list(models))
    if (a < 0).any() or (b < 0).any():
        raise ValueError("battles name models outside the rated set")
    n, m = len(df), len(models)
    rows = np.arange(n)
    x_models = sp.csr_matrix(
        (np.r_[np.ones(n), -np.ones(n)], (np.r_[rows, rows], np.r_[a, b])), shape=(n, m)
    )
    return sp.hstack([x_models, sp.csr_matrix(z)]).tocsr()


def _targets(
    battles: pd.DataFrame, ties: TieMode, bothbad_as_tie: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(y, used): y = 1 a won, 0 b won, ½ a tie; used = 0 for votes the tie rules leave out."""
    if ties is TieMode.DAVIDSON:
        raise ValueError("style control fits Bradley–Terry with ties half or drop, not davidson")
    w = battles.loc[battles["winner"] != "", "winner"].to_numpy()
    y = np.where(w == "model_a", 1.0, np.where(w == "model_b", 0.0, 0.5))
    tie = (w == "tie") | (w == "tie (bothbad)")
    used = np.ones(w.size)
    if ties is TieMode.DROP:
        used[tie] = 0.0
    elif not bothbad_as_tie:
        used[w == "tie (bothbad)"] = 0.0
    return y, used


def fit_style(
    battles: pd.DataFrame,
    models: tuple[str, ...],
    names: tuple[str, ...],
    *,
    ties: TieMode = TieMode.HALF,
    bothbad_as_tie: bool = True,
    rounds: int = 0,
    rng: np.random.Generator | None = None,
    participants: bool = False,
    tol: float = 1e-9,
) -> StyleFit:
    """Style-controlled ratings of the voted `battles`, with `rounds` bootstrap rounds redrawing
    battles (or whole participants when `participants`)."""
    if not names:
        raise ValueError("no style covariates given")
    z, features = style_features(battles, names)
    x = _design(battles, models, z)
    y, used = _targets(battles, ties, bothbad_as_tie)
    m, k = len(models), len(names)
    d = m + k
    anchor = np.zeros((d, d))
    anchor[:m, :m] = 1.0  # θ is defined up to a shift: the +11ᵀ on its block picks Σθ = 0

    def newton(weight: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        hess = np.eye(d)
        for _ in range(100):
            p = expit(x @ phi)
            grad = x.T @ (weight * (y - p))
            hess = (x.T @ sp.diags(weight * p * (1 - p)) @ x).toarray() + anchor
            step = np.linalg.solve(hess + 1e-10 * np.eye(d), grad)
            phi = phi + step
            phi[:m] -= phi[:m].mean()
            if np.abs(step).max() < tol:
                break
        return phi, hess

    phi, hess = newton(used, np.zeros(d))
    boot = np.empty((rounds, d))
    if rounds > 0:
        if rng is None:
            raise ValueError("a bootstrap needs a numpy Generator")
        inverse = np.linalg.inv(hess)
        n = y.size
        who = pd.factorize(battles.loc[battles["winner"] != "", "participant"])[0]
        users = int(who.max()) + 1
        chunk = max(1, _CELLS_PER_CHUNK // max(n, 1))
        for start in range(0, rounds, chunk):
            size = min(chunk, rounds - start)
            if participants:
                times = rng.multinomial(users, np.full(users, 1.0 / users), size=size)
                weight = times[:, who] * used
            else:
                weight = rng.multinomial(n, np.full(n, 1.0 / n), size=size) * used
            theta = np.broadcast_to(phi, (size, d)).copy()
            active = np.arange(size)
            for _ in range(60):
                p = expit((x @ theta[active].T).T)
                grad = (x.T @ (weight[active] * (y - p)).T).T
                step = grad @ inverse
                theta[active] += step
                theta[active, :m] -= theta[active, :m].mean(axis=1, keepdims=True)
                active = active[np.abs(step).max(axis=1) >= 1e-8]
                if active.size == 0:
                    break
            for r in active:  # rare: a draw far from the point fit; finish with full Newton
                theta[r], _ = newton(weight[r], theta[r])
            boot[start : start + size] = theta
    return StyleFit(
        models=models,
        names=names,
        theta=phi[:m],
        beta=phi[m:],
        boot_theta=boot[:, :m],
        boot_beta=boot[:, m:],
        features=features,
    )


def style_table(fit: StyleFit, level: float = 0.95) -> pd.DataFrame:
    """style.csv: one row per covariate, its coefficient (logit per SD) with the bootstrap
    interval, the odds ratio per SD, and the feature's SD and missing count."""
    tail = (1 - level) / 2
    table = fit.features.copy()
    table["coefficient"] = fit.beta
    if fit.boot_beta.shape[0] > 0:
        table["coefficient_lo"] = np.quantile(fit.boot_beta, tail, axis=0)
        table["coefficient_hi"] = np.quantile(fit.boot_beta, 1 - tail, axis=0)
    else:
        table["coefficient_lo"] = table["coefficient_hi"] = np.nan
    table["odds_ratio_per_sd"] = np.exp(fit.beta)
    return table[
        [
            "covariate",
            "coefficient",
            "coefficient_lo",
            "coefficient_hi",
            "odds_ratio_per_sd",
            "columns",
            "sd",
            "missing",
        ]
    ]
