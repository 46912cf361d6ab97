"""Static benchmark tables against interactive ratings: rank correlations, PCA, mixed effects."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from analysis.bradley_terry import to_elo
from analysis.ratings import Ratings

META_COLUMNS = ("benchmark", "dataset", "task", "metric", "higher_is_better")
# Metrics that are errors (lower is better) when META.csv is absent.
_LOWER_IS_BETTER = re.compile(r"\b(wer|cer|error|loss|latency|rtf)\b", re.IGNORECASE)


@dataclass(frozen=True)
class StaticTable:
    """Model × benchmark scores, every column oriented so that higher is better."""

    scores: pd.DataFrame  # index: model; columns: benchmarks (already flipped where needed)
    meta: pd.DataFrame  # one row per benchmark, META_COLUMNS
    raw: pd.DataFrame  # as read, unflipped


def _truthy(value: object) -> bool:
    if isinstance(value, str):
        if value.strip().lower() in ("true", "1", "yes", "y"):
            return True
        if value.strip().lower() in ("false", "0", "no", "n"):
            return False
        raise ValueError(f"higher_is_better must be true/false, got {value!r}")
    return bool(value)


def load_static(scores: Path | str, meta: Path | str | None = None) -> StaticTable:
    """Read SCORES.csv (a `model` column + one column per benchmark) and optional META.csv."""
    raw = pd.read_csv(scores)
    if "model" not in raw.columns:
        raise ValueError(f"{scores}: no `model` column; found {list(raw.columns)}")
    raw = raw.set_index(raw["model"].astype(str)).drop(columns="model")
    raw = raw.apply(pd.to_numeric, errors="raise")
    meta_df = pd.read_csv(meta) if meta is not None else None
    return orient(raw, meta_df)


def orient(raw: pd.DataFrame, meta: pd.DataFrame | None) -> StaticTable:
    """Flip (negate) lower-is-better columns so every benchmark reads "higher is better"."""
    if meta is None:
        meta = pd.DataFrame(
            {
                "benchmark": raw.columns,
                "dataset": raw.columns,
                "task": "",
                "metric": "",
                "higher_is_better": [not _LOWER_IS_BETTER.search(c) for c in raw.columns],
            }
        )
    missing = [c for c in META_COLUMNS if c not in meta.columns]
    if missing:
        raise ValueError(f"benchmark meta lacks column(s) {missing}")
    meta = meta.set_index("benchmark", drop=False)
    unknown = [c for c in raw.columns if c not in meta.index]
    if unknown:
        raise ValueError(f"scores have benchmark column(s) {unknown} missing from the meta table")
    higher = meta.loc[raw.columns, "higher_is_better"].map(_truthy)
    sign = np.where(higher.to_numpy(bool), 1.0, -1.0)
    meta = meta.loc[raw.columns].assign(higher_is_better=higher.to_numpy(bool))
    return StaticTable(scores=raw * sign, meta=meta.reset_index(drop=True), raw=raw)


def match_key(name: str) -> str:
    """Loose model-name key: "GPT-4o" and "gpt4o" match; study exports and tables spell freely."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


STATIC_NAME_COLUMNS = ("static_name_a", "static_name_b")


def static_names_of(battles: pd.DataFrame) -> dict[str, str]:
    """Model id → its static name, from an export's `static_name_a` / `static_name_b` columns.

    Parley's export carries each model's `static_name` (its row in a benchmark table, set in the
    models file); other battle files have no such columns and give an empty mapping. One model
    exported under two different static names is an error (the models file changed mid-study).
    """
    names: dict[str, str] = {}
    for side, column in zip(("model_a", "model_b"), STATIC_NAME_COLUMNS, strict=True):
        if column not in battles.columns:
            continue
        pairs = battles[[side, column]].dropna()
        for model, name in zip(pairs[side].astype(str), pairs[column].astype(str), strict=True):
            name = name.strip()
            if not name:
                continue
            if names.setdefault(model, name) != name:
                raise ValueError(
                    f"model {model!r} has two static names in the battles: "
                    f"{names[model]!r} and {name!r}"
                )
    return names


def align_models(
    rated: list[str] | tuple[str, ...],
    table: StaticTable,
    static_names: dict[str, str] | None = None,
) -> dict[str, str]:
    """Rated model id → static-table row name, for models present in both.

    A model's static name (see `static_names_of`) is tried first, then its id; both match
    loosely (`match_key`).
    """
    keys: dict[str, str] = {}
    for row in table.scores.index:
        key = match_key(row)
        if key in keys:
            raise ValueError(f"static table rows {keys[key]!r} and {row!r} collide after matching")
        keys[key] = row
    names = static_names or {}
    mapping: dict[str, str] = {}
    for model in rated:
        for candidate in (names.get(model), model):
            if candidate is not None and match_key(candidate) in keys:
                mapping[model] = keys[match_key(candidate)]
                break
    taken: dict[str, str] = {}
    for model, row in mapping.items():
        if taken.setdefault(row, model) != model:
            raise ValueError(
                f"rated models {taken[row]!r} and {model!r} both match static table row {row!r}"
            )
    return mapping


MIN_MATCHED = 3


def check_overlap(
    rated: list[str] | tuple[str, ...],
    table: StaticTable,
    static_names: dict[str, str] | None = None,
) -> dict[str, str]:
    """`align_models`, refusing fewer than `MIN_MATCHED` matches with an error that names the
    study's ids that matched no row of the table (and the rows), so the spelling can be fixed."""
    mapping = align_models(rated, table, static_names)
    if len(mapping) < MIN_MATCHED:
        unmatched = sorted(m for m in rated if m not in mapping)
        raise ValueError(
            f"only {len(mapping)} rated model(s) appear in the benchmark table; need at least "
            f"{MIN_MATCHED} to correlate. Study model ids that matched no table row: "
            f"{unmatched}; table rows: {list(table.scores.index)} (names match ignoring case "
            "and punctuation)"
        )
    return mapping


def kendall_tau_b(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall τ-b of each row of x (R, n) with y (n,); vectorised over rows, ties handled."""
    x = np.atleast_2d(np.asarray(x, dtype=float))
    y = np.asarray(y, dtype=float)
    iu = np.triu_indices(y.size, 1)
    sx = np.sign(x[:, iu[0]] - x[:, iu[1]])
    sy = np.sign(y[iu[0]] - y[iu[1]])
    concord = (sx * sy).sum(axis=1)
    denom = np.sqrt((sx != 0).sum(axis=1) * float((sy != 0).sum()))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, concord / np.where(denom > 0, denom, 1), np.nan)


def topk_kendall_distance(first: list[str], second: list[str], k: int, p: float = 0.5) -> float:
    """Fagin et al.'s (2003) top-k Kendall distance K^(p), normalised to [0, 1].

    Over the union of two top-k lists: 1 for each pair the lists order differently (a model
    missing from a list ranks below its k), p for a pair that both sit in one list and both miss
    the other (the order is unknown). Divided by its maximum, k² + p·k(k−1) (disjoint lists).
    """
    if k < 1 or not 0 <= p <= 1:
        raise ValueError(f"need k >= 1 and 0 <= p <= 1, got k={k}, p={p}")
    top1 = {m: r for r, m in enumerate(first[:k])}
    top2 = {m: r for r, m in enumerate(second[:k])}
    union = sorted(set(top1) | set(top2))
    total = 0.0
    for a_idx, a in enumerate(union):
        for b in union[a_idx + 1 :]:
            in1, in2 = (a in top1, b in top1), (a in top2, b in top2)
            if all(in1) and all(in2):
                total += (top1[a] < top1[b]) != (top2[a] < top2[b])
            elif (all(in1) and not any(in2)) or (all(in2) and not any(in1)):
                total += p
            elif all(in1) or all(in2):
                # Both in one list, exactly one in the other: that one is ahead in the other list.
                full, part = (top1, top2) if all(in1) else (top2, top1)
                present = a if a in part else b
                absent = b if present == a else a
                total += full[absent] < full[present]
            else:
                # Each list holds exactly one of the two (not the same one, or the pair would be
                # covered above): the lists disagree.
                total += 1
    return total / (k * k + p * k * (k - 1))


def correlate(
    ratings: Ratings,
    table: StaticTable,
    level: float = 0.95,
    k: int = 5,
    static_names: dict[str, str] | None = None,
) -> pd.DataFrame:
    """One row per benchmark: τ-b and ρ between the rating and the score, with p-values, a
    bootstrap CI of τ and the top-k Kendall distance, over the models present in both.

    `static_names` (model id → table row, see `static_names_of`) matches before the ids."""
    mapping = check_overlap(ratings.models, table, static_names)
    index = {m: i for i, m in enumerate(ratings.models)}
    rows = []
    tail = (1 - level) / 2
    for benchmark in table.scores.columns:
        score = table.scores[benchmark]
        common = [m for m in mapping if pd.notna(score[mapping[m]])]
        idx = [index[m] for m in common]
        y = score[[mapping[m] for m in common]].to_numpy(float)
        x = to_elo(ratings.theta)[idx]
        row: dict[str, object] = {"benchmark": benchmark, "n_models": len(common)}
        if len(common) >= 3:
            tau = stats.kendalltau(x, y, variant="b")
            rho = stats.spearmanr(x, y)
            row |= {
                "kendall_tau": tau.statistic,
                "kendall_p": tau.pvalue,
                "spearman_rho": rho.statistic,
                "spearman_p": rho.pvalue,
            }
            if ratings.rounds > 0:
                boot = kendall_tau_b(ratings.boot_theta[:, idx], y)
                row |= {
                    "kendall_tau_lo": np.nanquantile(boot, tail),
                    "kendall_tau_hi": np.nanquantile(boot, 1 - tail),
                }
            kk = min(k, len(common))
            by_rating = [common[i] for i in np.argsort(-x, kind="stable")]
            by_score = [common[i] for i in np.argsort(-y, kind="stable")]
            row |= {"topk_k": kk, "topk_kendall": topk_kendall_distance(by_rating, by_score, kk)}
        rows.append(row)
    out = pd.DataFrame(rows)
    for col in ("kendall_tau_lo", "kendall_tau_hi"):
        if col not in out.columns:
            out[col] = np.nan
    meta = table.meta.set_index("benchmark")[["dataset", "task", "metric", "higher_is_better"]]
    out = out.join(meta, on="benchmark")
    return out.sort_values("kendall_tau", ascending=False, na_position="last").reset_index(
        drop=True
    )


@dataclass(frozen=True)
class PCAResult:
    explained: pd.DataFrame  # component, variance_ratio, cumulative
    loadings: pd.DataFrame  # benchmark × component
    model_scores: pd.DataFrame  # model × component
    dropped_models: tuple[str, ...]


def pca(table: StaticTable) -> PCAResult:
    """PCA of the standardised model × benchmark matrix (models with a missing score dropped)."""
    complete = table.scores.dropna(axis=0, how="any")
    dropped = tuple(sorted(set(table.scores.index) - set(complete.index)))
    if len(complete) < 3:
        raise ValueError(f"PCA needs >= 3 models with every score, got {len(complete)}")
    std = complete.std(ddof=1).replace(0, 1.0)
    z = ((complete - complete.mean()) / std).to_numpy()
    u, s, vt = np.linalg.svd(z, full_matrices=False)
    var = s**2 / (s**2).sum()
    names = [f"PC{i + 1}" for i in range(s.size)]
    # SVD signs are arbitrary: make each component load positively on average, so PC1 reads as
    # "overall ability" rather than its negative.
    flip = np.where(vt.sum(axis=1) < 0, -1.0, 1.0)
    vt, u = vt * flip[:, None], u * flip[None, :]
    return PCAResult(
        explained=pd.DataFrame(
            {"component": names, "variance_ratio": var, "cumulative": np.cumsum(var)}
        ),
        loadings=pd.DataFrame(vt.T, index=complete.columns, columns=names),
        model_scores=pd.DataFrame(u * s, index=complete.index, columns=names),
        dropped_models=dropped,
    )


def variance_inflation(x: np.ndarray) -> np.ndarray:
    """VIF of each column: 1 / (1 − R²) of that column regressed on the others (+ intercept).

    An exactly collinear column gets inf (statsmodels' own VIF warns and returns noise there).
    """
    n, k = x.shape
    out = np.empty(k)
    for col in range(k):
        others = np.column_stack([np.ones(n), np.delete(x, col, axis=1)])
        target = x[:, col]
        coef, *_ = np.linalg.lstsq(others, target, rcond=None)
        resid = target - others @ coef
        total = ((target - target.mean()) ** 2).sum()
        unexplained = (resid**2).sum() / total if total > 0 else 0.0
        out[col] = np.inf if unexplained < 1e-10 else 1.0 / unexplained
    return out


def vif_screen(design: pd.DataFrame, threshold: float = 5.0) -> tuple[list[str], pd.DataFrame]:
    """Drop the column with the largest variance inflation factor until all are <= threshold.

    Returns the kept columns and a table of each dropped column with its VIF at removal.
    """
    if threshold <= 1:
        raise ValueError(f"a VIF threshold must be > 1, got {threshold}")
    kept = [c for c in design.columns if design[c].std() > 0]
    dropped = [
        {"benchmark": c, "vif": np.inf, "reason": "constant"}
        for c in design.columns
        if c not in kept
    ]
    while len(kept) > 1:
        vifs = variance_inflation(design[kept].to_numpy(float))
        worst = int(np.argmax(vifs))
        if vifs[worst] <= threshold:
            break
        dropped.append({"benchmark": kept[worst], "vif": vifs[worst], "reason": "collinear"})
        kept.pop(worst)
    return kept, pd.DataFrame(dropped, columns=["benchmark", "vif", "reason"])


@dataclass(frozen=True)
class MixedEffects:
    fixed: pd.DataFrame  # term, coef, sd, z, p
    model_effect_sd: float  # SD of the random model-identity effect (logit scale)
    screened_out: pd.DataFrame  # VIF-dropped benchmarks
    n_battles: int
    note: str


def mixed_effects(
    battles: pd.DataFrame, table: StaticTable, vif_threshold: float = 5.0
) -> MixedEffects:
    """Logistic mixed model of "model_a won" on standardised score differences (a − b).

    The random effect is model identity entering as +u_a − u_b: a Bradley–Terry term for what
    the benchmarks leave unexplained (statsmodels' BinomialBayesMixedGLM, variational Bayes).
    Ties are left out; so are battles with a model the table lacks.
    """
    from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM

    decided = battles[battles["winner"].isin(["model_a", "model_b"])]
    mapping = align_models(
        sorted(set(decided["model_a"]) | set(decided["model_b"])), table, static_names_of(battles)
    )
    complete = table.scores.dropna(axis=1, how="any")
    keep = decided["model_a"].isin(mapping) & decided["model_b"].isin(mapping)
    decided = decided[keep]
    if len(mapping) < 3 or len(decided) < 20:
        raise ValueError(
            f"mixed model needs >= 3 matched models and >= 20 decided battles, got "
            f"{len(mapping)} and {len(decided)}"
        )
    z = (complete - complete.mean()) / complete.std(ddof=1).replace(0, 1.0)
    rows_a = [mapping[m] for m in decided["model_a"]]
    rows_b = [mapping[m] for m in decided["model_b"]]
    diff = pd.DataFrame(
        z.loc[rows_a].to_numpy() - z.loc[rows_b].to_numpy(), columns=complete.columns
    )
    kept, screened = vif_screen(diff, vif_threshold)
    models = sorted(mapping)
    col = {m: i for i, m in enumerate(models)}
    vc = np.zeros((len(decided), len(models)))
    vc[np.arange(len(decided)), decided["model_a"].map(col).to_numpy()] = 1.0
    vc[np.arange(len(decided)), decided["model_b"].map(col).to_numpy()] = -1.0
    y = (decided["winner"] == "model_a").to_numpy(float)
    # The intercept is position bias ("a" shown first wins more); with sides randomised it is
    # near 0, and keeping it stops any such bias leaking into the benchmark slopes.
    exog = np.column_stack([np.ones(len(y)), diff[kept].to_numpy()])
    glm = BinomialBayesMixedGLM(
        y,
        exog,
        vc,
        np.zeros(len(models), dtype=int),
        vcp_p=1.0,
        fe_p=2.0,
        fep_names=["position_a", *kept],
        vcp_names=["model"],
    )
    result = glm.fit_vb()
    coef, sd = result.fe_mean, result.fe_sd
    zval = coef / sd
    fixed = pd.DataFrame(
        {
            "term": ["position_a", *kept],
            "coef": coef,
            "sd": sd,
            "z": zval,
            "p": 2 * stats.norm.sf(np.abs(zval)),
        }
    )
    dropped_models = sorted((set(battles["model_a"]) | set(battles["model_b"])) - set(mapping))
    note = f"battles with unmatched models dropped: {dropped_models}" if dropped_models else ""
    return MixedEffects(
        fixed=fixed,
        model_effect_sd=float(np.exp(result.vcp_mean[0])),
        screened_out=screened,
        n_battles=len(decided),
        note=note,
    )
