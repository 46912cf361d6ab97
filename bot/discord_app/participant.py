"""The participants' side: /join, consent, demographics, voice messages in, /withdraw, /mydata."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands
from redis.exceptions import RedisError

from bot import dispatch
from bot.discord_app import render, views
from contract import keys
from contract.audio import AudioError, AudioInfo, probe
from contract.records import ParticipantStatus, Refused

if TYPE_CHECKING:
    from bot.discord_app.app import ParleyBot

log = logging.getLogger(__name__)


def resolve_channel(guild: discord.Guild, wanted: str | None) -> discord.TextChannel | None:
    """PARLEY_STUDY_CHANNEL is a channel id or name."""
    if not wanted:
        return None
    wanted = wanted.strip().lstrip("#")
    if wanted.isdigit():
        channel = guild.get_channel(int(wanted))
        return channel if isinstance(channel, discord.TextChannel) else None
    return discord.utils.get(guild.text_channels, name=wanted)


THREAD_WAIT_S = 1.0


class Participant(commands.Cog):
    """Everything a participant does. Rules live in the study core; this only translates."""

    def __init__(self, bot: ParleyBot) -> None:
        self.bot = bot
        self._tasks: set[asyncio.Task[None]] = set()
        # Private threads being opened, by user id (see `open_thread_soon`).
        self._opening: dict[int, asyncio.Task[discord.Thread | None]] = {}

    # --- joining ---------------------------------------------------------------------------

    @app_commands.command(name="join", description="Join the study: read the consent form.")
    async def join(self, interaction: discord.Interaction) -> None:
        await self.start_join(interaction)

    async def start_join(self, interaction: discord.Interaction) -> None:
        version = self.bot.settings.consent_version
        participant = await self.bot.study.participant(interaction.user.id)
        if (
            participant is not None
            and participant.status is ParticipantStatus.ACTIVE
            and participant.consent_version == version
        ):
            await self.show_instructions(interaction, edit=False)
            return
        embed = discord.Embed(
            title=render.consent_title(version),
            description=self.bot.consent_text[:4096],
            colour=discord.Colour.blurple(),
        )
        await interaction.response.send_message(
            embed=embed, view=views.consent_view(version), ephemeral=True
        )

    async def agree(self, interaction: discord.Interaction, version: str) -> None:
        current = self.bot.settings.consent_version
        if version != current:
            await interaction.response.edit_message(
                content="The consent form has changed since this was shown; please read the "
                "new version (use `/join`).",
                embed=None,
                view=None,
            )
            return
        try:
            await self.bot.study.consent(interaction.user.id, version)
        except Refused as refused:
            await interaction.response.edit_message(content=refused.message, embed=None, view=None)
            return
        await interaction.response.edit_message(
            content="Thank you for joining! If you like, tell us a little about yourself "
            "(every field is optional) — or skip straight to the instructions.",
            embed=None,
            view=views.about_you_view(),
        )
        if interaction.guild is not None:
            # Open the thread while the participant reads the form, not when they close it.
            self.open_thread_soon(interaction.guild, interaction.user)

    async def cog_unload(self) -> None:
        # Bot.close() removes cogs before closing its HTTP session: stop REST work first.
        pending = [*self._tasks, *self._opening.values()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def open_thread_soon(
        self, guild: discord.Guild, user: discord.abc.User
    ) -> asyncio.Task[discord.Thread | None]:
        """Start opening the participant's private thread in the background (once)."""
        task = self._opening.get(user.id)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._open_thread(guild, user))
            self._opening[user.id] = task
            task.add_done_callback(lambda _: self._opening.pop(user.id, None))
        return task

    async def _open_thread(
        self, guild: discord.Guild, user: discord.abc.User
    ) -> discord.Thread | None:
        try:
            return await self.ensure_thread(guild, user)
        except discord.HTTPException as exc:
            log.warning("could not open a private thread: %s", exc)
            return None

    async def show_instructions(self, interaction: discord.Interaction, *, edit: bool) -> None:
        limits = (await self.bot.study.config()).limits
        thread: discord.Thread | None = None
        if interaction.guild is not None:
            opening = self.open_thread_soon(interaction.guild, interaction.user)
            try:
                # Discord drops an interaction not answered within 3 s, and opening a thread
                # takes several REST calls: past this wait, answer without the thread's link.
                thread = await asyncio.wait_for(asyncio.shield(opening), THREAD_WAIT_S)
            except TimeoutError:
                log.info("private thread still opening; instructions sent without its link")
        text = render.instructions(limits, thread.mention if thread else None)
        if edit:
            await interaction.response.edit_message(content=text, embed=None, view=None)
        else:
            await views.tell(interaction, text)

    async def ensure_thread(
        self, guild: discord.Guild, user: discord.abc.User
    ) -> discord.Thread | None:
        """The participant's private thread in the study channel, opened on first use."""
        channel = resolve_channel(guild, self.bot.settings.study_channel)
        if channel is None:
            return None
        key = keys.participant_thread(self.bot.study.pseudonym(user.id))
        known = await self.bot.redis.get(key)
        if known is not None:
            thread = guild.get_thread(int(known))
            if thread is not None and not thread.archived:
                return thread
        pseudonym = self.bot.study.pseudonym(user.id)
        thread = await channel.create_thread(
            # The pseudonym tells moderators' thread lists apart without naming anyone.
            name=f"Parley voice messages · {pseudonym[:6]}",
            type=discord.ChannelType.private_thread,
            invitable=False,
            auto_archive_duration=10080,
        )
        await thread.add_user(user)
        await self.bot.redis.set(key, str(thread.id))
        await thread.send(
            f"Hi {user.mention}! Send your voice messages here (only you and the study team "
            "can see this thread)."
        )
        return thread

    # --- leaving and looking -----------------------------------------------------------------

    @app_commands.command(name="withdraw", description="Leave the study and delete your data.")
    async def withdraw_command(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(
            "Withdrawing deletes your recordings, votes, comments and answers from the study "
            "(only a note that you withdrew is kept). Are you sure?",
            view=views.withdraw_view(interaction.user.id),
            ephemeral=True,
        )

    async def withdraw(self, interaction: discord.Interaction) -> None:
        thread_id = await self.withdraw_participant(interaction.user.id)
        await interaction.response.edit_message(
            content="Done — your data was deleted and you have left the study. Thank you for "
            "your help! (Voice messages you sent me in DMs stay in your own DM history; you can "
            "delete them there.)",
            view=None,
        )
        # After the answer: the confirmation may sit in the very thread being closed.
        self.close_thread_later(thread_id, interaction.user.id)

    async def withdraw_participant(self, discord_id: int) -> int | None:
        """The core deletes the study data; the Discord layer forgets the participant's thread,
        whose id it returns so that `close_thread_later` can remove their recordings from it."""
        key = keys.participant_thread(self.bot.study.pseudonym(discord_id))
        thread_id = await self.bot.redis.get(key)
        await self.bot.study.withdraw(discord_id)
        await self.bot.redis.delete(key)
        return int(thread_id) if thread_id is not None else None

    def close_thread_later(self, thread_id: int | None, user_id: int) -> None:
        if thread_id is None:
            return
        task = asyncio.get_running_loop().create_task(self._close_thread(thread_id, user_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _close_thread(self, thread_id: int, user_id: int) -> None:
        """Delete the participant's own messages (their recordings) in their private thread,
        then archive and lock it. Slow for long threads (Discord's delete rate), so in the
        background."""
        try:
            thread = self.bot.get_channel(thread_id) or await self.bot.fetch_channel(thread_id)
            if not isinstance(thread, discord.Thread):
                return
            deleted = 0
            async for message in thread.history(limit=None):
                if message.author.id == user_id:
                    await message.delete()
                    deleted += 1
            await thread.edit(archived=True, locked=True)
            log.info("closed the thread of a withdrawn participant (%d messages deleted)", deleted)
        except discord.HTTPException as exc:
            log.warning("could not close the thread of a withdrawn participant: %s", exc)

    @app_commands.command(name="mydata", description="See what the study stores about you.")
    async def mydata(self, interaction: discord.Interaction) -> None:
        data = await self.bot.study.my_data(interaction.user.id)
        block = render.json_block(data)
        if block is not None:
            await interaction.response.send_message(block, ephemeral=True)
            return
        blob = json.dumps(data, indent=2, ensure_ascii=False, default=str).encode()
        await interaction.response.send_message(
            "Everything the study stores about you is in the attached file.",
            file=discord.File(io.BytesIO(blob), filename="parley-my-data.json"),
            ephemeral=True,
        )

    # --- voice messages ----------------------------------------------------------------------

    async def _is_study_place(self, channel: discord.abc.Messageable) -> bool:
        """A DM with the bot, or a thread of the study channel."""
        if isinstance(channel, discord.DMChannel):
            return True
        if isinstance(channel, discord.PartialMessageable) and (
            channel.guild_id == self.bot.settings.guild_id
        ):
            # A thread the cache does not hold (e.g. archived while the bot was down): ask.
            try:
                channel = await self.bot.fetch_channel(channel.id)  # type: ignore[assignment]
            except discord.HTTPException:
                return False
        if isinstance(channel, discord.Thread) and channel.guild.id == self.bot.settings.guild_id:
            parent = resolve_channel(channel.guild, self.bot.settings.study_channel)
            return parent is not None and channel.parent_id == parent.id
        return False

    def _is_study_channel(self, channel: discord.abc.Messageable) -> bool:
        if not isinstance(channel, discord.TextChannel):
            return False
        study = resolve_channel(channel.guild, self.bot.settings.study_channel)
        return study is not None and channel.id == study.id

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot:
            return
        if self._is_study_channel(message.channel) and any(
            render.looks_like_audio(a.filename, a.content_type, voice_message=message.flags.voice)
            for a in message.attachments
        ):
            # Everyone reads the study channel: point to the private places instead.
            await self._reply(message, render.USE_PRIVATE_PLACE)
            return
        if not await self._is_study_place(message.channel):
            return
        try:
            await self.take_message(message)
        except discord.HTTPException as exc:
            log.warning("could not answer message %s: %s", message.id, exc)
        except RedisError as exc:
            log.error("Redis error while handling message %s: %s", message.id, exc)
            await self._reply(
                message, "Sorry, the study's storage is not reachable right now; please try later."
            )

    async def _reply(self, message: discord.Message, text: str) -> discord.Message | None:
        try:
            return await message.reply(text, mention_author=False)
        except discord.HTTPException as exc:
            log.warning("could not reply to message %s: %s", message.id, exc)
            return None

    async def _fetch_audio(
        self, message: discord.Message, attachment: discord.Attachment
    ) -> tuple[bytes, AudioInfo] | str:
        """Download and probe the clip; or what to tell the participant when it can't be used."""
        try:
            data = await attachment.read()
        except discord.HTTPException as exc:
            log.warning("could not download attachment of message %s: %s", message.id, exc)
            return render.DOWNLOAD_FAILED
        try:
            return data, await asyncio.to_thread(probe, data)
        except AudioError as exc:
            return str(exc)

    async def take_message(self, message: discord.Message) -> None:
        study = self.bot.study
        user_id = message.author.id
        if not message.attachments:
            participant = await study.participant(user_id)
            joined = participant is not None and participant.has_consented
            await self._reply(message, render.TEXT_HINT if joined else render.NOT_JOINED)
            return
        attachment = next(
            (
                a
                for a in message.attachments
                if render.looks_like_audio(
                    a.filename, a.content_type, voice_message=message.flags.voice
                )
            ),
            None,
        )
        if attachment is None:
            await self._reply(message, render.not_audio(message.attachments[0].filename))
            return
        try:
            await study.check_eligibility(user_id)
        except Refused as refused:
            await self._reply(message, refused.message)
            return
        # Agreeing to an older consent text is not agreeing to the current one.
        current = self.bot.settings.consent_version
        participant = await study.participant(user_id)
        if participant is not None and participant.consent_version != current:
            await self._reply(message, render.consent_outdated(current))
            return
        limits = (await study.config()).limits
        # Refuse big files before downloading them.
        if attachment.size > limits.audio_max_bytes:
            await self._reply(message, render.too_big(attachment.size, limits.audio_max_bytes))
            return
        # The "got your message" reply and the download + probe each wait (on Discord, on a
        # thread): run them together, so only the slower is on the way to the models.
        progress, fetched = await asyncio.gather(
            message.reply(render.progress_header(None), mention_author=False),
            self._fetch_audio(message, attachment),
        )
        if isinstance(fetched, str):
            await progress.edit(content=fetched)
            return
        data, info = fetched
        seconds = info.duration_s
        if seconds is None:
            await progress.edit(content=render.unreadable_audio("its length is unknown"))
            return
        if seconds > limits.audio_max_seconds:
            await progress.edit(content=render.too_long(seconds, limits.audio_max_seconds))
            return
        fmt = render.audio_suffix(attachment.filename, attachment.content_type)
        try:
            battle = await study.start_battle(
                user_id,
                data,
                seconds,
                fmt,
                ui={"channel_id": str(progress.channel.id), "message_id": str(progress.id)},
            )
        except Refused as refused:
            await progress.edit(content=refused.message)
            return
        requests = dispatch.battle_requests(
            battle.battle_id,
            {"a": battle.model_a, "b": battle.model_b},
            audio_format=fmt,
            max_audio_seconds=limits.audio_max_seconds,
            now=time.time(),
        )
        try:
            job_ids = await asyncio.to_thread(
                dispatch.enqueue_battle,
                self.bot.rq_conn,
                requests,
                timeout_s=self.bot.settings.job_timeout_s,
            )
        except RedisError as exc:
            log.error("could not enqueue battle %s: %s", battle.battle_id, exc)
            await progress.edit(
                content="Sorry, I couldn't pass your message to the models right now. "
                "Please try again in a little while."
            )
            return
        await study.set_ui(battle.battle_id, jobs=job_ids)
        position = await asyncio.to_thread(dispatch.queue_position, self.bot.rq_conn, job_ids)
        self.bot.editor.progress(battle.battle_id, position, buttons=True)
