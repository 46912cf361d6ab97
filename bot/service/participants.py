"""A participant's own use cases: joining (the consent-version rule), the optional demographics,
what is stored about them, leaving, and the id of their private thread."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.service.deps import Deps
from bot.service.outcomes import Agreed, ConsentChanged, JoinStart, Refusal, Withdrawn
from contract import keys, queueing
from contract.records import Demographics, Limits, Participant, ParticipantStatus, Refused


class Participants:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def join_start(self, user_id: int) -> JoinStart:
        """The consent form, unless they are active and agreed to the current version."""
        version = self.deps.consent_version
        participant = await self.deps.study.participant(user_id)
        agreed = (
            participant is not None
            and participant.status is ParticipantStatus.ACTIVE
            and participant.consent_version == version
        )
        return JoinStart(version=version, needs_consent=not agreed)

    async def agree(self, user_id: int, version: str) -> Agreed | ConsentChanged | Refusal:
        """Consent to `version`, the one the participant was shown; an older form no longer
        counts."""
        current = self.deps.consent_version
        if version != current:
            return ConsentChanged(current)
        try:
            participant = await self.deps.study.consent(user_id, version)
        except Refused as refused:
            return Refusal.of(refused)
        return Agreed(participant)

    async def tell_about_you(
        self, user_id: int, demographics: Demographics
    ) -> Participant | Refusal:
        try:
            return await self.deps.study.set_demographics(user_id, demographics)
        except Refused as refused:
            return Refusal.of(refused)

    async def limits(self) -> Limits:
        return (await self.deps.study.config()).limits

    async def my_data(self, user_id: int) -> dict[str, Any]:
        return await self.deps.study.my_data(user_id)

    async def withdraw(self, user_id: int) -> Withdrawn | Refusal:
        """The core deletes the study data and the thread's id is forgotten; the id comes back so
        that the Discord layer can remove the recordings in that thread. Someone who never
        joined is refused: a withdrawal record would lock them out for good."""
        if await self.deps.study.participant(user_id) is None:
            return Refusal(
                "not_a_participant", "You have not joined the study, so there is nothing to delete."
            )
        pseudonym = self.deps.study.pseudonym(user_id)
        key = keys.participant_thread(pseudonym)
        thread_id = await self.deps.redis.get(key)
        job_ids = await self.deps.study.withdraw(user_id)
        await self.deps.redis.delete(key)
        # RQ keeps each job's arguments: waiting jobs are cancelled and every record deleted.
        await asyncio.to_thread(queueing.forget_jobs, self.deps.rq_conn, job_ids)
        return Withdrawn(pseudonym, int(thread_id) if thread_id is not None else None)

    async def thread_id(self, user_id: int) -> int | None:
        """The participant's private thread, as last remembered."""
        raw = await self.deps.redis.get(keys.participant_thread(self.deps.study.pseudonym(user_id)))
        return int(raw) if raw is not None else None

    async def remember_thread(self, user_id: int, thread_id: int) -> None:
        key = keys.participant_thread(self.deps.study.pseudonym(user_id))
        await self.deps.redis.set(key, str(thread_id))
