"""Scrubbing the worker streams of a withdrawn participant's battles."""

from __future__ import annotations

import json
from collections.abc import Mapping

import redis.asyncio as aioredis

from bot.core.codec import as_text
from contract.keys import PARTIALS_STREAM, RESULTS_STREAM, TRANSCRIPTS_STREAM

_BATCH = 500


async def scrub_streams(redis: aioredis.Redis, battle_ids: set[str]) -> int:
    """Delete worker results and partial replies of these battles; returns how many went."""
    deleted = 0
    for stream in (RESULTS_STREAM, PARTIALS_STREAM, TRANSCRIPTS_STREAM):
        start = "-"
        while True:
            entries = await redis.xrange(stream, min=start, count=_BATCH)
            if not entries:
                break
            doomed = [
                eid
                for eid, fields in entries
                if eid is not None and fields and stream_battle(fields) in battle_ids
            ]
            if doomed:
                deleted += await redis.xdel(stream, *doomed)
            last_id = entries[-1][0]
            if last_id is None:
                raise ValueError(f"{stream} returned an entry without an id")
            start = "(" + as_text(last_id)
    return deleted


def stream_battle(fields: Mapping[bytes | str, bytes | str]) -> str | None:
    """The battle id of a worker result (JSON in 'data') or partial reply ('battle_id')."""
    if b"battle_id" in fields:
        return as_text(fields[b"battle_id"])
    raw = fields.get(b"data")
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data.get("battle_id") if isinstance(data, dict) else None
