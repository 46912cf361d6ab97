"""The participants' private threads in the study channel: opened on joining (in the background,
since Discord answers an interaction only within 3 s), linked from the instructions, and
emptied of the participant's recordings and locked on withdrawal.

The thread's id is kept by the study service (`participants.thread_id` / `remember_thread`).
"""

from __future__ import annotations

import asyncio
import logging

import discord

from bot.discord_app import render
from bot.discord_app.common import resolve_channel, tell
from bot.service import StudyService
from contract.settings import Settings

log = logging.getLogger(__name__)

THREAD_WAIT_S = 1.0


class PrivateThreads:
    def __init__(self, client: discord.Client, service: StudyService, settings: Settings) -> None:
        self.client = client
        self.service = service
        self.settings = settings
        self._tasks: set[asyncio.Task[None]] = set()
        # Private threads being opened, by user id (see `open_soon`).
        self._opening: dict[int, asyncio.Task[discord.Thread | None]] = {}

    async def close(self) -> None:
        """Stop the REST work in flight; before the client closes its HTTP session."""
        pending = [*self._tasks, *self._opening.values()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def open_soon(
        self, guild: discord.Guild, user: discord.abc.User
    ) -> asyncio.Task[discord.Thread | None]:
        """Start opening the participant's private thread in the background (once)."""
        task = self._opening.get(user.id)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._open(guild, user))
            self._opening[user.id] = task
            task.add_done_callback(lambda _: self._opening.pop(user.id, None))
        return task

    async def _open(self, guild: discord.Guild, user: discord.abc.User) -> discord.Thread | None:
        try:
            return await self.ensure(guild, user)
        except discord.HTTPException as exc:
            log.warning("could not open a private thread: %s", exc)
            return None

    async def ensure(self, guild: discord.Guild, user: discord.abc.User) -> discord.Thread | None:
        """The participant's private thread in the study channel, opened on first use."""
        channel = resolve_channel(guild, self.settings.study_channel)
        if channel is None:
            return None
        participants = self.service.participants
        known = await participants.thread_id(user.id)
        if known is not None:
            thread = guild.get_thread(known)
            if thread is not None and not thread.archived:
                return thread
        pseudonym = self.service.pseudonym(user.id)
        thread = await channel.create_thread(
            # The pseudonym tells moderators' thread lists apart without naming anyone.
            name=f"Parley voice messages · {pseudonym[:6]}",
            type=discord.ChannelType.private_thread,
            invitable=False,
            auto_archive_duration=10080,
        )
        await thread.add_user(user)
        await participants.remember_thread(user.id, thread.id)
        await thread.send(
            f"Hi {user.mention}! Send your voice messages here (only you and the study team "
            "can see this thread).",
            # The bot's own greeting may ping the participant it names (the bot-wide default
            # pings no one).
            allowed_mentions=discord.AllowedMentions(users=[user]),
        )
        return thread

    async def show_instructions(self, interaction: discord.Interaction, *, edit: bool) -> None:
        """The instructions, with the link to the private thread if it opens in time."""
        limits = await self.service.participants.limits()
        thread: discord.Thread | None = None
        if interaction.guild is not None:
            opening = self.open_soon(interaction.guild, interaction.user)
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
            await tell(interaction, text)

    def close_later(self, thread_id: int | None, user_id: int) -> None:
        """Remove a withdrawn participant's recordings from their thread, in the background."""
        if thread_id is None:
            return
        task = asyncio.get_running_loop().create_task(self._close(thread_id, user_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _close(self, thread_id: int, user_id: int) -> None:
        """Delete the participant's own messages (their recordings) in their private thread,
        then archive and lock it. Slow for long threads (Discord's delete rate), so in the
        background."""
        try:
            thread = self.client.get_channel(thread_id) or await self.client.fetch_channel(
                thread_id
            )
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
