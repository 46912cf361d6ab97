"""Plain readers over the stand-in's state and the study's Redis, for the driver and for
assertions. Acting (clicks, commands, messages) and waiting live in `devstack.driver`."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import redis

from bot.discord_app import custom_ids as ids
from contract import keys
from contract.keys import RESULTS_STREAM
from devstack.harness import Stack
from devstack.standin.interactions import MODAL as MODAL
from devstack.standin.interactions import UPDATE_MESSAGE as UPDATE_MESSAGE
from devstack.standin.interactions import Response
from devstack.standin.state import Channel

# The interaction callback type of a deferred answer (the answer follows as a followup).
DEFERRED = 5


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


def answered_battle(message: Mapping[str, Any]) -> str | None:
    """The battle id of a battle message whose vote buttons are enabled (both replies in)."""
    for custom_id, disabled in buttons(message).items():
        vote = ids.parse_vote(custom_id)
        if vote is not None and not disabled:
            return vote.battle_id
    return None


def bot_messages(stack: Stack, channel: Channel | str) -> list[dict[str, Any]]:
    bot_id = stack.standin.bot.id
    return [m for m in stack.standin.messages(channel) if m["author"]["id"] == bot_id]


def reply_to(
    stack: Stack, channel: Channel | str, message: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The bot's messages that reply to `message`."""
    return [
        m
        for m in bot_messages(stack, channel)
        # str(): the stand-in keeps the reference as the bot sent it (an int from discord.py).
        if str((m.get("message_reference") or {}).get("message_id")) == str(message["id"])
    ]


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
    return bool(group["last-delivered-id"] == stream["last-generated-id"] and group["pending"] == 0)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def battle_record(stack: Stack, battle_id: str) -> dict[str, str]:
    """The battle's hash in Redis, decoded."""
    client = stack.redis_client()
    try:
        return {_text(k): _text(v) for k, v in client.hgetall(keys.battle(battle_id)).items()}
    finally:
        client.close()


def battle_of(stack: Stack, message_id: str) -> str | None:
    """The battle id behind a battle message, from the Discord refs the bot keeps."""
    client = stack.redis_client()
    try:
        for key in client.scan_iter(keys.BATTLE_PREFIX + "*"):
            raw = client.hget(key, "ui.message_id")
            if raw is not None and json.loads(raw) == message_id:
                return _text(key).removeprefix(keys.BATTLE_PREFIX)
    finally:
        client.close()
    return None


def _zlib_or_none(raw: bytes) -> bytes | None:
    """RQ stores a job's arguments as a zlib-compressed pickle: look inside those too."""
    try:
        return zlib.decompress(raw)
    except zlib.error:
        return None


def _as_bytes(value: object) -> bytes:
    # redis-py types replies `bytes | str` (decode_responses is not part of the client's type),
    # and a zset's as members or (member, score) pairs; a bytes client's members are bytes.
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise TypeError(f"expected a bytes or str reply, got {value!r:.200}")


def _redis_values(client: redis.Redis, key: bytes) -> list[bytes]:
    kind = _as_bytes(client.type(key)).decode()
    if kind == "string":
        value = client.get(key)
        return [] if value is None else [_as_bytes(value)]
    if kind == "hash":
        return [_as_bytes(part) for pair in client.hgetall(key).items() for part in pair]
    if kind == "list":
        return [_as_bytes(v) for v in client.lrange(key, 0, -1)]
    if kind == "set":
        return [_as_bytes(v) for v in client.smembers(key)]
    if kind == "zset":
        return [_as_bytes(member) for member in client.zrange(key, 0, -1)]
    if kind == "stream":
        return [
            _as_bytes(part)
            for _, fields in client.xrange(key) or []
            if fields
            for pair in fields.items()
            for part in pair
        ]
    return []


def where_content_lies(client: redis.Redis, data_dir: Path, needles: Iterable[str]) -> list[str]:
    """Every place (Redis key of any type, RQ's keys included, stream entries and compressed
    job records; files under the data dir) that holds one of `needles`, as "place: needle"."""
    wanted = [n.encode() for n in needles if n]
    found: list[str] = []
    for key in client.scan_iter(count=1000):
        for raw in [key, *_redis_values(client, key)]:
            inside = _zlib_or_none(raw)
            for needle in wanted:
                if needle in raw or (inside is not None and needle in inside):
                    found.append(f"redis {key.decode(errors='replace')}: {needle.decode()}")
    for path in sorted(data_dir.rglob("*")) if data_dir.exists() else []:
        if path.is_file():
            data = path.read_bytes()
            found.extend(f"file {path}: {n.decode()}" for n in wanted if n in data)
    return found
