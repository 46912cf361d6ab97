"""Small readers over the stand-in's state for e2e assertions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis

from contract.keys import RESULTS_STREAM
from devstack.harness import Stack
from devstack.standin.interactions import (
    MESSAGE_COMPONENT,
    MODAL_SUBMIT,
    Interaction,
    Response,
    modal_submit_components,
)
from devstack.standin.state import Channel, User

UPDATE_MESSAGE = 7  # interaction callback type: edit the message the component sits on
MODAL = 9


def texts(response: Response) -> str:
    """Everything a user reads in an interaction response: content and embed texts."""
    parts: list[str] = []
    for message in [response.data, response.original, *response.followups]:
        if not message:
            continue
        parts.append(message.get("content") or "")
        for embed in message.get("embeds") or []:
            parts += [embed.get("title") or "", embed.get("description") or ""]
    # The callback data and the original message usually say the same: keep each text once.
    return "\n".join(dict.fromkeys(p for p in parts if p))


def custom_ids(message: Mapping[str, Any] | None) -> list[str]:
    found: list[str] = []

    def walk(components: list[dict[str, Any]]) -> None:
        for component in components:
            if "custom_id" in component:
                found.append(component["custom_id"])
            walk(component.get("components") or [])

    walk((message or {}).get("components") or [])
    return found


def buttons(message: Mapping[str, Any]) -> dict[str, bool]:
    """custom_id -> disabled, for every button on a message."""
    out: dict[str, bool] = {}

    def walk(components: list[dict[str, Any]]) -> None:
        for component in components:
            if component.get("type") == 2 and "custom_id" in component:
                out[component["custom_id"]] = bool(component.get("disabled"))
            walk(component.get("components") or [])

    walk(message.get("components") or [])
    return out


def bot_messages(stack: Stack, channel: Channel | str) -> list[dict[str, Any]]:
    bot_id = stack.standin.bot.id
    return [m for m in stack.standin.messages(channel) if m["author"]["id"] == bot_id]


def reply_to(stack: Stack, channel: Channel | str, message: Mapping[str, Any]) -> list[dict]:
    """The bot's messages that reply to `message`."""
    return [
        m
        for m in bot_messages(stack, channel)
        # str(): the stand-in keeps the reference as the bot sent it (an int from discord.py).
        if str((m.get("message_reference") or {}).get("message_id")) == str(message["id"])
    ]


async def wait_reply(
    stack: Stack, channel: Channel | str, message: Mapping[str, Any], *, timeout: float = 10.0
) -> dict[str, Any]:
    found = await stack.standin.wait_for(
        lambda: reply_to(stack, channel, message),
        timeout=timeout,
        what=f"the bot's reply to message {message['id']}",
    )
    return found[0]


async def wait_content(
    stack: Stack, message_id: str, needle: str, *, timeout: float = 20.0
) -> dict[str, Any]:
    """Wait until the message's content contains `needle`; returns the message."""

    def found() -> dict[str, Any] | None:
        message = stack.standin.message(message_id)
        return message if needle in (message.get("content") or "") else None

    return await stack.standin.wait_for(
        found, timeout=timeout, what=f"{needle!r} in message {message_id}"
    )


async def wait_vote_buttons(stack: Stack, message_id: str, *, timeout: float = 30.0) -> str:
    """Wait for enabled vote buttons on a battle message; returns the battle id."""

    def found() -> dict[str, Any] | None:
        message = stack.standin.message(message_id)
        enabled = [c for c, off in buttons(message).items() if not off]
        return message if any(c.startswith("parley:vote:") for c in enabled) else None

    message = await stack.standin.wait_for(
        found, timeout=timeout, what=f"vote buttons on message {message_id}"
    )
    first = next(c for c in custom_ids(message) if c.startswith("parley:vote:"))
    return first.split(":")[2]


async def forge_click(
    stack: Stack, user: User, message: Mapping[str, Any], custom_id: str
) -> Interaction:
    """A component interaction for any custom_id, even one not on the message or disabled:
    what a modified client could send. The stand-in's `click` refuses these on purpose."""
    data = {"custom_id": custom_id, "component_type": 2}
    channel = stack.standin.channel(message["channel_id"])
    return await stack.standin.interact(MESSAGE_COMPONENT, user, channel, data, dict(message))


async def answer(stack: Stack, interaction: Interaction, *, timeout: float = 10.0) -> Response:
    return await stack.standin.wait_for_response(interaction, timeout=timeout)


async def forge_modal_submit(
    stack: Stack, user: User, source: Interaction, values: dict[str, str]
) -> Interaction:
    """Submit the modal shown for `source` with any values, past the client's own checks
    (required, max_length): what a modified client could send."""
    modal = source.modal
    if modal is None:
        raise ValueError(f"interaction {source.id} was not answered with a modal")
    data = {"custom_id": modal["custom_id"], "components": modal_submit_components(None, values)}
    message = stack.standin.message(source.message_id) if source.message_id else None
    return await stack.standin.interact(MODAL_SUBMIT, user, source.channel, data, message)


def attached_text(stack: Stack, response: Response) -> str:
    """The text of every file attached to an interaction response."""
    parts: list[str] = []
    for message in [response.original, *response.followups]:
        for attachment in (message or {}).get("attachments") or []:
            parts.append(stack.standin.attachment_bytes(attachment).decode(errors="replace"))
    return "\n".join(parts)


def everything(stack: Stack, response: Response) -> str:
    attached = attached_text(stack, response)
    return texts(response) + ("\n" + attached if attached else "")


def results_added(client: redis.Redis) -> int:
    """Results ever added to the stream (XDEL, done by a withdrawal, does not lower it)."""
    return int(client.xinfo_stream(RESULTS_STREAM)["entries-added"])


def results_all_handled(client: redis.Redis) -> bool:
    """Every result was delivered to the bot's group and acknowledged."""
    stream = client.xinfo_stream(RESULTS_STREAM)
    group = next(g for g in client.xinfo_groups(RESULTS_STREAM) if g["name"] == b"bot")
    return group["last-delivered-id"] == stream["last-generated-id"] and group["pending"] == 0
