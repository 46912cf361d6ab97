"""Driving participants through the stack for the fault tests, and reading the truth back."""

from __future__ import annotations

import json
from typing import Any

import redis
from rq import Queue
from rq.registry import StartedJobRegistry

from contract.keys import queue_name
from devstack.harness import E2E_MODELS, Stack
from devstack.helpers import answer, texts, wait_reply, wait_vote_buttons
from devstack.standin.state import Channel, User


async def moderate(stack: Stack, mod: User, subcommand: str, **options: Any) -> str:
    interaction = await stack.standin.slash_command(
        mod, "study", subcommand=subcommand, options=options
    )
    response = await answer(stack, interaction)
    if not response.followups and response.type == 5:
        response = await stack.standin.wait_for_followups(interaction)
    return texts(response)


async def join(stack: Stack, name: str) -> tuple[User, Channel]:
    """A member who ran /join, agreed and skipped the form; returns them and their thread."""
    user = await stack.standin.add_member(name)
    consent = await answer(stack, await stack.standin.slash_command(user, "join"))
    agreed = await answer(
        stack, await stack.standin.click(user, consent.original, "parley:consent:1:agree")
    )
    await answer(
        stack,
        await stack.standin.click(user, agreed.original or consent.original, "parley:about:skip"),
    )
    threads = [t for t in stack.standin.threads() if user.id in t.member_ids]
    if len(threads) != 1:
        raise AssertionError(f"{name} should have one private thread, has {threads}")
    return user, threads[0]


async def ask(stack: Stack, user: User, channel: Channel, ogg: bytes) -> dict[str, Any]:
    """Send a voice message; returns the bot's progress message (the battle's message)."""
    sent = await stack.standin.send_voice_message(user, channel, ogg, 2.0)
    return await wait_reply(stack, channel, sent, timeout=20)


async def answered(
    stack: Stack, user: User, channel: Channel, ogg: bytes
) -> tuple[dict[str, Any], str]:
    """A battle with both replies in; returns (its message, battle id)."""
    progress = await ask(stack, user, channel, ogg)
    battle_id = await wait_vote_buttons(stack, progress["id"])
    return stack.standin.message(progress["id"]), battle_id


def battle_record(stack: Stack, battle_id: str) -> dict[str, str]:
    client = stack.redis_client()
    try:
        return {
            k.decode(): v.decode() for k, v in client.hgetall(f"parley:battle:{battle_id}").items()
        }
    finally:
        client.close()


def battle_of(stack: Stack, message_id: str) -> str | None:
    """The battle id behind a battle message, from the Discord refs the bot keeps."""
    client = stack.redis_client()
    try:
        for key in client.scan_iter("parley:battle:*"):
            raw = client.hget(key, "ui.message_id")
            if raw is not None and json.loads(raw) == message_id:
                return key.decode().rsplit(":", 1)[1]
    finally:
        client.close()
    return None


def vote_events(stack: Stack, battle_id: str) -> int:
    """How many vote events the event stream holds for a battle (exactly once: 1)."""
    client = stack.redis_client()
    try:
        count = 0
        for _, fields in client.xrange("parley:events"):
            if (
                fields.get(b"type") == b"vote"
                and json.loads(fields[b"data"]).get("battle_id") == battle_id
            ):
                count += 1
        return count
    finally:
        client.close()


def started_jobs(client: redis.Redis, model_id: str) -> list[str]:
    """Ids of the jobs a worker has started (and not finished) on a model's queue."""
    registry = StartedJobRegistry(queue_name(model_id), connection=client)
    return registry.get_job_ids(cleanup=False)


def waiting_jobs(client: redis.Redis) -> int:
    return sum(Queue(queue_name(m), connection=client).count for m in E2E_MODELS)
