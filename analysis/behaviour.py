"""How participants vote, which no leaderboard shows: position bias, vote time, agreement."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats


def position_bias(battles: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(overall, per participant): share of decided votes that went to side A, its 95% Wilson
    interval and the two-sided binomial p-value against ½ (sides are a fair coin, so a
    preference for A is a bias of the voter, not of the models)."""
    df = battles[battles["winner"].isin(["model_a", "model_b"])]

    def row(group: pd.DataFrame) -> dict[str, float]:
        n = len(group)
        a = int((group["winner"] == "model_a").sum())
        ci = stats.binomtest(a, n).proportion_ci(method="wilson") if n else None
        return {
            "decided": n,
            "a_wins": a,
            "a_share": a / n if n else np.nan,
            "a_share_lo": ci.low if ci else np.nan,
            "a_share_hi": ci.high if ci else np.nan,
            "p_value": stats.binomtest(a, n).pvalue if n else np.nan,
        }

    overall = pd.DataFrame([{"participant": "all", **row(df)}])
    per = pd.DataFrame([{"participant": p, **row(g)} for p, g in df.groupby("participant")])
    if per.empty:
        per = overall.iloc[:0]
    return overall, per.sort_values("decided", ascending=False).reset_index(drop=True)


def vote_times(battles: pd.DataFrame) -> pd.DataFrame:
    """Quantiles of `vote_delay_s` (answer shown → vote), or an empty table without it."""
    if "vote_delay_s" not in battles.columns:
        return pd.DataFrame(columns=["quantile", "seconds"])
    delay = pd.to_numeric(battles["vote_delay_s"], errors="coerce").dropna()
    if delay.empty:
        return pd.DataFrame(columns=["quantile", "seconds"])
    qs = [0.05, 0.25, 0.5, 0.75, 0.95]
    return pd.DataFrame({"quantile": qs, "seconds": np.quantile(delay.to_numpy(), qs)})


def agreement(battles: pd.DataFrame, p_low: dict[str, float] | None = None) -> pd.DataFrame:
    """Agreement on repeated pairs, over decided votes (ties left out).

    `between`: of all pairs of votes by two different participants on the same pair of models,
    the share that prefer the same model. `within`: the same for two votes of one participant.
    `expected`: what independent votes would give under `p_low` (pair field → P(the model that
    sorts first wins), e.g. the Bradley–Terry fit): Σ p² + (1 − p)², weighted alike.
    """
    df = battles[battles["winner"].isin(["model_a", "model_b"])]
    a, b = df["model_a"].to_numpy(str), df["model_b"].to_numpy(str)
    low = np.where(a < b, a, b)
    high = np.where(a < b, b, a)
    low_won = (df["winner"].to_numpy() == "model_a") == (a < b)
    frame = pd.DataFrame(
        {
            "pair": pd.Series(low) + "|" + pd.Series(high),
            "who": df["participant"].to_numpy(),
            "low": low_won,
        }
    )
    cell = frame.groupby(["pair", "who"])["low"].agg(["sum", "count"]).reset_index()
    cell["high"] = cell["count"] - cell["sum"]
    same_within = (cell["sum"] * (cell["sum"] - 1) + cell["high"] * (cell["high"] - 1)).sum()
    all_within = (cell["count"] * (cell["count"] - 1)).sum()
    by_pair = cell.groupby("pair").agg(
        low=("sum", "sum"),
        high=("high", "sum"),
        n=("count", "sum"),
        low2=("sum", lambda s: (s**2).sum()),
        high2=("high", lambda s: (s**2).sum()),
        n2=("count", lambda s: (s**2).sum()),
    )
    same_between = (
        by_pair["low"] ** 2 - by_pair["low2"] + by_pair["high"] ** 2 - by_pair["high2"]
    ).sum()
    pairs_between = by_pair["n"] ** 2 - by_pair["n2"]
    expected = np.nan
    if p_low is not None and pairs_between.sum() > 0:
        p = by_pair.index.map(lambda f: p_low.get(f, np.nan)).to_numpy(float)
        expected = float(np.nansum(pairs_between * (p**2 + (1 - p) ** 2)) / pairs_between.sum())
    rows = [
        {
            "kind": "between participants",
            "vote_pairs": int(pairs_between.sum()),
            "agreement": same_between / pairs_between.sum() if pairs_between.sum() else np.nan,
            "expected_if_independent": expected,
        },
        {
            "kind": "within a participant",
            "vote_pairs": int(all_within),
            "agreement": same_within / all_within if all_within else np.nan,
            "expected_if_independent": expected,
        },
    ]
    return pd.DataFrame(rows)


# The reasons the select menu after a vote offers, in its order (contract.records.LOSS_REASONS).
LOSS_REASONS = ("understanding", "content", "speech_quality", "too_slow", "other")


def loss_reasons(battles: pd.DataFrame) -> pd.DataFrame:
    """Why each model lost, as its losers said: one row per model with the count of each
    reason, `answered` (losses with a reason) and each reason's share of those. The loser of
    "model_a" is model_b and the reverse; "both bad" counts against both; ties have none.
    Empty when the battles carry no `loss_reason` column or no reason was given."""
    columns = ["model", *LOSS_REASONS, "answered", *(f"{r}_share" for r in LOSS_REASONS)]
    if "loss_reason" not in battles.columns:
        return pd.DataFrame(columns=columns)
    df = battles[battles["loss_reason"].isin(LOSS_REASONS)]
    losers = pd.concat(
        [
            df.loc[
                df["winner"].isin(["model_a", "tie (bothbad)"]), ["model_b", "loss_reason"]
            ].rename(columns={"model_b": "model"}),
            df.loc[
                df["winner"].isin(["model_b", "tie (bothbad)"]), ["model_a", "loss_reason"]
            ].rename(columns={"model_a": "model"}),
        ],
        ignore_index=True,
    )
    if losers.empty:
        return pd.DataFrame(columns=columns)
    counts = (
        pd.crosstab(losers["model"], losers["loss_reason"])
        .reindex(columns=list(LOSS_REASONS), fill_value=0)
        .astype(int)
    )
    counts["answered"] = counts[list(LOSS_REASONS)].sum(axis=1)
    for reason in LOSS_REASONS:
        counts[f"{reason}_share"] = counts[reason] / counts["answered"]
    return counts.reset_index().rename_axis(columns=None)[columns]
