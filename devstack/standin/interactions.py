"""Interactions the stand-in injects (slash commands, components, modal submits) and what the bot
answered to each (https://discord.com/developers/docs/interactions/receiving-and-responding).

Payloads follow Discord's INTERACTION_CREATE shape closely, because discord.py drops the whole
connection when a required key (e.g. `attachment_size_limit`) is missing.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from devstack.standin.state import (
    ADMINISTRATOR,
    DM,
    EVERYONE_PERMISSIONS,
    Channel,
    StoredFile,
    User,
    World,
)

# Interaction types.
APPLICATION_COMMAND = 2
MESSAGE_COMPONENT = 3
APPLICATION_COMMAND_AUTOCOMPLETE = 4
MODAL_SUBMIT = 5

# Callback types.
PONG = 1
CHANNEL_MESSAGE_WITH_SOURCE = 4
DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE = 5
DEFERRED_UPDATE_MESSAGE = 6
UPDATE_MESSAGE = 7
AUTOCOMPLETE_RESULT = 8
MODAL = 9

# Application command option types.
SUB_COMMAND = 1
SUB_COMMAND_GROUP = 2
STRING = 3
INTEGER = 4
BOOLEAN = 5
USER = 6
CHANNEL = 7
ROLE = 8
MENTIONABLE = 9
NUMBER = 10
ATTACHMENT = 11

# Component types.
ACTION_ROW = 1
BUTTON = 2
TEXT_INPUT = 4
LABEL = 18

ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024


@dataclass
class Response:
    """What the bot answered to one interaction: the callback (type, data), the original response
    message as it stands now (None for modals and deferred updates), and any followups."""

    type: int
    data: dict[str, Any] | None
    original: dict[str, Any] | None
    followups: list[dict[str, Any]]

    @property
    def ephemeral(self) -> bool:
        flags = (self.data or {}).get("flags") or 0
        return bool(int(flags) & 64)


@dataclass
class Interaction:
    """One injected interaction and everything the bot did with it."""

    id: str
    token: str
    type: int
    user: User
    channel: Channel
    payload: dict[str, Any]  # the INTERACTION_CREATE data
    created: float  # loop time at injection
    # Resolved with the callback body ({"type", "data"}) when the bot answers.
    callback: asyncio.Future[dict[str, Any]]
    message_id: str | None = None  # the message a component sits on
    original_message_id: str | None = None
    followup_ids: list[str] = field(default_factory=list)

    @property
    def responded(self) -> bool:
        return self.callback.done()

    @property
    def modal(self) -> dict[str, Any] | None:
        """The modal the bot answered with (callback type 9), if any."""
        if not self.responded:
            return None
        body = self.callback.result()
        return body.get("data") if body.get("type") == MODAL else None


def member_permissions(world: World, user: User) -> str:
    """The permissions a member has in the guild's channels (no overwrites in the stand-in)."""
    return str(world.permissions(user))


def check_can_use(world: World, command: dict[str, Any], user: User, channel: Channel) -> None:
    """Refuse what Discord's client would not offer: a command not allowed in DMs, or one whose
    default_member_permissions the member lacks."""
    name = command["name"]
    if channel.type == DM:
        contexts = command.get("contexts")
        if command.get("dm_permission") is False or (contexts is not None and 1 not in contexts):
            raise LookupError(f"/{name} is not available in DMs")
        return
    required = command.get("default_member_permissions")
    if required is None:
        return
    held = world.permissions(user)
    if held & ADMINISTRATOR:
        return
    if int(required) == 0 or held & int(required) != int(required):
        raise PermissionError(
            f"{user.username} lacks the permissions {required} that /{name} requires (has {held})"
        )


def interaction_payload(
    world: World,
    *,
    kind: int,
    user: User,
    channel: Channel,
    data: dict[str, Any],
    message: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The INTERACTION_CREATE event for `user` acting in `channel` (a guild channel or a DM)."""
    payload: dict[str, Any] = {
        "id": world.snowflakes.next(),
        "application_id": world.application_id,
        "type": kind,
        "data": data,
        "channel_id": channel.id,
        "channel": {**channel.payload, "permissions": member_permissions(world, user)},
        "token": "ix-" + secrets.token_urlsafe(24),
        "version": 1,
        "app_permissions": member_permissions(world, world.bot),
        "locale": "en-US",
        "entitlements": [],
        "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
    }
    if channel.type == DM:
        payload["user"] = user.payload()
        payload["context"] = 1  # BOT_DM
        payload["authorizing_integration_owners"] = {"0": world.guild_id}
    else:
        guild_id = channel.guild_id
        payload["guild_id"] = guild_id
        payload["guild"] = {"id": guild_id, "locale": "en-US", "features": []}
        payload["guild_locale"] = "en-US"
        payload["member"] = {
            **user.member_payload(),
            "permissions": member_permissions(world, user),
        }
        payload["context"] = 0  # GUILD
        payload["authorizing_integration_owners"] = {"0": guild_id}
    if message is not None:
        payload["message"] = message
    return payload


def find_command(world: World, name: str, *, in_guild: bool) -> tuple[dict[str, Any], bool]:
    """The registered command `name` (guild commands first) and whether it is a guild command."""
    if in_guild and name in world.commands.get(world.guild_id, {}):
        return world.commands[world.guild_id][name], True
    if name in world.commands.get(None, {}):
        return world.commands[None][name], False
    known = sorted({n for cmds in world.commands.values() for n in cmds})
    raise LookupError(f"no application command {name!r} is registered; registered: {known}")


def command_data(
    world: World,
    command: dict[str, Any],
    *,
    guild_command: bool,
    group: str | None,
    subcommand: str | None,
    options: Mapping[str, Any],
    upload: Callable[[StoredFile], dict[str, Any]],
    focused: str | None = None,
) -> dict[str, Any]:
    """The `data` of an APPLICATION_COMMAND interaction, with options typed by the command's
    registered definition and `resolved` filled for users, members, channels, roles, attachments.
    `upload` stores an attachment option's file and returns its attachment object. With
    `focused` (an autocomplete), that option carries the partial text typed so far and required
    options may still be missing."""
    resolved: dict[str, dict[str, Any]] = {}
    definitions = command.get("options") or []
    path = []
    if group is not None:
        group_def = _option_definition(definitions, group, command["name"])
        if group_def["type"] != SUB_COMMAND_GROUP:
            raise ValueError(f"{group!r} is not a subcommand group of /{command['name']}")
        definitions = group_def.get("options") or []
        path.append((group, SUB_COMMAND_GROUP))
    if subcommand is not None:
        sub_def = _option_definition(definitions, subcommand, command["name"])
        if sub_def["type"] != SUB_COMMAND:
            raise ValueError(f"{subcommand!r} is not a subcommand of /{command['name']}")
        definitions = sub_def.get("options") or []
        path.append((subcommand, SUB_COMMAND))
    elif any(d["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP) for d in definitions):
        names = [d["name"] for d in definitions]
        raise ValueError(f"/{command['name']} needs a subcommand, one of {names}")

    leaf = []
    for name, value in options.items():
        definition = _option_definition(definitions, name, command["name"])
        if name == focused:
            if not definition.get("autocomplete"):
                raise ValueError(f"option {name!r} of /{command['name']} has no autocomplete")
            # Discord sends the partial input as typed: always a string.
            leaf.append({"name": name, "type": definition["type"], "value": str(value)})
            leaf[-1]["focused"] = True
            continue
        leaf.append(
            {
                "name": name,
                "type": definition["type"],
                "value": _option_value(world, definition, value, resolved, upload),
            }
        )
    if focused is not None and focused not in options:
        raise ValueError(f"the focused option {focused!r} needs a value in options")
    missing = [d["name"] for d in definitions if d.get("required") and d["name"] not in options]
    if missing and focused is None:
        raise ValueError(f"/{command['name']} is missing required options {missing}")

    # Nest the leaf options inside the subcommand (and group), as Discord does.
    nested: list[dict[str, Any]] = leaf
    for name, kind in reversed(path):
        nested = [{"name": name, "type": kind, "options": nested}]
    data: dict[str, Any] = {
        "id": command["id"],
        "name": command["name"],
        "type": command.get("type", 1),
        "options": nested,
    }
    if guild_command:
        data["guild_id"] = world.guild_id
    if resolved:
        data["resolved"] = resolved
    return data


def _option_definition(
    definitions: list[dict[str, Any]], name: str, command: str
) -> dict[str, Any]:
    for definition in definitions:
        if definition["name"] == name:
            return definition
    known = [d["name"] for d in definitions]
    raise ValueError(f"/{command} has no option {name!r}; its options are {known}")


def _option_value(
    world: World,
    definition: dict[str, Any],
    value: Any,
    resolved: dict[str, dict[str, Any]],
    upload: Callable[[StoredFile], dict[str, Any]],
) -> Any:
    kind = definition["type"]
    if kind == STRING:
        return str(value)
    if kind == INTEGER:
        return int(value)
    if kind == NUMBER:
        return float(value)
    if kind == BOOLEAN:
        return bool(value)
    if kind == MENTIONABLE and not isinstance(value, User):
        # A mentionable is a user or a role: roles by id or name, anything else a user.
        try:
            kind, value = ROLE, world.role_id(str(value))
        except KeyError:
            kind = USER
    if kind == USER:
        user = world.user(value)
        resolved.setdefault("users", {})[user.id] = user.payload()
        if user.member_roles is not None:
            member = user.member_payload(with_user=False)
            member["permissions"] = member_permissions(world, user)
            resolved.setdefault("members", {})[user.id] = member
        return user.id
    if kind == ROLE:
        role_id = world.role_id(str(value))
        resolved.setdefault("roles", {})[role_id] = world.roles[role_id]
        return role_id
    if kind == CHANNEL:
        channel = world.channel(value)
        resolved.setdefault("channels", {})[channel.id] = {
            **channel.payload,
            "permissions": EVERYONE_PERMISSIONS,
        }
        return channel.id
    if kind == ATTACHMENT:
        filename, data, content_type = value
        attachment = upload(StoredFile(filename, content_type, data))
        resolved.setdefault("attachments", {})[attachment["id"]] = attachment
        return attachment["id"]
    raise ValueError(f"option {definition['name']!r} has unsupported type {kind}")


def modal_submit_components(
    modal: dict[str, Any] | None, values: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The `components` of a MODAL_SUBMIT: each text input of the modal the bot showed, wrapped
    as the bot wrapped it (action row or label), with the value the user typed."""
    if modal is None:
        return [
            {"type": ACTION_ROW, "components": [{"type": TEXT_INPUT, "custom_id": k, "value": v}]}
            for k, v in values.items()
        ]
    inputs: list[str] = []
    submitted: list[dict[str, Any]] = []
    for top in modal.get("components", []):
        if top["type"] == ACTION_ROW:
            row = []
            for child in top.get("components", []):
                if child["type"] == TEXT_INPUT:
                    inputs.append(child["custom_id"])
                    row.append(_typed_input(child, values))
            submitted.append({"type": ACTION_ROW, "components": row})
        elif top["type"] == LABEL and top["component"]["type"] == TEXT_INPUT:
            child = top["component"]
            inputs.append(child["custom_id"])
            submitted.append({"type": LABEL, "component": _typed_input(child, values)})
    unknown = sorted(set(values) - set(inputs))
    if unknown:
        raise ValueError(f"the modal has no text inputs {unknown}; its inputs are {inputs}")
    return submitted


def _typed_input(text_input: dict[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    value = values.get(text_input["custom_id"], text_input.get("value") or "")
    if text_input.get("required", True) and not value:
        raise ValueError(f"text input {text_input['custom_id']!r} is required")
    limit = text_input.get("max_length")
    if limit is not None and len(value) > limit:
        raise ValueError(f"text input {text_input['custom_id']!r} allows {limit} characters")
    return {"type": TEXT_INPUT, "custom_id": text_input["custom_id"], "value": value}
