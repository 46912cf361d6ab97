"""The stand-in's world: one guild, its channels, roles and members, DMs, messages and commands.

Everything here is stored in Discord's own JSON shapes (the payloads documented at
https://discord.com/developers/docs/resources), because the unmodified discord.py client parses
exactly those. Snowflakes are strings, as Discord sends them.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

# Discord's epoch (2015-01-01T00:00:00Z) in milliseconds; snowflakes carry a timestamp from it.
DISCORD_EPOCH_MS = 1_420_070_400_000

# Channel types (https://discord.com/developers/docs/resources/channel#channel-object-channel-types).
GUILD_TEXT = 0
DM = 1
PUBLIC_THREAD = 11
PRIVATE_THREAD = 12

# Message flags.
EPHEMERAL = 1 << 6
LOADING = 1 << 7
IS_VOICE_MESSAGE = 1 << 13

# Permission bits the stand-in hands out (as decimal strings, like Discord).
EVERYONE_PERMISSIONS = str(
    (1 << 10)  # VIEW_CHANNEL
    | (1 << 11)  # SEND_MESSAGES
    | (1 << 14)  # EMBED_LINKS
    | (1 << 15)  # ATTACH_FILES
    | (1 << 16)  # READ_MESSAGE_HISTORY
    | (1 << 31)  # USE_APPLICATION_COMMANDS
    | (1 << 38)  # SEND_MESSAGES_IN_THREADS
    | (1 << 46)  # SEND_VOICE_MESSAGES
)
ADMINISTRATOR = 1 << 3
ADMINISTRATOR_PERMISSIONS = str(ADMINISTRATOR)
ALL_PERMISSIONS = (1 << 53) - 1


def now_iso() -> str:
    """The current time as Discord writes timestamps (ISO 8601 with +00:00)."""
    return dt.datetime.now(dt.UTC).isoformat()


class Snowflakes:
    """Unique, time-ordered Discord ids (timestamp << 22 | counter), as strings."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def next(self) -> str:
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return str((ms << 22) | (next(self._counter) & 0x3FFFFF))


@dataclass
class User:
    """A Discord user; `member_roles` is set for guild members (role ids), else None."""

    id: str
    username: str
    bot: bool = False
    member_roles: list[str] | None = None
    joined_at: str = field(default_factory=now_iso)
    nick: str | None = None

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"

    def payload(self) -> dict[str, Any]:
        """The user object."""
        return {
            "id": self.id,
            "username": self.username,
            "discriminator": "0",
            "global_name": self.username,
            "avatar": None,
            "bot": self.bot,
            "system": False,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
        }

    def member_payload(self, *, with_user: bool = True) -> dict[str, Any]:
        """The guild member object (without `user` inside a MESSAGE_CREATE, like Discord)."""
        if self.member_roles is None:
            raise ValueError(f"user {self.username!r} ({self.id}) is not a member of the guild")
        member: dict[str, Any] = {
            "nick": self.nick,
            "avatar": None,
            "banner": None,
            "roles": list(self.member_roles),
            "joined_at": self.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        if with_user:
            member["user"] = self.payload()
        return member


@dataclass
class Channel:
    """A guild text channel, a private thread or a DM; `payload` holds the channel object."""

    payload: dict[str, Any]
    # Thread members (user ids) for threads; recipients for DMs.
    member_ids: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        channel_id: str = self.payload["id"]
        return channel_id

    @property
    def name(self) -> str | None:
        return self.payload.get("name")

    @property
    def type(self) -> int:
        channel_type: int = self.payload["type"]
        return channel_type

    @property
    def guild_id(self) -> str | None:
        return self.payload.get("guild_id")


@dataclass
class StoredFile:
    """The bytes behind one attachment, served at the attachment's url."""

    filename: str
    content_type: str
    data: bytes


class World:
    """One guild (channels "study" and "general", roles @everyone and "Study moderator"), the bot,
    the users added at run time, DM channels, every message and the registered commands."""

    def __init__(self, *, bot_name: str = "Parley", guild_name: str = "Parley study") -> None:
        self.snowflakes = Snowflakes()
        self.application_id = self.snowflakes.next()
        self.guild_id = self.snowflakes.next()
        self.owner = User(self.snowflakes.next(), "owner", member_roles=[])
        # The bot user's id equals the application id, as it does for every modern Discord app.
        self.bot = User(self.application_id, bot_name, bot=True, member_roles=[])
        self.guild_name = guild_name
        self.roles: dict[str, dict[str, Any]] = {}
        self._add_role(self.guild_id, "@everyone", EVERYONE_PERMISSIONS, position=0)
        self.moderator_role_id = self._add_role(
            self.snowflakes.next(), "Study moderator", EVERYONE_PERMISSIONS, position=1
        )
        # Like a real bot's integration role: managed, and allowed everything.
        bot_role = self._add_role(
            self.snowflakes.next(), bot_name, ADMINISTRATOR_PERMISSIONS, position=2
        )
        self.bot_role_id = bot_role
        self.roles[bot_role]["managed"] = True
        self.roles[bot_role]["tags"] = {"bot_id": self.bot.id}
        self.bot.member_roles = [bot_role]
        self.users: dict[str, User] = {self.owner.id: self.owner, self.bot.id: self.bot}
        self.channels: dict[str, Channel] = {}
        self.study_channel = self._add_text_channel("study", position=0)
        self.general_channel = self._add_text_channel("general", position=1)
        # channel id -> message id -> message object (insertion ordered: oldest first).
        self.messages: dict[str, dict[str, dict[str, Any]]] = {}
        self.files: dict[str, StoredFile] = {}  # attachment id -> bytes
        # Every ping the bot's messages caused (creates and edits): (message id, user id).
        self.pings: list[tuple[str, str]] = []
        self.pins: dict[str, list[str]] = {}  # channel id -> pinned message ids
        # Application commands as registered by the bot: (guild id or None) -> name -> command.
        self.commands: dict[str | None, dict[str, dict[str, Any]]] = {}

    # -- building -------------------------------------------------------------------------------

    def _add_role(self, role_id: str, name: str, permissions: str, *, position: int) -> str:
        self.roles[role_id] = {
            "id": role_id,
            "name": name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": position,
            "permissions": permissions,
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }
        return role_id

    def permissions(self, user: User) -> int:
        """A user's guild-wide permissions: @everyone's plus their roles' (all for the owner and
        administrators). The stand-in has no channel overwrites."""
        if user.id == self.owner.id:
            return ALL_PERMISSIONS
        bits = int(self.roles[self.guild_id]["permissions"])
        for role_id in user.member_roles or []:
            bits |= int(self.roles[role_id]["permissions"])
        return ALL_PERMISSIONS if bits & ADMINISTRATOR else bits

    def set_bot_permissions(self, permissions: str) -> None:
        """What the bot's integration role allows (default: administrator), e.g. to test the
        bot's start-up check of a server where it lacks permissions."""
        self.roles[self.bot_role_id]["permissions"] = str(int(permissions))

    def add_role(self, name: str, *, permissions: str = EVERYONE_PERMISSIONS) -> dict[str, Any]:
        role_id = self._add_role(
            self.snowflakes.next(), name, permissions, position=len(self.roles)
        )
        return self.roles[role_id]

    def _add_text_channel(self, name: str, *, position: int) -> Channel:
        channel = Channel(
            {
                "id": self.snowflakes.next(),
                "type": GUILD_TEXT,
                "guild_id": self.guild_id,
                "name": name,
                "position": position,
                "permission_overwrites": [],
                "parent_id": None,
                "topic": None,
                "nsfw": False,
                "rate_limit_per_user": 0,
                "last_message_id": None,
                "flags": 0,
            }
        )
        self.channels[channel.id] = channel
        return channel

    def add_user(
        self, username: str, *, member: bool = True, roles: list[str] | None = None
    ) -> User:
        """A new user; a guild member with `roles` (role ids or names) unless member=False."""
        role_ids = [self.role_id(role) for role in roles or []]
        user = User(self.snowflakes.next(), username, member_roles=role_ids if member else None)
        self.users[user.id] = user
        return user

    def role_id(self, role: str) -> str:
        """A role id from an id or a role name; KeyError naming the known roles."""
        if role in self.roles:
            return role
        for role_id, data in self.roles.items():
            if data["name"] == role:
                return role_id
        known = sorted(data["name"] for data in self.roles.values())
        raise KeyError(f"no role {role!r}; known roles: {known}")

    def channel(self, ref: str | int | Channel) -> Channel:
        """A channel by object, id or name; KeyError naming the known channels."""
        if isinstance(ref, Channel):
            return ref
        ref = str(ref)
        if ref in self.channels:
            return self.channels[ref]
        for channel in self.channels.values():
            if channel.name == ref:
                return channel
        known = sorted(str(c.name or c.id) for c in self.channels.values())
        raise KeyError(f"no channel {ref!r}; known channels: {known}")

    def user(self, ref: str | int | User) -> User:
        """A user by object, id or username; KeyError naming the known users."""
        if isinstance(ref, User):
            return ref
        ref = str(ref)
        if ref in self.users:
            return self.users[ref]
        for user in self.users.values():
            if user.username == ref:
                return user
        raise KeyError(
            f"no user {ref!r}; known users: {sorted(u.username for u in self.users.values())}"
        )

    def dm_channel(self, user: User) -> Channel:
        """The DM channel between `user` and the bot (created on first use, like Discord)."""
        for channel in self.channels.values():
            if channel.type == DM and channel.member_ids == [user.id]:
                return channel
        channel = Channel(
            {
                "id": self.snowflakes.next(),
                "type": DM,
                "last_message_id": None,
                "recipients": [user.payload()],
                "flags": 0,
            },
            member_ids=[user.id],
        )
        self.channels[channel.id] = channel
        return channel

    def add_thread(self, parent: Channel, name: str, owner: User, *, kind: int) -> Channel:
        now = now_iso()
        channel = Channel(
            {
                "id": self.snowflakes.next(),
                "type": kind,
                "guild_id": self.guild_id,
                "parent_id": parent.id,
                "owner_id": owner.id,
                "name": name,
                "last_message_id": None,
                "message_count": 0,
                "member_count": 1,
                "total_message_sent": 0,
                "rate_limit_per_user": 0,
                "flags": 0,
                "thread_metadata": {
                    "archived": False,
                    "auto_archive_duration": 1440,
                    "archive_timestamp": now,
                    "locked": False,
                    "invitable": False,
                    "create_timestamp": now,
                },
            },
            member_ids=[owner.id],
        )
        self.channels[channel.id] = channel
        return channel

    # -- payloads -------------------------------------------------------------------------------

    def members(self) -> list[User]:
        return [user for user in self.users.values() if user.member_roles is not None]

    def guild_payload(self) -> dict[str, Any]:
        """The guild object as GET /guilds/{id} returns it."""
        return {
            "id": self.guild_id,
            "name": self.guild_name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": self.owner.id,
            "region": None,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": list(self.roles.values()),
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "max_members": 500000,
            "vanity_url_code": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
        }

    def guild_create_payload(self) -> dict[str, Any]:
        """The GUILD_CREATE event: the guild plus members, channels and threads (all of them, so
        that discord.py counts the guild as chunked and asks for no member chunks)."""
        members = self.members()
        guild_channels = [c for c in self.channels.values() if c.type == GUILD_TEXT]
        threads = [c for c in self.channels.values() if c.type in (PUBLIC_THREAD, PRIVATE_THREAD)]
        return {
            **self.guild_payload(),
            "joined_at": self.bot.joined_at,
            "large": False,
            "unavailable": False,
            "member_count": len(members),
            "members": [user.member_payload() for user in members],
            "channels": [c.payload for c in guild_channels],
            "threads": [c.payload for c in threads],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def attachment_payload(
        self, base_url: str, channel_id: str, stored: StoredFile
    ) -> dict[str, Any]:
        """A new attachment object for `stored`, whose bytes are served from `base_url`."""
        attachment_id = self.snowflakes.next()
        self.files[attachment_id] = stored
        url = f"{base_url}/attachments/{channel_id}/{attachment_id}/{stored.filename}"
        return {
            "id": attachment_id,
            "filename": stored.filename,
            "size": len(stored.data),
            "url": url,
            "proxy_url": url,
            "content_type": stored.content_type,
        }

    def new_message(
        self,
        channel: Channel,
        author: User,
        *,
        content: str = "",
        embeds: list[dict[str, Any]] | None = None,
        components: list[dict[str, Any]] | None = None,
        attachments: list[dict[str, Any]] | None = None,
        flags: int = 0,
        message_type: int = 0,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Store and return a new message object (REST shape: no guild_id/member)."""
        message: dict[str, Any] = {
            "id": self.snowflakes.next(),
            "channel_id": channel.id,
            "author": author.payload(),
            "content": content,
            "timestamp": now_iso(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "mention_channels": [],
            "attachments": attachments or [],
            "embeds": embeds or [],
            "reactions": [],
            "pinned": False,
            "type": message_type,
            "flags": flags,
            "components": components or [],
            "sticker_items": [],
            **(extra or {}),
        }
        self.messages.setdefault(channel.id, {})[message["id"]] = message
        channel.payload["last_message_id"] = message["id"]
        if "message_count" in channel.payload:
            channel.payload["message_count"] += 1
        return message

    def find_message(self, message_id: str) -> tuple[Channel, dict[str, Any]]:
        for channel_id, messages in self.messages.items():
            if message_id in messages:
                return self.channels[channel_id], messages[message_id]
        raise KeyError(f"no message {message_id}")

    def gateway_message(self, message: dict[str, Any]) -> dict[str, Any]:
        """A stored message as MESSAGE_CREATE/UPDATE carries it: plus guild_id and member."""
        channel = self.channels[message["channel_id"]]
        event = dict(message)
        if channel.guild_id is not None:
            event["guild_id"] = channel.guild_id
            author = self.users.get(message["author"]["id"])
            if author is not None and author.member_roles is not None:
                event["member"] = author.member_payload(with_user=False)
        return event
