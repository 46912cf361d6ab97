"""The moderator check, evaluated at run time on every moderator command.

`default_permissions` only hides commands in the Discord client and server admins can change it;
the configured role is what really decides, so every moderator command runs this check too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import discord
from discord import app_commands

T = TypeVar("T")

REFUSAL = "Sorry — only study moderators can use this command."


def role_matches(role: discord.Role, wanted: str) -> bool:
    """`wanted` is the role's id or its exact name (PARLEY_MODERATOR_ROLE)."""
    wanted = wanted.strip()
    return str(role.id) == wanted or role.name == wanted


def is_moderator_member(user: discord.abc.User, wanted_role: str | None) -> bool:
    if wanted_role is None or not isinstance(user, discord.Member):
        return False
    return any(role_matches(role, wanted_role) for role in user.roles)


class NotModerator(app_commands.CheckFailure):
    """Raised by the check; the cog's error handler turns it into a polite ephemeral refusal."""


def moderator_only() -> Callable[[T], T]:
    async def predicate(interaction: discord.Interaction) -> bool:
        wanted = getattr(interaction.client, "settings", None)
        role = wanted.moderator_role if wanted is not None else None
        if is_moderator_member(interaction.user, role):
            return True
        raise NotModerator(REFUSAL)

    return app_commands.check(predicate)
