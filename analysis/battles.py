"""Reading battle files (Parley exports and Chatbot Arena battle files) into one frame shape."""

from __future__ import annotations

from collections.abc import Iterable, Sized
from pathlib import Path

import numpy as np
import pandas as pd

CORE_COLUMNS = ("battle_id", "tstamp", "participant", "model_a", "model_b", "winner")
WINNERS = ("model_a", "model_b", "tie", "tie (bothbad)")
# Chatbot Arena battle files name the voter `judge`; Parley names it `participant`.
_PARTICIPANT_ALIASES = ("participant", "judge", "user_id", "voter")


def read_table(path: Path) -> pd.DataFrame:
    """Any of .parquet, .csv, .jsonl / .ndjson or .json (a list of records, as Arena's files)."""
    suffix = path.suffix.lower()
    if not path.exists():
        raise FileNotFoundError(f"no such battles file: {path}")
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix == ".csv":
        return pd.read_csv(path, keep_default_na=False, na_values=[""])
    if suffix in (".jsonl", ".ndjson"):
        return pd.read_json(path, lines=True)
    if suffix == ".json":
        return pd.read_json(path)
    raise ValueError(
        f"unsupported battles file type {suffix!r} ({path}); use parquet, csv or jsonl"
    )


def _to_utc(values: pd.Series) -> pd.Series:
    """Epoch seconds (Arena, Parley's floats) or ISO strings → tz-aware UTC timestamps."""
    if pd.api.types.is_datetime64_any_dtype(values):
        stamps = pd.to_datetime(values)
        return stamps.dt.tz_localize("UTC") if stamps.dt.tz is None else stamps.dt.tz_convert("UTC")
    if pd.api.types.is_numeric_dtype(values):
        return pd.to_datetime(values, unit="s", utc=True)
    return pd.to_datetime(values, utc=True, format="ISO8601")


def normalise_battles(raw: pd.DataFrame) -> pd.DataFrame:
    """Check and normalise the core columns; keep every other column as it is.

    `winner` becomes a string column with "" for an unvoted battle; `tstamp` becomes UTC.
    A file without `battle_id` (some Arena dumps) gets row ids; one without a participant
    column gets "unknown" (so the per-participant cap has nothing to cap).
    """
    df = raw.copy()
    missing = [c for c in ("model_a", "model_b", "winner") if c not in df.columns]
    if missing:
        raise ValueError(f"battles lack required column(s) {missing}; found {list(df.columns)}")
    if "battle_id" not in df.columns:
        df["battle_id"] = [f"row-{i}" for i in range(len(df))]
    if "participant" not in df.columns:
        alias = next((a for a in _PARTICIPANT_ALIASES if a in df.columns), None)
        df["participant"] = df[alias].astype(str) if alias else "unknown"
    if "tstamp" not in df.columns:
        df["tstamp"] = pd.NaT
    df["tstamp"] = _to_utc(df["tstamp"])
    # Strip and check the few distinct values, not every row (1M rows: ~1 s saved).
    codes, uniques = pd.factorize(df["winner"], use_na_sentinel=True)
    cleaned = np.array([str(u).strip() for u in uniques] + [""], dtype=object)
    df["winner"] = cleaned[codes]  # code -1 (missing) picks the trailing ""
    unknown = sorted(set(cleaned) - {*WINNERS, ""})
    if unknown:
        raise ValueError(f"unknown winner value(s) {unknown}; expected one of {[*WINNERS, '']}")
    for side in ("model_a", "model_b"):
        if df[side].isna().any():
            raise ValueError(f"{int(df[side].isna().sum())} battle(s) have no {side}")
        df[side] = df[side].astype(str)
    same = df["model_a"] == df["model_b"]
    if same.any():
        raise ValueError(
            f"{int(same.sum())} battle(s) pit a model against itself, e.g. "
            f"{df.loc[same, 'battle_id'].iloc[0]!r}"
        )
    df["battle_id"] = df["battle_id"].astype(str)
    df["participant"] = df["participant"].astype(str)
    return df.reset_index(drop=True)


def load_battles(path: Path | str) -> pd.DataFrame:
    """Read and normalise a battles file (see `normalise_battles`)."""
    return normalise_battles(read_table(Path(path)))


def models_of(battles: pd.DataFrame) -> list[str]:
    """Every model that appears on either side, sorted."""
    return sorted(set(battles["model_a"]) | set(battles["model_b"]))


def voted(battles: pd.DataFrame) -> pd.DataFrame:
    return battles[battles["winner"] != ""]


def flag_mask(battles: pd.DataFrame) -> np.ndarray:
    """True where a battle carries a moderation flag (`flagged` bool or a non-empty `flags`)."""
    mask = np.zeros(len(battles), dtype=bool)
    if "flagged" in battles.columns:
        mask |= battles["flagged"].fillna(False).astype(bool).to_numpy()
    if "flags" in battles.columns:

        def has_flag(value: object) -> bool:
            if value is None or (isinstance(value, float) and np.isnan(value)):
                return False
            if isinstance(value, str):
                return value.strip() not in ("", "[]", "()")
            if not isinstance(value, Sized):
                raise TypeError(f"flags value {value!r} is neither text nor a list")
            return len(value) > 0

        mask |= battles["flags"].map(has_flag).to_numpy(dtype=bool)
    return mask


def flag_names(value: object) -> frozenset[str]:
    """The flag names of one `flags` cell: "a,b" (Parley), a list, or empty/NaN."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return frozenset()
    if isinstance(value, str):
        text = value.strip().strip("[]()")
        return frozenset(p.strip().strip("'\"") for p in text.split(",") if p.strip())
    if isinstance(value, Iterable):
        return frozenset(str(v) for v in value)
    raise TypeError(f"a flags cell must be text or a list of names, got {value!r}")


def flagged_with(battles: pd.DataFrame, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Per flag name, where a battle carries it; `flagged` is Arena's boolean column."""
    found: dict[str, np.ndarray] = {}
    if "flagged" in battles.columns:
        found["flagged"] = battles["flagged"].fillna(False).astype(bool).to_numpy()
    if "flags" in battles.columns and names:
        sets = battles["flags"].map(flag_names)
        for name in names:
            found[name] = sets.map(lambda flags, n=name: n in flags).to_numpy(dtype=bool)
    return found
