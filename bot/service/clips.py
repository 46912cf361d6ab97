"""A voice message in: the rules before the download, the probe, and the battle with its jobs.

Three steps, because the Discord layer downloads the clip (and posts the progress reply, which
the battle's ui points at) between them; `take` chains them for a clip already in hand.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Sequence
from typing import Any

from redis.exceptions import RedisError

from bot import dispatch
from bot.service.deps import Deps
from bot.service.outcomes import (
    Admitted,
    BadAudio,
    Clip,
    ClipMeta,
    ConsentOutdated,
    NotAudio,
    NotDispatched,
    ReasonTaken,
    Refusal,
    Started,
    StillAnswering,
    TextOnly,
    TooBig,
    TooLong,
    UnknownLength,
)
from contract.audio import AudioError, audio_only, load, probe
from contract.keys import reason_audio_key, turn_audio_key
from contract.records import Battle, BattleStatus, Refused

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".ogg", ".oga", ".opus", ".mp3", ".wav", ".m4a", ".aac", ".flac", ".webm")
# Containers that usually hold a picture as well: their sound is taken (`read` keeps only the
# audio stream, judged by the content), their picture never is.
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")

Admission = Admitted | TextOnly | NotAudio | Refusal | ConsentOutdated | TooBig | StillAnswering
Reading = Clip | BadAudio | UnknownLength | TooLong
Start = Started | Refusal | NotDispatched | ReasonTaken


def looks_like_audio(filename: str, content_type: str | None, *, voice_message: bool) -> bool:
    if voice_message:
        return True
    if content_type and content_type.split(";")[0].strip().lower().startswith(("audio/", "video/")):
        return True
    return filename.lower().endswith(AUDIO_SUFFIXES + VIDEO_SUFFIXES)


def audio_suffix(filename: str, content_type: str | None) -> str:
    lowered = filename.lower()
    for suffix in AUDIO_SUFFIXES + VIDEO_SUFFIXES:
        if lowered.endswith(suffix):
            return suffix.lstrip(".")
    if content_type and "/" in content_type:
        # "audio/x-wav" -> "xwav": the study core takes 1-8 letters or digits.
        subtype = content_type.split("/", 1)[1].split(";")[0].strip().lower()
        cleaned = "".join(ch for ch in subtype if ch.isascii() and ch.isalnum())[:8]
        return cleaned or "ogg"
    return "ogg"


def first_audio(attachments: Sequence[ClipMeta]) -> ClipMeta | None:
    return next(
        (
            a
            for a in attachments
            if looks_like_audio(a.filename, a.content_type, voice_message=a.voice_message)
        ),
        None,
    )


class ClipIntake:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def admit(
        self, user_id: int, attachments: Sequence[ClipMeta], *, place: str | None = None
    ) -> Admission:
        """May this message's clip be downloaded? Checked before the download, so that a
        refused or too big file costs nothing.

        In `place` (the DM or thread it came in) the clip is, in this order: the spoken reason
        for a vote the participant asked to give one for; the next turn of their unvoted battle
        there, while it has fewer than `max_turns` turns; else a new battle (quota and rate
        rules apply only to that)."""
        study = self.deps.study
        if not attachments:
            participant = await study.participant(user_id)
            return TextOnly(joined=participant is not None and participant.has_consented)
        clip = first_audio(attachments)
        if clip is None:
            return NotAudio(attachments[0].filename)
        limits = (await study.config()).limits
        reason_for = continues = None
        if place is not None:
            reason_for = await study.awaited_reason(user_id, place)
            open_battle = None
            if reason_for is None:
                open_battle = await study.open_battle_in(user_id, place)
            # A battle at its turn limit takes no more turns: the message starts a new battle
            # (the old one keeps its vote buttons), so max_turns 1 is one battle per message.
            if open_battle is not None and open_battle.turn < limits.max_turns:
                if open_battle.status is BattleStatus.QUEUED:
                    return StillAnswering(open_battle.battle_id)
                continues = open_battle.battle_id
        if reason_for is None and continues is None:
            try:
                await study.check_eligibility(user_id)
            except Refused as refused:
                return Refusal.of(refused)
        # Agreeing to an older consent text is not agreeing to the current one.
        current = self.deps.consent_version
        participant = await study.participant(user_id)
        if participant is not None and participant.consent_version != current:
            return ConsentOutdated(current)
        if clip.size > limits.audio_max_bytes:
            return TooBig(clip.size, limits.audio_max_bytes)
        return Admitted(
            user_id=user_id,
            clip=clip,
            audio_format=audio_suffix(clip.filename, clip.content_type),
            limits=limits,
            place=place,
            continues=continues,
            reason_for=reason_for,
        )

    async def read(self, admitted: Admitted, data: bytes) -> Reading:
        """Probe the downloaded bytes and hold them to the limits, keep only the audio stream
        of a file that also holds video, and decode it all as the workers will: a recording
        no model could hear is the participant's to know about, before it uses any quota.
        PyAV blocks, so all of it runs in a thread."""
        limit = admitted.limits.audio_max_seconds
        try:
            info = await asyncio.to_thread(probe, data)
        except AudioError as exc:
            return BadAudio(exc.reason, str(exc))
        seconds = info.duration_s
        if seconds is None:
            return UnknownLength()
        if seconds > limit:
            return TooLong(seconds, limit)
        try:
            # Judged by the content: a .webm or .mp4 may carry a camera or a screen.
            data, audio_format = await asyncio.to_thread(audio_only, data, admitted.audio_format)
            # A damaged file can have a good header and last page: only decoding it all tells.
            await asyncio.to_thread(load, data, limit)
        except AudioError as exc:
            return BadAudio(exc.reason, str(exc))
        if audio_format != admitted.audio_format:
            admitted = dataclasses.replace(admitted, audio_format=audio_format)
        return Clip(admitted=admitted, data=data, seconds=seconds)

    async def start(self, clip: Clip, *, ui: dict[str, Any] | None = None) -> Start:
        """Start the battle (the core re-checks every rule atomically) and enqueue its two
        jobs; `ui` holds the Discord layer's refs for the battle message."""
        study = self.deps.study
        admitted = clip.admitted
        if admitted.reason_for is not None:
            return await self._take_reason(clip, admitted.reason_for)
        try:
            if admitted.continues is not None:
                # The new turn's replies go on the new progress message.
                battle = await study.continue_battle(
                    admitted.user_id,
                    admitted.continues,
                    clip.data,
                    clip.seconds,
                    admitted.audio_format,
                    ui=ui,
                )
            else:
                battle = await study.start_battle(
                    admitted.user_id, clip.data, clip.seconds, admitted.audio_format, ui=ui
                )
        except Refused as refused:
            return Refusal.of(refused)
        requests = dispatch.battle_requests(
            battle.battle_id,
            {"a": battle.model_a, "b": battle.model_b},
            audio_format=admitted.audio_format,
            max_audio_seconds=admitted.limits.audio_max_seconds,
            now=self.deps.clock(),
            speak=battle.reply_mode.spoken,
            turn=battle.turn,
            histories={side: battle.history(side) for side in ("a", "b")},
        )
        conn = self.deps.rq_conn
        try:
            job_ids = await asyncio.to_thread(
                dispatch.enqueue_battle, conn, requests, timeout_s=self.deps.job_timeout_s
            )
        except RedisError as exc:
            log.error("could not enqueue battle %s: %s", battle.battle_id, exc)
            return NotDispatched(battle.battle_id)
        await study.set_ui(battle.battle_id, jobs=job_ids)
        await self._transcribe_turn(battle, admitted)
        position = await asyncio.to_thread(dispatch.queue_position, conn, job_ids)
        return Started(battle=battle, job_ids=job_ids, position=position)

    async def _transcribe_turn(self, battle: Battle, admitted: Admitted) -> None:
        """Have the study's ASR write down the turn's words for the models' later histories,
        where neither side transcribes them itself. Best effort: without it, the history says
        only that the participant sent a voice message."""
        if not dispatch.needs_transcript(self.deps.models, battle):
            return
        try:
            await asyncio.to_thread(
                functools.partial(
                    dispatch.enqueue_transcribe,
                    self.deps.rq_conn,
                    self.deps.models,
                    battle_id=battle.battle_id,
                    purpose="turn",
                    audio_key=turn_audio_key(battle.battle_id, battle.turn),
                    audio_format=admitted.audio_format,
                    max_audio_seconds=admitted.limits.audio_max_seconds,
                    turn=battle.turn,
                    timeout_s=self.deps.job_timeout_s,
                )
            )
        except RedisError as exc:
            log.warning("could not enqueue the transcript of battle %s: %s", battle.battle_id, exc)

    async def _take_reason(self, clip: Clip, battle_id: str) -> ReasonTaken | Refusal:
        admitted = clip.admitted
        study = self.deps.study
        try:
            await study.take_voice_reason(
                admitted.user_id, battle_id, admitted.place or "", clip.data
            )
        except Refused as refused:
            return Refusal.of(refused)
        try:
            job_id = await asyncio.to_thread(
                functools.partial(
                    dispatch.enqueue_transcribe,
                    self.deps.rq_conn,
                    self.deps.models,
                    battle_id=battle_id,
                    purpose="reason",
                    audio_key=reason_audio_key(battle_id),
                    audio_format=admitted.audio_format,
                    max_audio_seconds=admitted.limits.audio_max_seconds,
                    timeout_s=self.deps.job_timeout_s,
                )
            )
        except RedisError as exc:
            log.error("could not enqueue the voice reason of battle %s: %s", battle_id, exc)
            await study.drop_voice_reason(battle_id)
            return Refusal("not_dispatched", "Sorry, I couldn't take your reason just now.")
        return ReasonTaken(battle_id, job_id)

    async def take(
        self,
        user_id: int,
        clip: ClipMeta,
        data: bytes,
        *,
        ui: dict[str, Any] | None = None,
        place: str | None = None,
    ) -> Admission | Reading | Start:
        """The whole use case for a clip already downloaded: admit, read, start."""
        admission = await self.admit(user_id, [clip], place=place)
        if not isinstance(admission, Admitted):
            return admission
        reading = await self.read(admission, data)
        if not isinstance(reading, Clip):
            return reading
        return await self.start(reading, ui=ui)
