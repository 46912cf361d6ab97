"""Helpers every module of the Discord layer shares. A leaf: it imports no other module of
`bot.discord_app`, so anything may import it."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import discord
from redis.exceptions import RedisError

from contract.records import Refused

log = logging.getLogger(__name__)

STORAGE_DOWN = "Sorry — the study's storage is not reachable right now. Please try again soon."
SOMETHING_WRONG = "Sorry, something went wrong on our side. The study team has been notified."

ItemT = TypeVar("ItemT")

# What models, participants and form fields write reaches many messages: none of it may ping a
# user, a role or everyone. This is the bot-wide default and is also passed explicitly to every
# send and edit that carries such text, so that an edit never turns on the reply ping
# (`replied_user`) of a message sent with `mention_author=False`.
NO_MENTIONS = discord.AllowedMentions.none()


async def tell(interaction: discord.Interaction, text: str) -> None:
    """An ephemeral answer, whether or not the interaction was already answered."""
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
    else:
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)


def polite(
    callback: Callable[[ItemT, discord.Interaction], Awaitable[None]],
) -> Callable[[ItemT, discord.Interaction], Coroutine[Any, Any, None]]:
    """Turn the failures a click can meet into a polite answer instead of a traceback."""

    @functools.wraps(callback)
    async def guarded(self: ItemT, interaction: discord.Interaction) -> None:
        try:
            await callback(self, interaction)
        except Refused as refused:
            await tell(interaction, refused.message)
        except RedisError as exc:
            log.error("Redis error while handling %s: %s", type(self).__name__, exc)
            await tell(interaction, STORAGE_DOWN)
        except discord.NotFound as exc:
            # The interaction expired (answered too late) or its message is gone.
            log.warning("%s: %s", type(self).__name__, exc)

    return guarded


def resolve_channel(guild: discord.Guild, wanted: str | None) -> discord.TextChannel | None:
    """PARLEY_STUDY_CHANNEL is a channel id or name."""
    if not wanted:
        return None
    wanted = wanted.strip().lstrip("#")
    if wanted.isdigit():
        channel = guild.get_channel(int(wanted))
        return channel if isinstance(channel, discord.TextChannel) else None
    return discord.utils.get(guild.text_channels, name=wanted)
