"""A participant's data rights: everything stored about them, and withdrawal (deleting it)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from bot.core import audio_files
from bot.core.codec import as_text, battle_json, participant_json
from bot.core.context import StudyContext
from bot.core.participants import Participants
from bot.core.reading import read_battles
from bot.core.scripts import Withdraw
from bot.core.streams import scrub_streams
from contract import keys
from contract.events import Withdrawn


class Withdrawal:
    def __init__(self, ctx: StudyContext, participants: Participants) -> None:
        self._ctx = ctx
        self._participants = participants

    async def withdraw(self, discord_id: int) -> list[str]:
        """Delete everything about the participant but the record that they withdrew, and when.

        One script deletes their battles, audio bytes, counts and events in Redis; then their
        audio files go and the worker streams are scrubbed of their battles' results. Returns the
        RQ job ids of their battles, so the caller can delete RQ's records of them
        (`contract.queueing.forget_jobs`). Results and partial replies that arrive later meet
        a battle that is gone: `forget_battle` deletes them (the bot's result listener calls it).
        """
        p = self._ctx.pseudonym(discord_id)
        members = await self._ctx.redis.smembers(keys.participant_battles(p))
        job_ids = await _job_ids(self._ctx.redis, sorted(as_text(m) for m in members))
        event = Withdrawn(participant=p, at=self._ctx.clock())
        battle_ids = await self._ctx.scripts.run(Withdraw(withdrawn=event))
        # Audio files of an earlier, interrupted withdrawal are deleted again: harmless.
        for battle_id in battle_ids:
            await asyncio.to_thread(audio_files.delete_audio, self._ctx.data_dir, battle_id)
        if battle_ids:
            await scrub_streams(self._ctx.redis, battle_ids)
        return job_ids

    async def forget_battle(self, battle_id: str) -> int:
        """Delete what the workers left of a battle that no longer exists (its participant
        withdrew while its replies were on their way): results and partial replies, and the
        audio file and bytes should a crash have left them. Refuses a battle that exists."""
        if await self._ctx.redis.exists(keys.battle(battle_id)):
            raise ValueError(f"battle {battle_id} exists: only a withdrawn battle is forgotten")
        await self._ctx.redis.delete(keys.audio_key(battle_id))
        await asyncio.to_thread(audio_files.delete_audio, self._ctx.data_dir, battle_id)
        return await scrub_streams(self._ctx.redis, {battle_id})

    async def my_data(self, discord_id: int) -> dict[str, Any]:
        """Everything stored about the participant, JSON-able (for a data-access request)."""
        participant = await self._participants.participant(discord_id)
        if participant is None:
            return {"participant": None, "battles": []}
        p = participant.pseudonym
        members = await self._ctx.redis.smembers(keys.participant_battles(p))
        battles = await read_battles(self._ctx.redis, sorted(as_text(m) for m in members))
        return {
            "participant": participant_json(participant),
            "battles": [battle_json(b) for b in sorted(battles, key=lambda b: b.created_at)],
        }


async def _job_ids(redis: Any, battle_ids: list[str]) -> list[str]:
    """The RQ job ids the Discord layer kept with these battles (`ui.jobs`)."""
    if not battle_ids:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for battle_id in battle_ids:
            pipe.hget(keys.battle(battle_id), "ui.jobs")
        raw = await pipe.execute()
    found: list[str] = []
    for value in raw:
        if value is None:
            continue
        try:
            jobs = json.loads(value)
        except ValueError:
            continue
        if isinstance(jobs, list):
            found.extend(str(j) for j in jobs if j)
    return found
