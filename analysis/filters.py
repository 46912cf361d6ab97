"""Cleaning filters over battles; each reports how many battles it removed and why."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.battles import flagged_with

# Flags whose battles the analysis drops unless told otherwise. `identity_leak`: a reply named a
# model (masked before the vote, but no longer a blind comparison; Chatbot Arena keeps only
# anonymous votes). `fast_vote` is kept by default: add it with `--drop-flag fast_vote`.
DEFAULT_DROP_FLAGS = ("identity_leak",)

# Reply columns the identity filter reads, if the export has them.
REPLY_COLUMNS = (("reply_a", "model_a"), ("reply_b", "model_b"))


@dataclass(frozen=True)
class FilterConfig:
    # Drop battles carrying any flag of `drop_flags` (and Arena's boolean `flagged`).
    drop_flagged: bool = True
    drop_flags: tuple[str, ...] = DEFAULT_DROP_FLAGS
    # Participants whose votes are dropped (e.g. the anomalous ones of analysis.quality), and
    # why, for the signature and the filter table.
    exclude_participants: frozenset[str] = frozenset()
    exclude_reason: str = "excluded"
    # Find anomalous participants (analysis.quality, on a first fit) and exclude them.
    exclude_anomalous: bool = False
    # model id → words that give it away (e.g. "GPT-4o", "OpenAI"); a reply naming its own model
    # is no longer an anonymous comparison.
    identity_words: dict[str, tuple[str, ...]] = field(default_factory=dict)
    max_votes_per_participant: int | None = None
    since: pd.Timestamp | None = None
    until: pd.Timestamp | None = None

    def __post_init__(self) -> None:
        if self.max_votes_per_participant is not None and self.max_votes_per_participant < 1:
            raise ValueError(
                f"max_votes_per_participant must be >= 1, got {self.max_votes_per_participant}"
            )


@dataclass(frozen=True)
class FilterStep:
    name: str  # as it appears in the signature, e.g. "cap=50"
    removed: int
    note: str = ""


@dataclass(frozen=True)
class Filtered:
    battles: pd.DataFrame
    steps: tuple[FilterStep, ...]
    n_input: int

    @property
    def signature_part(self) -> str:
        return ",".join(s.name for s in self.steps) or "none"

    def table(self) -> pd.DataFrame:
        rows = [{"filter": "input", "removed": 0, "remaining": self.n_input, "note": ""}]
        left = self.n_input
        for s in self.steps:
            left -= s.removed
            rows.append({"filter": s.name, "removed": s.removed, "remaining": left, "note": s.note})
        return pd.DataFrame(rows)


def load_identity_words(path: Path) -> dict[str, tuple[str, ...]]:
    """A TOML or JSON mapping of model id → list of identity words."""
    text = path.read_text()
    raw = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping of model id to a list of words")
    out: dict[str, tuple[str, ...]] = {}
    for model, words in raw.items():
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise ValueError(
                f"{path}: words for {model!r} must be a list of strings, got {words!r}"
            )
        out[str(model)] = tuple(words)
    return out


def _names_itself(battles: pd.DataFrame, words: dict[str, tuple[str, ...]]) -> pd.Series:
    hit = pd.Series(False, index=battles.index)
    patterns = {
        model: re.compile("|".join(rf"\b{re.escape(w)}\b" for w in ws), re.IGNORECASE)
        for model, ws in words.items()
        if ws
    }
    for reply_col, model_col in REPLY_COLUMNS:
        for model, pattern in patterns.items():
            rows = (battles[model_col] == model) & battles[reply_col].notna()
            if rows.any():
                found = battles.loc[rows, reply_col].astype(str).str.contains(pattern)
                hit.loc[found.index] |= found
    return hit


def apply_filters(battles: pd.DataFrame, config: FilterConfig) -> Filtered:
    """Unvoted → flagged → identity → date range → per-participant cap, in that order.

    The cap comes last so it counts only votes that survive the other filters; it keeps each
    participant's earliest votes (by tstamp, then file order).
    """
    steps: list[FilterStep] = []
    df = battles

    def step(name: str, keep: pd.Series, note: str = "") -> None:
        nonlocal df
        steps.append(FilterStep(name, int((~keep).sum()), note))
        df = df[keep]

    step("unvoted", df["winner"] != "")
    if config.drop_flagged:
        found = flagged_with(df, config.drop_flags)
        hit = np.zeros(len(df), dtype=bool)
        for mask in found.values():
            hit |= mask
        counts = ", ".join(f"{int(m.sum())} {name}" for name, m in found.items() if m.any())
        if "flags" not in df.columns and "flagged" not in df.columns:
            counts = "no flags column to read"
        names = "+".join([*config.drop_flags, *(["flagged"] if "flagged" in found else [])])
        step(f"flagged={names or 'none'}", pd.Series(~hit, index=df.index), counts)
    if config.identity_words:
        if any(col in df.columns for col, _ in REPLY_COLUMNS):
            step("identity", ~_names_itself(df, config.identity_words))
        else:
            steps.append(FilterStep("identity", 0, "no reply_a/reply_b columns to check"))
    if config.exclude_participants:
        keep = ~df["participant"].isin(sorted(config.exclude_participants))
        step(
            f"{config.exclude_reason}={len(config.exclude_participants)}",
            keep,
            f"{len(config.exclude_participants)} participant(s): {config.exclude_reason}",
        )
    if config.since is not None:
        step(f"since={config.since.date()}", df["tstamp"] >= config.since)
    if config.until is not None:
        step(f"until={config.until.date()}", df["tstamp"] < config.until)
    if config.max_votes_per_participant is not None:
        order = df.sort_values("tstamp", kind="stable")
        nth = order.groupby("participant").cumcount()
        keep = (nth < config.max_votes_per_participant).reindex(df.index)
        step(f"cap={config.max_votes_per_participant}", keep)
    return Filtered(battles=df.reset_index(drop=True), steps=tuple(steps), n_input=len(battles))
