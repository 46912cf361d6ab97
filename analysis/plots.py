"""Figures of the report (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def png_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def leaderboard_plot(table: pd.DataFrame) -> Figure:
    """Ratings with their 95% bootstrap intervals, best at the top."""
    rows = table.sort_values("rating")
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.2))
    y = np.arange(len(rows))
    # With few battles a percentile interval can miss the point estimate; draw it one-sided then.
    err = [
        (rows["rating"] - rows["rating_lo"]).clip(lower=0),
        (rows["rating_hi"] - rows["rating"]).clip(lower=0),
    ]
    ax.errorbar(rows["rating"], y, xerr=err, fmt="o", color="tab:blue", ecolor="gray", capsize=3)
    ax.set_yticks(y, [f"{m}  (#{r})" for m, r in zip(rows["model"], rows["rank"], strict=True)])
    ax.axvline(1000, color="lightgray", lw=1, zorder=0)
    ax.set_xlabel("rating (Elo scale, mean 1000) with 95% bootstrap interval")
    ax.set_title("Leaderboard")
    ax.grid(axis="x", alpha=0.3)
    return fig


def heatmap(
    matrix: pd.DataFrame, title: str, fmt: str, cmap: str, center: float | None = None
) -> Figure:
    """A models × opponents matrix; each cell annotated; NaN cells left blank."""
    n = len(matrix)
    size = max(4.0, 0.55 * n + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    values = matrix.to_numpy(float)
    vmin = vmax = None
    if center is not None:
        span = np.nanmax(np.abs(values - center)) if np.isfinite(values).any() else 1.0
        vmin, vmax = center - span, center + span
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_xticks(range(n), matrix.columns, rotation=45, ha="right")
    ax.set_yticks(range(n), matrix.index)
    ax.set_xlabel("opponent")
    ax.set_ylabel("model")
    if n <= 20:
        for r in range(n):
            for c in range(n):
                if np.isfinite(values[r, c]):
                    ax.text(c, r, format(values[r, c], fmt), ha="center", va="center", fontsize=8)
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_title(title)
    return fig


def correlation_plot(corr: pd.DataFrame) -> Figure:
    """Kendall τ-b per benchmark with its bootstrap interval; bars coloured by p < 0.05."""
    rows = corr.dropna(subset=["kendall_tau"]).sort_values("kendall_tau")
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(rows) + 1.5))
    y = np.arange(len(rows))
    colors = np.where(rows["kendall_p"] < 0.05, "tab:green", "tab:gray")
    ax.barh(y, rows["kendall_tau"], color=colors)
    if rows["kendall_tau_lo"].notna().any():
        err = [
            rows["kendall_tau"] - rows["kendall_tau_lo"],
            rows["kendall_tau_hi"] - rows["kendall_tau"],
        ]
        ax.errorbar(
            rows["kendall_tau"],
            y,
            xerr=np.clip(err, 0, None),
            fmt="none",
            ecolor="black",
            capsize=2,
            lw=1,
        )
    ax.set_yticks(y, rows["benchmark"])
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlim(-1, 1)
    ax.set_xlabel(
        "Kendall τ-b with interactive rating (green: p < 0.05; bars: rating-bootstrap 95% CI)"
    )
    ax.set_title("Static benchmarks vs interactive preference")
    return fig


def pca_plot(explained: pd.DataFrame) -> Figure:
    fig, ax = plt.subplots(figsize=(6, 3.2))
    x = np.arange(len(explained))
    ax.bar(x, explained["variance_ratio"], color="tab:blue", label="per component")
    ax.plot(x, explained["cumulative"], "o-", color="tab:orange", label="cumulative")
    ax.set_xticks(x, explained["component"], rotation=45)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of variance")
    ax.set_title("PCA of the model × benchmark matrix")
    ax.legend()
    return fig


def topic_plot(shares: pd.DataFrame) -> Figure:
    rows = shares.sort_values("share")
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(rows) + 1.2))
    ax.barh(np.arange(len(rows)), 100 * rows["share"], color="tab:purple")
    ax.set_yticks(
        np.arange(len(rows)),
        [f"{t}: {lab}" for t, lab in zip(rows["topic"], rows["label"], strict=True)],
    )
    ax.set_xlabel("% of battles")
    ax.set_title("Topics of the queries")
    return fig
