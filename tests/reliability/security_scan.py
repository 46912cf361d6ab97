"""Readers that turn everything a study stored or wrote into text to search for leaks.

`redis_text` reads every key of every type (RQ's included: job records and results hold what
job functions were given and returned, compressed and encoded), `files_text` every file under
a directory, `export` runs the real `python -m bot.export` CLI the way a study team would.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
import subprocess
import sys
import zlib
from pathlib import Path

import redis

from devstack.harness import REPO, Stack

_BASE64 = re.compile(rb"[A-Za-z0-9+/]{16,}={0,2}")


def _unwrapped(raw: bytes) -> bytes:
    """RQ keeps job data zlib-compressed and results base64-encoded (pickles inside, whose
    strings are plain UTF-8): undo both so a text search sees what they hold."""
    out = [raw]
    candidates = [raw]
    if _BASE64.fullmatch(raw):
        with contextlib.suppress(binascii.Error):
            candidates.append(base64.b64decode(raw, validate=True))
    for data in candidates:
        try:
            out.append(zlib.decompress(data))
        except zlib.error:
            if data is not raw:
                out.append(data)
    return b"\n".join(out)


def _text(value: bytes | str | float | int) -> str:
    if isinstance(value, bytes):
        return _unwrapped(value).decode(errors="replace")
    return str(value)


def redis_text(client: redis.Redis) -> dict[str, str]:
    """key -> every value stored at it, as text (hash fields and stream entries included)."""
    out: dict[str, str] = {}
    for raw_key in client.scan_iter(count=1000):
        kind = _text(client.type(raw_key))
        if kind == "string":
            parts = [client.get(raw_key) or b""]
        elif kind == "hash":
            parts = [p for kv in client.hgetall(raw_key).items() for p in kv]
        elif kind in ("set",):
            parts = list(client.smembers(raw_key))
        elif kind == "zset":
            parts = [m for m, _ in client.zrange(raw_key, 0, -1, withscores=True)]
        elif kind == "list":
            parts = client.lrange(raw_key, 0, -1)
        elif kind == "stream":
            parts = [
                p
                for entry_id, fields in client.xrange(raw_key)
                for p in (entry_id, *(x for kv in fields.items() for x in kv))
            ]
        else:  # "none": expired between SCAN and TYPE
            continue
        out[_text(raw_key)] = "\n".join(_text(p) for p in parts)
    return out


def files_text(root: Path) -> dict[Path, str]:
    """Every file under `root`: its path and its bytes as text. Compressed formats (Parquet)
    hide strings from a byte search: read exports with `export_text` as well."""
    return {
        path: str(path) + "\n" + path.read_bytes().decode(errors="replace")
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def export(stack: Stack, out_dir: Path, suffix: str) -> tuple[Path, Path]:
    """Run `python -m bot.export` against the stack's Redis; returns (battles, participants)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    battles = out_dir / f"battles.{suffix}"
    participants = out_dir / f"participants.{suffix}"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot.export",
            "--out",
            str(battles),
            "--participants",
            str(participants),
        ],
        cwd=REPO,
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bot.export failed ({done.returncode}): {done.stderr}")
    return battles, participants


def export_text(path: Path) -> str:
    """An export file as text, whatever its format (Parquet read through pandas)."""
    if path.suffix == ".parquet":
        import pandas as pd

        return pd.read_parquet(path).to_csv(index=False)
    return path.read_text(encoding="utf-8")
