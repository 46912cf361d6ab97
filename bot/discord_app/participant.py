"""The participants' side: /join, /withdraw, /mydata and voice messages in. The rules and use
cases live in the study service; this cog parses Discord's input, calls it and renders."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import discord
from discord import app_commands
from discord.ext import commands
from redis.exceptions import RedisError

from bot.discord_app import render, views
from bot.discord_app.common import NO_MENTIONS, resolve_channel
from bot.discord_app.results import BattleEditor
from bot.service import StudyService
from bot.service.clips import Reading, looks_like_audio
from bot.service.outcomes import Admitted, Clip, ClipMeta, ReasonTaken, Refusal, Started
from contract.records import Battle
from contract.settings import Settings

log = logging.getLogger(__name__)


def clip_meta(message: discord.Message) -> list[ClipMeta]:
    """What the message says about its attachments (nothing is downloaded)."""
    voice = message.flags.voice
    return [
        ClipMeta(a.filename, a.content_type, a.size, voice_message=voice)
        for a in message.attachments
    ]


class Participant(commands.Cog):
    """Everything a participant does."""

    def __init__(
        self,
        bot: commands.Bot,
        *,
        settings: Settings,
        service: StudyService,
        editor: BattleEditor,
    ) -> None:
        self.bot = bot
        self.settings = settings
        self.service = service
        self.editor = editor

    # --- joining, leaving and looking --------------------------------------------------------

    @app_commands.command(name="join", description="Join the study: read the consent form.")
    async def join(self, interaction: discord.Interaction) -> None:
        await views.start_join(interaction)

    # /withdraw and /mydata are global commands allowed in DMs too: a participant who only ever
    # talks to the bot in DMs must be able to leave and see their data (app.DM_COMMANDS).
    @app_commands.command(name="withdraw", description="Leave the study and delete your data.")
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=False)
    async def withdraw_command(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(
            "Withdrawing deletes your recordings, votes, comments and answers from the study "
            "(only a note that you withdrew is kept). Are you sure?",
            view=views.withdraw_view(interaction.user.id),
            ephemeral=True,
        )

    @app_commands.command(name="mydata", description="See what the study stores about you.")
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=False)
    async def mydata(self, interaction: discord.Interaction) -> None:
        data = await self.service.participants.my_data(interaction.user.id)
        block = render.json_block(data)
        if block is not None:
            await interaction.response.send_message(
                block, ephemeral=True, allowed_mentions=NO_MENTIONS
            )
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
        settings = self.settings
        if isinstance(channel, discord.DMChannel):
            return True
        place: object = channel
        if isinstance(channel, discord.PartialMessageable) and (
            channel.guild_id == settings.guild_id
        ):
            # A thread the cache does not hold (e.g. archived while the bot was down): ask.
            try:
                place = await self.bot.fetch_channel(channel.id)
            except discord.HTTPException:
                return False
        if isinstance(place, discord.Thread) and place.guild.id == settings.guild_id:
            parent = resolve_channel(place.guild, settings.study_channel)
            return parent is not None and place.parent_id == parent.id
        return False

    def _is_study_channel(self, channel: discord.abc.Messageable) -> bool:
        if not isinstance(channel, discord.TextChannel):
            return False
        study = resolve_channel(channel.guild, self.settings.study_channel)
        return study is not None and channel.id == study.id

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot:
            return
        if self._is_study_channel(message.channel) and any(
            looks_like_audio(a.filename, a.content_type, voice_message=message.flags.voice)
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
            return await message.reply(text, mention_author=False, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as exc:
            log.warning("could not reply to message %s: %s", message.id, exc)
            return None

    async def _fetch_clip(self, message: discord.Message, admitted: Admitted) -> Reading | str:
        """Download the admitted attachment and have the service read it; the download's own
        failure is a text to show."""
        # The first attachment with the admitted one's metadata is the one the service chose.
        attachment = message.attachments[clip_meta(message).index(admitted.clip)]
        try:
            data = await attachment.read()
        except discord.HTTPException as exc:
            log.warning("could not download attachment of message %s: %s", message.id, exc)
            return render.DOWNLOAD_FAILED
        return await self.service.clips.read(admitted, data)

    async def take_message(self, message: discord.Message) -> None:
        clips = self.service.clips
        place = str(message.channel.id)
        admitted = await clips.admit(message.author.id, clip_meta(message), place=place)
        if not isinstance(admitted, Admitted):
            await self._reply(message, render.clip_answer(admitted))
            return
        if admitted.reason_for is not None:
            await self._take_reason(message, admitted)
            return
        earlier = (
            await self.service.study.battle(admitted.continues)
            if admitted.continues is not None
            else None
        )
        # The "got your message" reply and the download + probe each wait (on Discord, on a
        # thread): run them together, so only the slower is on the way to the models.
        progress, reading = await asyncio.gather(
            message.reply(
                render.progress_header(None),
                mention_author=False,
                allowed_mentions=NO_MENTIONS,
            ),
            self._fetch_clip(message, admitted),
        )
        if isinstance(reading, str):
            await progress.edit(content=reading, allowed_mentions=NO_MENTIONS)
            return
        if not isinstance(reading, Clip):
            await progress.edit(content=render.clip_answer(reading), allowed_mentions=NO_MENTIONS)
            return
        started = await clips.start(
            reading, ui={"channel_id": str(progress.channel.id), "message_id": str(progress.id)}
        )
        if isinstance(started, ReasonTaken):  # not reached: reasons are taken above
            return
        if not isinstance(started, Started):
            await progress.edit(content=render.clip_answer(started), allowed_mentions=NO_MENTIONS)
            return
        if earlier is not None:
            # Only the newest turn's message takes the vote: the earlier one's buttons go.
            await self._retire_message(earlier)
            self.editor.reopen(started.battle.battle_id)
        self.editor.progress(started.battle.battle_id, started.position, buttons=True)

    async def _retire_message(self, battle: Battle) -> None:
        try:
            channel = self.bot.get_partial_messageable(int(battle.ui["channel_id"]))
            await channel.get_partial_message(int(battle.ui["message_id"])).edit(view=None)
        except (KeyError, ValueError, discord.HTTPException) as exc:
            log.info("could not retire the earlier turn of battle %s: %s", battle.battle_id, exc)

    async def _take_reason(self, message: discord.Message, admitted: Admitted) -> None:
        """A voice message the participant announced as the reason for their vote."""
        reading = await self._fetch_clip(message, admitted)
        if isinstance(reading, str):
            await self._reply(message, reading)
            return
        if not isinstance(reading, Clip):
            await self._reply(message, render.clip_answer(reading))
            return
        taken = await self.service.clips.start(reading)
        if isinstance(taken, ReasonTaken):
            ack = await self._reply(message, render.REASON_TAKEN)
            if ack is not None:
                await self.service.study.set_ui(
                    taken.battle_id,
                    reason_channel_id=str(ack.channel.id),
                    reason_message_id=str(ack.id),
                )
        elif isinstance(taken, Refusal):
            await self._reply(message, taken.message)
