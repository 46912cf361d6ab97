"""A participant's data rights: everything stored about them, and withdrawal (deleting it)."""

from __future__ import annotations

import asyncio
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

    async def withdraw(self, discord_id: int) -> None:
        """Delete everything about the participant but the record that they withdrew, and when.

        One script deletes their battles, audio bytes, counts and events in Redis; then their
        audio files go and the worker streams are scrubbed of their battles' results.
        """
        event = Withdrawn(participant=self._ctx.pseudonym(discord_id), at=self._ctx.clock())
        battle_ids = await self._ctx.scripts.run(Withdraw(withdrawn=event))
        # Audio files of an earlier, interrupted withdrawal are deleted again: harmless.
        for battle_id in battle_ids:
            await asyncio.to_thread(audio_files.delete_audio, self._ctx.data_dir, battle_id)
        if battle_ids:
            await scrub_streams(self._ctx.redis, battle_ids)

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
