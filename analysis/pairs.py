"""Battles → per-pair outcome counts, the only thing the fits and the bootstrap look at."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.bradley_terry import PairDesign, TieMode

# Outcome columns of a count array, from the point of view of the pair's first model i (< j).
I_WINS, J_WINS, TIE, BOTH_BAD = 0, 1, 2, 3
N_OUTCOMES = 4


@dataclass(frozen=True)
class PairCounts:
    models: tuple[str, ...]
    design: PairDesign
    counts: np.ndarray  # (P, 4) battles per (pair, outcome)

    @property
    def n_battles(self) -> int:
        return int(self.counts.sum())


def count_pairs(battles: pd.DataFrame, models: list[str] | None = None) -> PairCounts:
    """Aggregate voted battles by unordered pair; side (a/b) is forgotten.

    Only pairs that met at least once get a row, so the cost of everything downstream is set by
    the pairs that exist, not by the number of battles.
    """
    df = battles[battles["winner"] != ""]
    names = sorted(set(df["model_a"]) | set(df["model_b"])) if models is None else list(models)
    if len(names) < 2:
        raise ValueError(f"need voted battles between at least 2 models, got {names}")
    # Categorical codes: a hash lookup per distinct name, not per battle (fast on 1M rows).
    a = pd.Categorical(df["model_a"], categories=names).codes.astype(np.int64)
    b = pd.Categorical(df["model_b"], categories=names).codes.astype(np.int64)
    if (a < 0).any() or (b < 0).any():
        stray = sorted(set(df["model_a"][a < 0]) | set(df["model_b"][b < 0]))
        raise ValueError(f"battles name model(s) {stray} that are not in {names}")
    winner = df["winner"].to_numpy()
    swap = a > b
    lo, hi = np.where(swap, b, a), np.where(swap, a, b)
    a_won, b_won = winner == "model_a", winner == "model_b"
    outcome = np.select(
        [a_won & ~swap, b_won & swap, a_won & swap, b_won & ~swap, winner == "tie"],
        [I_WINS, I_WINS, J_WINS, J_WINS, TIE],
        default=BOTH_BAD,
    )
    m = len(names)
    cell = (lo * m + hi) * N_OUTCOMES + outcome
    flat = np.bincount(cell, minlength=m * m * N_OUTCOMES).reshape(m * m, N_OUTCOMES)
    pair_code = np.flatnonzero(flat.sum(axis=1))
    design = PairDesign(m, pair_code // m, pair_code % m)
    return PairCounts(models=tuple(names), design=design, counts=flat[pair_code].astype(float))


def outcomes(
    counts: np.ndarray, ties: TieMode, bothbad_as_tie: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(…, P, 4) counts → (wins_i, wins_j, ties) for the fit under the tie rules.

    HALF folds ties into the wins (half each) and returns zero ties; DROP discards them;
    DAVIDSON keeps them apart. "Both bad" votes are ties unless bothbad_as_tie is False, in which
    case they are dropped.
    """
    wins_i, wins_j = counts[..., I_WINS], counts[..., J_WINS]
    tied = counts[..., TIE] + (counts[..., BOTH_BAD] if bothbad_as_tie else 0.0)
    if ties is TieMode.HALF:
        return wins_i + tied / 2, wins_j + tied / 2, np.zeros_like(tied)
    if ties is TieMode.DROP:
        return wins_i, wins_j, np.zeros_like(tied)
    return wins_i, wins_j, tied
