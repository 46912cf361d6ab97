"""Export the battles (and participants) of a study: Parquet, CSV or JSONL by suffix.

    python -m bot.export --out battles.parquet [--participants participants.csv]

One row per battle. The core columns follow the Chatbot Arena (FastChat) battle format except
for two names: FastChat's `question_id` is our `battle_id` and its `judge` is our `participant`
(`tstamp`, `model_a`, `model_b`, `winner` are the same). `--fastchat` writes those two columns
under FastChat's names instead, for tools that expect them.
Rows hold pseudonyms only: never Discord ids, usernames, Discord message refs or audio paths.
Withdrawn participants' battles are gone from the store, so they are in no export.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import redis.asyncio as aioredis

from bot.core import Participant, Study, connect, iter_battle_records, iter_participants
from bot.core.codec import battle_from_hash
from contract.modelsfile import ModelsFile, ModelsFileError, load_models_file
from contract.records import Battle
from contract.settings import SettingsError, load_settings

BATTLE_COLUMNS = [
    "battle_id",
    "tstamp",  # UTC: when the vote was cast, or when the battle started if unvoted
    "participant",
    "model_a",
    "model_b",
    "winner",  # model_a | model_b | tie | tie (bothbad) | null (unvoted)
    "static_name_a",  # the models file's static_name of model_a (its benchmark-table row), or null
    "static_name_b",
    "status",
    "strategy",
    "turn",
    "created_at",
    "answered_at",
    "voted_at",
    "vote_delay_s",
    "audio_seconds",
    "transcript",
    "transcript_a",
    "transcript_b",
    "reply_a",
    "reply_b",
    "latency_a",
    "latency_b",
    "first_token_a",
    "first_token_b",
    "error_a",
    "error_b",
    "comment",
    "n_comments",
    "flags",
    "reply_mode",  # text | speech | both: how the participant got the replies
    "speech_seconds_a",  # length of the spoken reply the participant heard (speech/both)
    "speech_seconds_b",
    "conversation_a",  # JSON [{"role", "content"}, ...]: every turn, this side's replies only
    "conversation_b",
    "latencies_a",  # JSON list: each turn's reply latency (s), oldest first
    "latencies_b",
    "loss_reason",  # understanding | content | speech_quality | too_slow | other | null
    "voice_reason",  # the spoken reasons, as the study's ASR wrote them down
]
PARTICIPANT_COLUMNS = [
    "participant",
    "status",
    "consent_version",
    "consented_at",
    "joined_at",
    "withdrawn_at",
    "age_band",
    "gender",
    "first_language",
    "country",
]
_TIME_COLUMNS = frozenset(
    ("tstamp", "created_at", "answered_at", "voted_at", "consented_at", "joined_at", "withdrawn_at")
)
SUFFIXES = (".parquet", ".csv", ".jsonl")


def battle_row(
    record: Mapping[str, str], static_names: Mapping[str, str | None] | None = None
) -> dict[str, Any]:
    """One export row from a stored battle record (see bot.core.codec for the fields).

    Reads the record rather than a Battle: 100,000 frozen dataclasses would cost seconds.
    `static_names` maps model id -> its static_name in the models file (`static_name_a/_b`).
    """
    names = static_names or {}
    a = json.loads(record["reply_a"]) if record.get("reply_a") else {}
    b = json.loads(record["reply_b"]) if record.get("reply_b") else {}
    timings_a, timings_b = a.get("timings") or {}, b.get("timings") or {}
    stored = [
        json.loads(record[f"comment:{i}"])
        for i in range(1, int(record.get("n_comments", "0")) + 1)
        if f"comment:{i}" in record
    ]
    comments = [c["text"] for c in stored]
    voice = [c["text"] for c in stored if c.get("source") == "voice"]
    battle = battle_from_hash(record)
    created_at = float(record["created_at"])
    voted_at = _float(record.get("voted_at"))
    return {
        "battle_id": record["battle_id"],
        "tstamp": voted_at if voted_at is not None else created_at,
        "participant": record["participant"],
        "model_a": record["model_a"],
        "model_b": record["model_b"],
        "winner": record.get("winner") or None,
        "static_name_a": names.get(record["model_a"]),
        "static_name_b": names.get(record["model_b"]),
        "status": record["status"],
        "strategy": record["strategy"],
        # Turns of the conversation; reply_*, transcript*, latency_* hold the last one's.
        "turn": battle.turn,
        "created_at": created_at,
        "answered_at": _float(record.get("answered_at")),
        "voted_at": voted_at,
        "vote_delay_s": _float(record.get("vote_delay_s")),
        "audio_seconds": float(record["audio_seconds"]),
        # The last turn's words: the study ASR's transcript of the clip where it ran (battles with
        # no ASR-pipeline side), else whichever side transcribed the clip itself.
        "transcript": _study_transcript(battle) or a.get("transcript") or b.get("transcript"),
        "transcript_a": a.get("transcript"),
        "transcript_b": b.get("transcript"),
        "reply_a": a.get("text"),
        "reply_b": b.get("text"),
        "latency_a": timings_a.get("total"),
        "latency_b": timings_b.get("total"),
        "first_token_a": timings_a.get("first_token"),
        "first_token_b": timings_b.get("first_token"),
        "error_a": a.get("error"),
        "error_b": b.get("error"),
        "comment": "\n\n".join(comments) or None,
        "n_comments": len(comments),
        "flags": record.get("flags", ""),
        "reply_mode": record.get("reply_mode") or "text",
        "speech_seconds_a": a.get("audio_seconds"),
        "speech_seconds_b": b.get("audio_seconds"),
        "conversation_a": json.dumps(battle.conversation("a"), ensure_ascii=False),
        "conversation_b": json.dumps(battle.conversation("b"), ensure_ascii=False),
        "latencies_a": json.dumps(_latencies(battle, "a")),
        "latencies_b": json.dumps(_latencies(battle, "b")),
        "loss_reason": record.get("loss_reason") or None,
        "voice_reason": "\n\n".join(voice) or None,
    }


def _study_transcript(battle: Battle) -> str | None:
    return battle.turns[-1].transcript if battle.turns else None


def _latencies(battle: Battle, side: str) -> list[float | None]:
    return [
        (reply.timings.get("total") if (reply := turn.replies.get(side)) else None)
        for turn in battle.turns
    ]


def _float(value: str | None) -> float | None:
    return float(value) if value else None


def participant_row(participant: Participant) -> dict[str, Any]:
    d = participant.demographics
    return {
        "participant": participant.pseudonym,
        "status": participant.status.value,
        "consent_version": participant.consent_version,
        "consented_at": participant.consented_at,
        "joined_at": participant.joined_at,
        "withdrawn_at": participant.withdrawn_at,
        "age_band": d.age_band,
        "gender": d.gender,
        "first_language": d.first_language,
        "country": d.country,
    }


def _frame(rows: list[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(columns))
    for name in columns:
        if name in _TIME_COLUMNS:
            frame[name] = pd.to_datetime(frame[name].astype("float64"), unit="s", utc=True)
    return frame


def _iso(value: float | None) -> str | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value, UTC).isoformat(timespec="microseconds")


def _redis_of(source: Study | aioredis.Redis) -> aioredis.Redis:
    return source.redis if isinstance(source, Study) else source


def static_names_of(models: ModelsFile | None) -> dict[str, str | None]:
    """Model id -> static_name from a models file (empty without one)."""
    if models is None:
        return {}
    return {model_id: spec.static_name for model_id, spec in models.models.items()}


async def battle_rows(
    source: Study | aioredis.Redis, models: ModelsFile | None = None
) -> list[dict[str, Any]]:
    """Export rows; a Study brings its own models file for the static names."""
    if models is None and isinstance(source, Study):
        models = source.known_models
    names = static_names_of(models)
    return [battle_row(r, names) async for r in iter_battle_records(_redis_of(source))]


async def participant_rows(source: Study | aioredis.Redis) -> list[dict[str, Any]]:
    rows = [participant_row(p) async for p in iter_participants(_redis_of(source))]
    return sorted(rows, key=lambda r: r["participant"])


async def battles_frame(
    source: Study | aioredis.Redis, models: ModelsFile | None = None
) -> pd.DataFrame:
    """The battles export as a DataFrame (times as UTC timestamps)."""
    return _frame(await battle_rows(source, models), BATTLE_COLUMNS)


async def participants_frame(source: Study | aioredis.Redis) -> pd.DataFrame:
    return _frame(await participant_rows(source), PARTICIPANT_COLUMNS)


def check_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"export file must end in {', '.join(SUFFIXES)}; got {str(path)!r}")
    return suffix


def write_rows(rows: list[dict[str, Any]], columns: Sequence[str], path: Path) -> Path:
    """Write by suffix to a temp file, then rename: a reader never sees half an export.

    Times are UTC: timestamps in Parquet and CSV, ISO 8601 text in JSONL.
    """
    path = Path(path)
    suffix = check_suffix(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if suffix == ".jsonl":
        # Plain json per row: pandas' to_json takes seconds over 100,000 rows of text.
        with open(tmp, "w", encoding="utf-8") as fh:
            for row in rows:
                out = {c: _iso(row[c]) if c in _TIME_COLUMNS else row[c] for c in columns}
                fh.write(json.dumps(out, ensure_ascii=False) + "\n")
    elif suffix == ".csv":
        # Arrow's C++ writer: pandas' to_csv takes seconds over 100,000 rows of text.
        table = pa.Table.from_pandas(_frame(rows, columns), preserve_index=False)
        pacsv.write_csv(table, tmp)
    else:
        _frame(rows, columns).to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path


async def export_battles(
    source: Study | aioredis.Redis, path: Path | str, models: ModelsFile | None = None
) -> int:
    """Write one row per battle to `path` (.parquet, .csv or .jsonl); returns the row count.

    `models` (default: a Study's own models file) fills `static_name_a` / `static_name_b`.
    """
    path = Path(path)
    check_suffix(path)
    rows = await battle_rows(source, models)
    await asyncio.to_thread(write_rows, rows, BATTLE_COLUMNS, path)
    return len(rows)


# Our column -> FastChat's name for it (`--fastchat`); every other column keeps its name.
FASTCHAT_NAMES = {"battle_id": "question_id", "participant": "judge"}


def fastchat_named(
    rows: list[dict[str, Any]], columns: Sequence[str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows and columns with FastChat's names for battle_id and participant."""
    renamed = [{FASTCHAT_NAMES.get(k, k): v for k, v in row.items()} for row in rows]
    return renamed, [FASTCHAT_NAMES.get(c, c) for c in columns]


async def export_participants(source: Study | aioredis.Redis, path: Path | str) -> int:
    """Write the participants table (pseudonym, consent, demographics, status)."""
    path = Path(path)
    check_suffix(path)
    rows = await participant_rows(source)
    await asyncio.to_thread(write_rows, rows, PARTICIPANT_COLUMNS, path)
    return len(rows)


async def _run(
    redis_url: str,
    out: Path,
    participants: Path | None,
    models: ModelsFile | None,
    *,
    fastchat: bool = False,
) -> None:
    client = connect(redis_url)
    try:
        if fastchat:
            rows, columns = fastchat_named(await battle_rows(client, models), BATTLE_COLUMNS)
            await asyncio.to_thread(write_rows, rows, columns, out)
            n = len(rows)
        else:
            n = await export_battles(client, out, models)
        print(f"wrote {n} battles to {out}")
        if participants is not None:
            n = await export_participants(client, participants)
            print(f"wrote {n} participants to {participants}")
    finally:
        await client.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot.export",
        description="Export a study's battles (one row per battle) from Redis (REDIS_URL).",
    )
    parser.add_argument("--out", type=Path, required=True, help="FILE.parquet, .csv or .jsonl")
    parser.add_argument("--participants", type=Path, help="also write the participants table here")
    parser.add_argument(
        "--fastchat",
        action="store_true",
        help="name battle_id and participant as FastChat does: question_id and judge",
    )
    args = parser.parse_args(argv)
    for path in (args.out, args.participants):
        if path is not None and path.suffix.lower() not in SUFFIXES:
            parser.error(f"{path}: the file must end in {', '.join(SUFFIXES)}")
    try:
        settings = load_settings()
        # Optional: without PARLEY_MODELS the static_name columns stay empty.
        models = load_models_file(settings.models_file) if settings.models_file else None
    except (SettingsError, ModelsFileError) as exc:
        print(exc, file=sys.stderr)
        return 2
    asyncio.run(
        _run(settings.redis_url, args.out, args.participants, models, fastchat=args.fastchat)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
