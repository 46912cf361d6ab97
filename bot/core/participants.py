"""Participants: their record, consent, demographics, and blocking by moderators."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping

from bot.core.codec import decode_hash, participant_from_hash
from bot.core.context import StudyContext
from bot.core.refusals import refused
from bot.core.scripts import UpdateParticipant
from contract import keys
from contract.events import Blocked, Consented, DemographicsSet, Unblocked
from contract.records import Demographics, Participant, fmt_time

DEMOGRAPHIC_MAX_CHARS = 64


class Participants:
    def __init__(self, ctx: StudyContext) -> None:
        self._ctx = ctx

    async def participant(self, discord_id: int) -> Participant | None:
        raw = await self._ctx.redis.hgetall(keys.participant(self._ctx.pseudonym(discord_id)))
        return participant_from_hash(decode_hash(raw)) if raw else None

    async def _update(
        self,
        event: Consented | DemographicsSet | Blocked | Unblocked,
        fields: Mapping[str, str],
        guard: tuple[str, str] | None = None,
    ) -> Participant:
        outcome = await self._ctx.scripts.run(
            UpdateParticipant(event=event, fields=fields, guard=guard)
        )
        if outcome.code == "withdrawn":
            raise refused("withdrawn")
        return participant_from_hash(outcome.record)

    async def consent(self, discord_id: int, version: str) -> Participant:
        """Idempotent: consenting again to the same version writes nothing."""
        if not isinstance(version, str) or not version.strip():
            raise ValueError(f"consent version must be a non-empty string, got {version!r}")
        event = Consented(
            participant=self._ctx.pseudonym(discord_id), at=self._ctx.clock(), version=version
        )
        return await self._update(
            event,
            {"consent_version": version, "consented_at": fmt_time(event.at)},
            guard=("consent_version", version),
        )

    async def set_demographics(self, discord_id: int, demographics: Demographics) -> Participant:
        clean: dict[str, str | None] = {}
        for name, value in dataclasses.asdict(demographics).items():
            if value is not None and not isinstance(value, str):
                raise ValueError(f"demographics.{name} must be a string or None, got {value!r}")
            value = value.strip() if value else None
            if value and len(value) > DEMOGRAPHIC_MAX_CHARS:
                raise ValueError(
                    f"demographics.{name} is longer than {DEMOGRAPHIC_MAX_CHARS} characters: "
                    f"{value[:80]!r}"
                )
            clean[name] = value or None
        current = await self.participant(discord_id)
        if current is None or not current.has_consented:
            raise refused("no_consent")
        event = DemographicsSet(
            participant=self._ctx.pseudonym(discord_id),
            at=self._ctx.clock(),
            demographics=Demographics(**clean),
        )
        return await self._update(event, {"demographics": json.dumps(clean)})

    async def block(self, discord_id: int, reason: str, by: str) -> Participant:
        event = Blocked(
            participant=self._ctx.pseudonym(discord_id), at=self._ctx.clock(), reason=reason, by=by
        )
        return await self._update(
            event,
            {
                "status": "blocked",
                "blocked_reason": reason,
                "blocked_by": by,
                "blocked_at": fmt_time(event.at),
            },
        )

    async def unblock(self, discord_id: int, by: str) -> Participant:
        event = Unblocked(participant=self._ctx.pseudonym(discord_id), at=self._ctx.clock(), by=by)
        return await self._update(
            event,
            {"status": "active", "blocked_reason": "", "blocked_by": "", "blocked_at": ""},
            guard=("status", "active"),
        )
