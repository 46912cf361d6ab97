"""Who a message the bot sends or edits pings, by Discord's `allowed_mentions` rules.

https://discord.com/developers/docs/resources/message#allowed-mentions-object: without
`allowed_mentions`, every user, role and @everyone/@here written in the content is pinged, and so
is the author of the message replied to. With it, only the kinds in `parse`, the ids in `users` /
`roles`, and the replied-to author when `replied_user` is true. Discord refuses a body that both
parses a kind and lists ids of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

USER = re.compile(r"<@!?(\d+)>")
ROLE = re.compile(r"<@&(\d+)>")
EVERYONE = re.compile(r"@(?:everyone|here)\b")
KINDS = ("users", "roles", "everyone")


class MentionsError(ValueError):
    """An `allowed_mentions` object Discord would refuse (400 Invalid Form Body)."""


@dataclass(frozen=True)
class Pinged:
    users: tuple[str, ...]
    roles: tuple[str, ...]
    everyone: bool


def resolve(content: str, allowed: dict[str, Any] | None, *, replied_to: str | None) -> Pinged:
    """Who `content` pings under `allowed` (the request's `allowed_mentions`, None if absent);
    `replied_to` is the author id of the message this one replies to, if any."""
    if allowed is None:
        parse = set(KINDS)
        listed_users: set[str] = set()
        listed_roles: set[str] = set()
        reply_ping = True
    else:
        parse = set(allowed.get("parse") or [])
        unknown = parse - set(KINDS)
        if unknown:
            raise MentionsError(f"unknown allowed_mentions.parse values: {sorted(unknown)}")
        listed_users = {str(i) for i in allowed.get("users") or []}
        listed_roles = {str(i) for i in allowed.get("roles") or []}
        if ("users" in parse and listed_users) or ("roles" in parse and listed_roles):
            raise MentionsError("allowed_mentions parses a kind and also lists ids of it")
        reply_ping = bool(allowed.get("replied_user", False))
    users = [i for i in USER.findall(content) if "users" in parse or i in listed_users]
    if replied_to is not None and reply_ping:
        users.append(replied_to)
    roles = [i for i in ROLE.findall(content) if "roles" in parse or i in listed_roles]
    everyone = "everyone" in parse and EVERYONE.search(content) is not None
    return Pinged(tuple(dict.fromkeys(users)), tuple(dict.fromkeys(roles)), everyone)
