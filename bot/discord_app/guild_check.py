"""The start-up check of the study's server: the guild, the moderator role, the study channel
and the bot's permissions there. Each problem is one message naming the setting to fix.

It runs over REST before the gateway connects (discord_app.app.ParleyBot.setup_hook), so a bot
set up wrongly stops at once with every problem listed, instead of failing one participant at a
time later (a private thread it cannot open, a moderator whose role it cannot find).
"""

from __future__ import annotations

from collections.abc import Sequence

import discord

from bot.discord_app.checks import role_matches
from contract.settings import Settings

# What the bot does in the study channel (docs/discord-setup.md's table): reads and posts there
# (embeds, files), opens a private thread per participant, adds them and writes in it, replies to
# voice messages. Pinning (`/study post`) is left out: a study runs without it.
NEEDED_IN_STUDY_CHANNEL: tuple[str, ...] = (
    "view_channel",
    "send_messages",
    "embed_links",
    "attach_files",
    "read_message_history",
    "create_private_threads",
    "send_messages_in_threads",
    "manage_threads",
)


def study_channel_of(
    channels: Sequence[discord.abc.GuildChannel], wanted: str
) -> discord.TextChannel | None:
    """PARLEY_STUDY_CHANNEL (an id, a name or #name) among the guild's text channels."""
    wanted = wanted.strip().lstrip("#")
    for channel in channels:
        if isinstance(channel, discord.TextChannel) and (
            str(channel.id) == wanted or channel.name == wanted
        ):
            return channel
    return None


def problems_in(
    settings: Settings,
    guild: discord.Guild,
    channels: Sequence[discord.abc.GuildChannel],
    me: discord.Member,
) -> list[str]:
    """Every problem of this guild for the study, one message each (empty: all is well)."""
    found: list[str] = []
    wanted_role = (settings.moderator_role or "").strip()
    if not wanted_role:
        found.append(
            "PARLEY_MODERATOR_ROLE is not set: set it to the id or name of the role whose "
            "members may run /study and /participant"
        )
    elif not any(role_matches(role, wanted_role) for role in guild.roles):
        known = ", ".join(sorted(r.name for r in guild.roles if not r.is_default()))
        found.append(
            f"PARLEY_MODERATOR_ROLE={wanted_role!r}: no role with that id or name in the server "
            f"{guild.name!r} (roles: {known or 'none'})"
        )
    wanted_channel = (settings.study_channel or "").strip()
    if not wanted_channel:
        found.append(
            "PARLEY_STUDY_CHANNEL is not set: set it to the id or name of the text channel "
            "where participants start and private threads open"
        )
        return found
    channel = study_channel_of(channels, wanted_channel)
    if channel is None:
        known = ", ".join(sorted(c.name for c in channels if isinstance(c, discord.TextChannel)))
        found.append(
            f"PARLEY_STUDY_CHANNEL={wanted_channel!r}: no text channel with that id or name in "
            f"the server {guild.name!r} (text channels: {known or 'none'})"
        )
        return found
    held = channel.permissions_for(me)
    missing = [name for name in NEEDED_IN_STUDY_CHANNEL if not getattr(held, name)]
    if missing:
        found.append(
            f"PARLEY_STUDY_CHANNEL={wanted_channel!r}: the bot lacks the permissions "
            f"{', '.join(missing)} in #{channel.name}; give them to its role there"
        )
    return found


async def guild_problems(client: discord.Client, settings: Settings) -> list[str]:
    """Fetch the guild, its channels and the bot's member over REST, then `problems_in`."""
    if client.user is None:
        raise RuntimeError("the guild check runs after login (the bot's user is not known yet)")
    try:
        guild = await client.fetch_guild(int(settings.guild_id or 0))
    except (discord.NotFound, discord.Forbidden) as exc:
        return [
            f"PARLEY_GUILD_ID={settings.guild_id}: the bot cannot see that server (is it invited "
            f"there?): {exc.text or exc}"
        ]
    channels = list(await guild.fetch_channels())
    try:
        me = await guild.fetch_member(client.user.id)
    except discord.NotFound:
        return [f"PARLEY_GUILD_ID={settings.guild_id}: the bot is not a member of that server"]
    return problems_in(settings, guild, channels, me)
