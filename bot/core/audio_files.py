"""Participant audio on disk: data_dir/audio/<battle_id>.<fmt>, written atomically.

Names are chosen by the project (the random battle id and a checked suffix), never taken from
users, so nothing a participant sends can steer where a file goes.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

AUDIO_DIR = "audio"
_FORMAT = re.compile(r"^[a-z0-9]{1,8}$")
_BATTLE_ID = re.compile(r"^[0-9a-f]{16}$")


def check_format(audio_format: str) -> str:
    fmt = audio_format.lower().lstrip(".")
    if not _FORMAT.match(fmt):
        raise ValueError(f"audio format must be 1-8 letters or digits, got {audio_format!r}")
    return fmt


def check_battle_id(battle_id: str) -> str:
    if not _BATTLE_ID.match(battle_id):
        raise ValueError(f"battle id must be 16 lowercase hex characters, got {battle_id!r}")
    return battle_id


def audio_ref(battle_id: str, audio_format: str) -> str:
    """Path relative to the data dir, as stored in the battle."""
    return f"{AUDIO_DIR}/{check_battle_id(battle_id)}.{check_format(audio_format)}"


def turn_audio_ref(battle_id: str, turn: int, audio_format: str, nonce: str) -> str:
    """A later turn's clip: data_dir/audio/<battle_id>.t<n>-<nonce>.<fmt>, deleted with the
    battle (`delete_audio`). The nonce keeps two racing messages from sharing one file."""
    if turn < 2:
        raise ValueError(f"a later turn is turn 2 or more, got {turn}")
    if not re.fullmatch(r"[0-9a-f]{1,16}", nonce):
        raise ValueError(f"nonce must be 1-16 lowercase hex characters, got {nonce!r}")
    fmt = check_format(audio_format)
    return f"{AUDIO_DIR}/{check_battle_id(battle_id)}.t{int(turn)}-{nonce}.{fmt}"


def write_audio(data_dir: Path, ref: str, audio: bytes) -> Path:
    """Write to a temp file in the same directory, fsync, then rename: never a half file."""
    path = data_dir / ref
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(audio)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def delete_audio(data_dir: Path, battle_id: str) -> list[Path]:
    """Delete every file of a battle (any suffix, and a temp file left by a crash)."""
    folder = data_dir / AUDIO_DIR
    check_battle_id(battle_id)
    removed = []
    for path in [*folder.glob(f"{battle_id}.*"), *folder.glob(f".{battle_id}.*.tmp")]:
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed
