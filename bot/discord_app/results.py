"""Replies coming back from the workers: the result-stream listener and the battle-message editor.

Results are read with the consumer group `RESULTS_GROUP`: first this consumer's pending entries
(id "0": results delivered before a crash but never acknowledged), then new ones (">"). An entry
is acknowledged only after the battle message shows it, and `study.set_ui(rendered=True)` marks
a battle whose replies are on screen, so a re-delivered result never posts twice.

Partial texts (PARTIALS_STREAM) are best effort: read from "now", no group, never acknowledged.

Withdrawal: a result or a partial reply for a battle that no longer exists (its participant
withdrew while the models were answering) is deleted from its stream as it arrives, with RQ's
record of the job, so nothing of what was said outlives the withdrawal.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import discord
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from bot.core.identity import shown_partial
from bot.discord_app import render, views
from bot.discord_app.common import NO_MENTIONS
from contract import keys
from contract.keys import PARTIALS_STREAM, RESULTS_GROUP, RESULTS_STREAM, TRANSCRIPTS_STREAM
from contract.protocol import ResultMessage, TranscriptMessage
from contract.queueing import job_record_keys
from contract.records import Battle, BattleStatus, Refused, ReplyMode

if TYPE_CHECKING:
    from bot.core import Study

log = logging.getLogger(__name__)

# Discord allows about 5 edits per 5 s per channel; one edit per 1.5 s per message keeps a
# streaming reply well inside that even with a few battles in one DM.
EDIT_INTERVAL_S = 1.5
CONSUMER = "bot"
BLOCK_MS = 2000
# Results read (and handled concurrently) per read: enough that a burst of battles finishing
# together is shown together, each still waiting only for its own message's edit turn.
READ_COUNT = 100
# RQ saves a job's record again once the job function returned, which can be just after its
# result reached us: the record of a withdrawn battle's job is deleted once more after this.
RQ_SETTLE_S = 5.0

# A stream entry's fields as redis-py types them (bytes on our client).
StreamFields = dict[bytes | str, bytes | str]


@dataclass
class _Live:
    """What the editor knows of one battle still on its way."""

    partials: dict[str, str] = field(default_factory=dict)
    position: int | None = None
    # The first edit puts the (disabled) buttons on the message, so they are there to see.
    show_buttons: bool = False
    last_edit: float = float("-inf")
    scheduled: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class BattleEditor:
    """Edits each battle's message: progress, streaming text, then the final two replies.

    All edits of one battle go through one lock and are spaced `interval` apart; intermediate
    states are coalesced (only the newest text is shown), the final one is never dropped.
    """

    def __init__(
        self,
        client: discord.Client,
        study: Study,
        *,
        interval: float = EDIT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.study = study
        self.interval = interval
        self.clock = clock
        self._live: dict[str, _Live] = {}
        self._done: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def _state(self, battle_id: str) -> _Live:
        return self._live.setdefault(battle_id, _Live())

    def reopen(self, battle_id: str) -> None:
        """The battle has a new turn: its replies are on their way again."""
        self._done.discard(battle_id)
        self._live.pop(battle_id, None)

    async def note(self, channel_id: str, message_id: str, text: str) -> None:
        """Replace a message's text (the acknowledgement of a voice reason)."""
        channel = self.client.get_partial_messageable(int(channel_id))
        await channel.get_partial_message(int(message_id)).edit(content=text)

    def partial(self, battle_id: str, side: str, text: str) -> None:
        if battle_id in self._done or side not in render.SIDES:
            return
        # Masked like the whole reply will be, and cut before an unfinished last word.
        self._state(battle_id).partials[side] = shown_partial(self.study.guard, text)
        self._schedule(battle_id)

    def progress(self, battle_id: str, position: int | None, *, buttons: bool = False) -> None:
        if battle_id in self._done:
            return
        state = self._state(battle_id)
        state.position = position
        state.show_buttons = state.show_buttons or buttons
        self._schedule(battle_id)

    def _schedule(self, battle_id: str) -> None:
        state = self._state(battle_id)
        if state.scheduled:
            return
        state.scheduled = True
        task = asyncio.get_running_loop().create_task(self._flush(battle_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _wait_turn(self, state: _Live) -> None:
        delay = state.last_edit + self.interval - self.clock()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _flush(self, battle_id: str) -> None:
        state = self._state(battle_id)
        async with state.lock:
            await self._wait_turn(state)
            state.scheduled = False
            if battle_id in self._done:
                return
            try:
                battle = await self.study.battle(battle_id)
                if battle is None:
                    # Withdrawn: drop the partial texts kept for it.
                    self._finish(battle_id)
                    return
                if battle.status is not BattleStatus.QUEUED:
                    return
                texts, failed = render.reply_texts(battle)
                if battle.reply_mode is ReplyMode.SPEECH:
                    # Spoken-only replies are not read before the vote, not even in part.
                    texts, state.partials = {}, {}
                for side, text in state.partials.items():
                    if texts.get(side) is None and side not in failed:
                        texts[side] = text
                streaming = any(texts.get(side) for side in render.SIDES)
                rendered = render.battle_message(
                    render.progress_header(state.position),
                    texts,
                    failed=failed,
                    streaming=True,
                )
                if not streaming and not failed:
                    # Nothing to show yet but the queue position.
                    rendered = render.RenderedBattle(
                        content=render.progress_header(state.position), overflow={}
                    )
                if state.show_buttons:
                    view = views.battle_view(battle_id, votes=False, comment=False)
                    await self._message(battle).edit(
                        content=rendered.content, view=view, allowed_mentions=NO_MENTIONS
                    )
                    state.show_buttons = False
                else:
                    await self._message(battle).edit(
                        content=rendered.content, allowed_mentions=NO_MENTIONS
                    )
            except (discord.HTTPException, RedisError) as exc:
                # A progress edit is cosmetic: the final render will retry.
                log.warning("could not update battle %s in progress: %s", battle_id, exc)
            finally:
                state.last_edit = self.clock()

    def _message(self, battle: Battle) -> discord.PartialMessage:
        channel_id = int(battle.ui["channel_id"])
        message_id = int(battle.ui["message_id"])
        return self.client.get_partial_messageable(channel_id).get_partial_message(message_id)

    async def final(self, battle: Battle) -> None:
        """Show both replies (and the vote buttons) or the failure; once per battle, except
        that a failed battle is shown again when the side still answering at its first
        failure answers (a failed side must not hide the other side's reply)."""
        state = self._state(battle.battle_id)
        async with state.lock:
            fresh = await self.study.battle(battle.battle_id)
            sides = "".join(sorted(fresh.replies)) if fresh is not None else ""
            if (
                fresh is None
                or fresh.status is BattleStatus.VOTED
                or (fresh.ui.get("rendered") and fresh.ui.get("rendered_sides", sides) == sides)
            ):
                self._finish(battle.battle_id)
                return
            if "message_id" not in fresh.ui:
                log.warning("battle %s has no message to edit; skipped", battle.battle_id)
                self._finish(battle.battle_id)
                return
            await self._wait_turn(state)
            rendered = render.render_battle(fresh)
            message = self._message(fresh)
            if rendered.overflow:
                files = [
                    discord.File(io.BytesIO(text.encode()), filename=render.attachment_name(side))
                    for side, text in sorted(rendered.overflow.items())
                ]
                await message.channel.send(
                    "The whole replies, too long for one message:",
                    files=files,
                    reference=message.to_reference(fail_if_not_exists=False),
                    mention_author=False,
                    allowed_mentions=NO_MENTIONS,
                )
            # A failed battle takes no vote: its buttons go.
            view = (
                views.battle_view(fresh.battle_id)
                if fresh.status is BattleStatus.ANSWERED
                else None
            )
            spoken = await self._spoken_files(fresh)
            if spoken:
                # The audio and the vote buttons arrive in one edit: nobody votes unheard.
                await message.edit(
                    content=rendered.content,
                    view=view,
                    attachments=spoken,
                    allowed_mentions=NO_MENTIONS,
                )
            else:
                await message.edit(
                    content=rendered.content, view=view, allowed_mentions=NO_MENTIONS
                )
            state.last_edit = self.clock()
            await self.study.set_ui(fresh.battle_id, rendered=True, rendered_sides=sides)
            self._finish(fresh.battle_id)

    async def _spoken_files(self, battle: Battle) -> list[discord.File]:
        """Both spoken replies as files named by side only, for an answered spoken battle."""
        if not battle.reply_mode.spoken or battle.status is not BattleStatus.ANSWERED:
            return []
        audio = await self.study.reply_audio(battle.battle_id)
        missing = [side for side in render.SIDES if side not in audio]
        if missing:
            # Expired or lost: show what there is; the text (kept in the battle) stands in.
            log.warning("battle %s: no spoken reply for side(s) %s", battle.battle_id, missing)
        return [
            discord.File(io.BytesIO(audio[side]), filename=render.spoken_name(side))
            for side in render.SIDES
            if side in audio
        ]

    def _finish(self, battle_id: str) -> None:
        self._done.add(battle_id)
        self._live.pop(battle_id, None)
        # Keep the "done" set from growing for ever; old ids only matter for late partials.
        if len(self._done) > 10_000:
            self._done.clear()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class ResultListener:
    """Reads RESULTS_STREAM (consumer group) and PARTIALS_STREAM and feeds the editor."""

    def __init__(
        self,
        redis: aioredis.Redis,
        study: Study,
        editor: BattleEditor,
        *,
        rq_settle_s: float = RQ_SETTLE_S,
    ) -> None:
        self.redis = redis
        self.study = study
        self.editor = editor
        self.rq_settle_s = rq_settle_s
        self._tasks: set[asyncio.Task[None]] = set()

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(RESULTS_STREAM, RESULTS_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def catch_up(self) -> None:
        """Render battles whose replies were recorded but never shown (a crash in between)."""
        for battle in await self.study.open_battles():
            if battle.status is BattleStatus.ANSWERED and not battle.ui.get("rendered"):
                await self._final(battle)

    async def run_results(self) -> None:
        await self.ensure_group()
        cursor = "0"  # pending entries of this consumer first, then ">" for new ones
        while True:
            try:
                cursor = await self._read_results(cursor)
            except (RedisError, OSError) as exc:
                log.warning("reading %s failed (%s); retrying in 1 s", RESULTS_STREAM, exc)
                await asyncio.sleep(1.0)
                # Anything read but not acknowledged is pending: start from it again.
                cursor = "0"

    async def _read_results(self, cursor: str) -> str:
        """One read of the stream; returns the cursor for the next one."""
        response = await self.redis.xreadgroup(
            RESULTS_GROUP,
            CONSUMER,
            {RESULTS_STREAM: cursor},
            count=READ_COUNT,
            block=None if cursor != ">" else BLOCK_MS,
        )
        entries = _entries(response)
        if cursor != ">":
            if not entries:
                return ">"
            last = entries[-1][0]
            cursor = last.decode() if isinstance(last, bytes) else str(last)

        async def settle(entry_id: bytes | str, fields: StreamFields | None) -> bool:
            # An entry deleted after delivery (a withdrawal XDELs the participant's results)
            # comes back from the pending list without fields: nothing to show, just ack.
            if not fields or await self.handle(fields):
                await self.redis.xack(RESULTS_STREAM, RESULTS_GROUP, entry_id)
                return True
            return False

        # The entries of one read at once: a final render may wait its message's edit turn
        # (EDIT_INTERVAL_S), and one at a time that wait would hold up every other battle.
        settled = await asyncio.gather(*(settle(entry_id, f) for entry_id, f in entries))
        if not all(settled):
            # Unacknowledged entries stay pending: read them again after a pause.
            await asyncio.sleep(1.0)
            return "0"
        return cursor

    async def handle(self, fields: StreamFields) -> bool:
        """Record and show one result; True when it may be acknowledged."""
        try:
            result = ResultMessage.from_fields(fields)
        except (ValueError, TypeError) as exc:
            log.error("dropping a malformed result message: %s", exc)
            return True
        try:
            battle, changed = await self.study.record_reply(result)
        except Refused as refused:
            # E.g. the participant withdrew meanwhile: nothing left to show, nothing to keep.
            log.info("result for battle %s not recorded: %s", result.battle_id, refused.code)
            if refused.code == "no_such_battle":
                return await self._forget(result)
            return True
        except ValueError as exc:
            # A result naming the wrong model for its side: a worker bug, never retried.
            log.error("dropping an inconsistent result: %s", exc)
            return True
        except RedisError as exc:
            log.warning("could not record result for %s (%s); will retry", result.battle_id, exc)
            return False
        if battle.status in (BattleStatus.ANSWERED, BattleStatus.FAILED):
            return await self._final(battle)
        if changed:
            self.editor.progress(battle.battle_id, None)
        return True

    async def _forget(self, result: ResultMessage) -> bool:
        """Delete a withdrawn battle's late result, its partial replies and its RQ record."""
        try:
            await self.study.forget_battle(result.battle_id)
            if result.job_id:
                await self.redis.delete(*job_record_keys(result.job_id))
        except ValueError as exc:
            # Not a battle id we could ever have made, or one that exists again: keep nothing.
            log.error("late result for %r not forgotten: %s", result.battle_id, exc)
            return True
        except RedisError as exc:
            log.warning(
                "could not delete the late result of %s (%s); will retry", result.battle_id, exc
            )
            return False
        if result.job_id and self.rq_settle_s >= 0:
            task = asyncio.get_running_loop().create_task(self._forget_job_later(result.job_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return True

    async def _forget_job_later(self, job_id: str) -> None:
        await asyncio.sleep(self.rq_settle_s)
        try:
            await self.redis.delete(*job_record_keys(job_id))
        except RedisError as exc:
            # RQ's result TTL (contract.queueing.RESULT_TTL_S) removes it within the hour anyway.
            log.warning("could not delete RQ's record of job %s: %s", job_id, exc)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _final(self, battle: Battle) -> bool:
        try:
            await self.editor.final(battle)
        except discord.NotFound:
            # The message or channel is gone (deleted thread, closed DMs): nothing to retry.
            log.info("battle %s: its message no longer exists", battle.battle_id)
        except discord.Forbidden:
            log.info("battle %s: no permission to edit its message", battle.battle_id)
        except discord.HTTPException as exc:
            log.warning(
                "battle %s: Discord refused the edit (%s); will retry", battle.battle_id, exc
            )
            return False
        except RedisError as exc:
            log.warning("battle %s: Redis error while rendering (%s)", battle.battle_id, exc)
            return False
        return True

    async def run_transcripts(self) -> None:
        """The study ASR's transcripts (TRANSCRIPTS_STREAM, consumer group): a turn's words for
        the models' histories, or a voice reason, kept as a comment."""
        try:
            await self.redis.xgroup_create(TRANSCRIPTS_STREAM, RESULTS_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        cursor = "0"
        while True:
            try:
                response = await self.redis.xreadgroup(
                    RESULTS_GROUP,
                    CONSUMER,
                    {TRANSCRIPTS_STREAM: cursor},
                    count=READ_COUNT,
                    block=None if cursor != ">" else BLOCK_MS,
                )
            except (RedisError, OSError) as exc:
                log.warning("reading %s failed (%s); retrying in 1 s", TRANSCRIPTS_STREAM, exc)
                await asyncio.sleep(1.0)
                cursor = "0"
                continue
            entries = _entries(response)
            if cursor != ">" and not entries:
                cursor = ">"
                continue
            for entry_id, fields in entries:
                if fields:
                    await self.handle_transcript(fields)
                await self.redis.xack(TRANSCRIPTS_STREAM, RESULTS_GROUP, entry_id)
            if cursor != ">" and entries:
                last = entries[-1][0]
                cursor = last.decode() if isinstance(last, bytes) else str(last)

    async def handle_transcript(self, fields: StreamFields) -> None:
        try:
            message = TranscriptMessage.from_fields(fields)
        except (ValueError, TypeError) as exc:
            log.error("dropping a malformed transcript message: %s", exc)
            return
        if message.purpose == "turn":
            if message.text is not None:
                await self.study.record_transcript(message.battle_id, message.turn, message.text)
            return
        if message.text is None:
            await self.study.drop_voice_reason(message.battle_id)
            battle = await self.study.battle(message.battle_id)
            text = render.REASON_FAILED
        else:
            battle = await self.study.record_voice_reason(message.battle_id, message.text)
            text = render.reason_saved(message.text)
        if battle is None or "reason_message_id" not in battle.ui:
            return
        try:
            await self.editor.note(
                battle.ui["reason_channel_id"], battle.ui["reason_message_id"], text
            )
        except discord.HTTPException as exc:
            log.info("could not show the voice reason of %s: %s", message.battle_id, exc)

    async def run_partials(self) -> None:
        cursor = "$"
        while True:
            try:
                response = await self.redis.xread(
                    {PARTIALS_STREAM: cursor}, count=100, block=BLOCK_MS
                )
            except (RedisError, OSError) as exc:
                log.warning("reading %s failed (%s); retrying in 1 s", PARTIALS_STREAM, exc)
                await asyncio.sleep(1.0)
                continue
            shown: list[tuple[bytes | str, str, str, str]] = []
            for entry_id, fields in _entries(response):
                cursor = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                if fields is None:
                    continue
                battle_id = _text(fields, "battle_id")
                side = _text(fields, "side")
                text = _text(fields, "text")
                if battle_id and side and text is not None:
                    shown.append((entry_id, battle_id, side, text))
            try:
                gone = await self._gone(shown)
            except (RedisError, OSError) as exc:
                log.warning("could not check partial replies (%s); shown as they are", exc)
                gone = set()
            for _, battle_id, side, text in shown:
                if battle_id not in gone:
                    self.editor.partial(battle_id, side, text)

    async def _gone(self, partials: list[tuple[bytes | str, str, str, str]]) -> set[str]:
        """The battles of these partials that no longer exist; their partials are deleted."""
        battle_ids = sorted({battle_id for _, battle_id, _, _ in partials})
        if not battle_ids:
            return set()
        async with self.redis.pipeline(transaction=False) as pipe:
            for battle_id in battle_ids:
                pipe.exists(keys.battle(battle_id))
            exists = await pipe.execute()
        gone = {b for b, there in zip(battle_ids, exists, strict=True) if not there}
        doomed = [entry_id for entry_id, battle_id, _, _ in partials if battle_id in gone]
        if doomed:
            await self.redis.xdel(PARTIALS_STREAM, *doomed)
        return gone


def _entries(response: object) -> list[tuple[bytes | str, StreamFields | None]]:
    """The entries of a one-stream XREAD/XREADGROUP reply: [[stream, entries]] (RESP2).

    redis-py types the reply as the union of its RESP2 and RESP3 shapes; ours is RESP2.
    """
    if not response:
        return []
    if not isinstance(response, list):
        raise TypeError(f"expected a RESP2 stream reply (a list), got {response!r:.200}")
    entries: list[tuple[bytes | str, StreamFields | None]] = response[0][1]
    return entries


def _text(fields: StreamFields, name: str) -> str | None:
    raw = fields.get(name.encode())
    if raw is None:
        raw = fields.get(name)
    if raw is None:
        return None
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
