"""The moderators' use cases: study state and design, status, export, one participant.

`by` in the audit stream is the moderator's pseudonym, never a Discord id: every method here
takes the moderator's id and pseudonymises it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from bot import dispatch
from bot.service.deps import Deps
from bot.service.outcomes import (
    DesignView,
    Exported,
    ModerationDone,
    ParticipantData,
    Refusal,
    StateSet,
    StatusReport,
    Withdrawn,
)
from bot.service.participants import Participants
from contract.heartbeat import WorkerEntry
from contract.pairing import neighbour_gaps
from contract.records import (
    ParticipantStatus,
    Refused,
    ReplyMode,
    Strategy,
    StudyConfig,
    StudyState,
)

EXPORT_FORMATS = ("csv", "parquet", "jsonl")


def unserved(roster: Sequence[str], workers: Sequence[WorkerEntry]) -> list[str]:
    """The roster's models that none of these (live) workers serves."""
    served = {model for worker in workers for model in worker.models}
    return [model for model in sorted(roster) if model not in served]


class Moderation:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def _by(self, moderator_id: int) -> str:
        return self.deps.study.pseudonym(moderator_id)

    def names(self) -> dict[str, str]:
        return {model_id: spec.display_name for model_id, spec in self.deps.models.models.items()}

    async def design(self) -> DesignView:
        config = await self.deps.study.config()
        return DesignView(config, self.names(), list(self.deps.models.models))

    async def set_state(self, state: StudyState, moderator_id: int) -> StateSet | Refusal:
        """Open, pause or close; saying so, and writing nothing, when it already is."""
        current = await self.deps.study.config()
        if current.state == state:
            return StateSet(current, changed=False, unserved=await self._unserved(current))
        try:
            config = await self.deps.study.set_state(state, self._by(moderator_id))
        except Refused as refused:
            return Refusal.of(refused)
        return StateSet(config, changed=True, unserved=await self._unserved(config))

    async def _unserved(self, config: StudyConfig) -> list[str]:
        """Roster models of an open study that no live worker serves."""
        if config.state is not StudyState.OPEN:
            return []
        workers = await asyncio.to_thread(dispatch.live_workers, self.deps.rq_conn)
        return unserved(config.roster, workers)

    async def set_roster(self, roster: list[str], moderator_id: int) -> DesignView | Refusal:
        try:
            await self.deps.study.set_roster(roster, self._by(moderator_id))
        except Refused as refused:
            return Refusal.of(refused)
        return await self.design()

    async def set_strategy(self, strategy: Strategy, moderator_id: int) -> StudyConfig | Refusal:
        try:
            return await self.deps.study.set_strategy(strategy, self._by(moderator_id))
        except Refused as refused:
            return Refusal.of(refused)

    async def set_replies(self, mode: ReplyMode, moderator_id: int) -> StudyConfig | Refusal:
        """Text, speech or both, from the next battle on. Spoken replies need a voice for the
        text models: the models file's [tts] table."""
        if ReplyMode(mode).spoken and self.deps.models.tts is None:
            return Refusal(
                "no_tts",
                f"Spoken replies need a voice: the models file ({self.deps.models.path.name}) "
                "has no [tts] table. See docs/models.md.",
            )
        try:
            return await self.deps.study.set_replies(mode, self._by(moderator_id))
        except Refused as refused:
            return Refusal.of(refused)

    async def set_limits(self, moderator_id: int, **changes: Any) -> DesignView | Refusal:
        """Change the given `Limits` fields (none: just show them)."""
        if changes:
            try:
                await self.deps.study.set_limits(self._by(moderator_id), **changes)
            except Refused as refused:
                return Refusal.of(refused)
        return await self.design()

    async def status(self) -> StatusReport:
        design = await self.design()
        summary = await self.deps.study.summary()
        models = sorted(set(design.config.roster) | set(self.deps.models.models))
        conn = self.deps.rq_conn
        depths = await asyncio.to_thread(dispatch.queue_depths, conn, models)
        workers = await asyncio.to_thread(dispatch.live_workers, conn)
        oldest = await asyncio.to_thread(dispatch.oldest_waiting, conn, models)
        outcomes = await self.deps.study.pair_outcomes()
        gaps = neighbour_gaps(design.config.roster, outcomes) if outcomes else []
        missing = unserved(design.config.roster, workers)
        return StatusReport(design, summary, depths, workers, oldest, gaps, missing)

    async def export(self, fmt: str = "csv") -> Exported:
        """Every battle to `<data dir>/exports/battles-<UTC time>.<fmt>`."""
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"unknown export format {fmt!r}; known: {', '.join(EXPORT_FORMATS)}")
        # Imported on use: pandas and pyarrow would slow every bot start for a rare command.
        from bot.export import BATTLE_COLUMNS, battle_rows, write_rows

        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(self.deps.clock()))
        out = self.deps.data_dir / "exports" / f"battles-{stamp}.{fmt}"
        out.parent.mkdir(parents=True, exist_ok=True)
        rows = await battle_rows(self.deps.study)
        await asyncio.to_thread(write_rows, rows, BATTLE_COLUMNS, out)
        flags: Counter[str] = Counter()
        for row in rows:
            flags.update(f for f in str(row.get("flags") or "").split(",") if f)
        return Exported(
            out,
            len(rows),
            out.stat().st_size,
            voted=sum(1 for row in rows if row.get("winner")),
            participants=len({row.get("participant") for row in rows}),
            flags=dict(sorted(flags.items())),
        )

    async def info(self, member_id: int) -> ParticipantData:
        study = self.deps.study
        return ParticipantData(study.pseudonym(member_id), await study.my_data(member_id))

    async def withdrawable(self, member_id: int) -> ModerationDone | Refusal:
        """Whether `/participant withdraw` may ask to confirm: only someone who joined. A
        withdrawal record would lock a non-participant out of the study for good."""
        participant = await self.deps.study.participant(member_id)
        if participant is None:
            return Refusal(
                "not_a_participant",
                "That member never joined the study: there is nothing to withdraw (and they "
                "can still `/join`).",
            )
        if participant.status is ParticipantStatus.WITHDRAWN:
            return Refusal(
                "already_withdrawn", f"Participant `{participant.pseudonym}` already withdrew."
            )
        return ModerationDone(participant.pseudonym)

    async def withdraw(self, member_id: int, moderator_id: int) -> Withdrawn | Refusal:
        """The confirmed `/participant withdraw`: the same deletion as the participant's own."""
        checked = await self.withdrawable(member_id)
        if isinstance(checked, Refusal):
            return checked
        return await Participants(self.deps).withdraw(member_id)

    async def block(
        self, member_id: int, reason: str, moderator_id: int
    ) -> ModerationDone | Refusal:
        try:
            participant = await self.deps.study.block(member_id, reason, self._by(moderator_id))
        except Refused as refused:
            return Refusal.of(refused)
        return ModerationDone(participant.pseudonym)

    async def unblock(self, member_id: int, moderator_id: int) -> ModerationDone | Refusal:
        try:
            participant = await self.deps.study.unblock(member_id, self._by(moderator_id))
        except Refused as refused:
            return Refusal.of(refused)
        return ModerationDone(participant.pseudonym)
