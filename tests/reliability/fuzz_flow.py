"""Driving the real stack for the fuzz and security tests: a moderator, participants, battles.

Small on purpose: the e2e helpers (`devstack/helpers.py`) do the waiting; this adds the study
set-up both reliability modules need and a reader for every text the stand-in recorded.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from typing import Any

from devstack.harness import SECRET, Stack
from devstack.helpers import MODAL, answer, texts, wait_reply, wait_vote_buttons
from devstack.standin.interactions import Interaction
from devstack.standin.state import Channel, User


async def moderate(stack: Stack, mod: User, subcommand: str, **options: Any) -> str:
    """Run `/study <subcommand>` as `mod`; returns what they read (after a deferral too)."""
    interaction = await stack.standin.slash_command(
        mod, "study", subcommand=subcommand, options=options
    )
    response = await answer(stack, interaction)
    if response.type == 5 and not response.followups:
        response = await stack.standin.wait_for_followups(interaction, timeout=15)
    return texts(response)


async def open_study(stack: Stack, *, name: str = "mod") -> User:
    """A moderator who set the roster to the two working models and lifted the rate limit."""
    mod = await stack.standin.add_member(name, roles=["Study moderator"])
    roster = await moderate(stack, mod, "models", roster="alpha, beta")
    if "alpha" not in roster:
        raise RuntimeError(f"setting the roster failed: {roster!r}")
    limits = await moderate(stack, mod, "limits", min_seconds_between=0, daily_quota=10_000)
    if "0 s between" not in limits:
        raise RuntimeError(f"setting the limits failed: {limits!r}")
    return mod


# discord.py keeps a form it showed only once Discord's answer to showing it came back, a few
# milliseconds after the stand-in saw it; a person takes far longer to fill it in.
FORM_READY_S = 0.2


async def open_form(
    stack: Stack, user: User, message: dict[str, Any] | str, custom_id: str
) -> Interaction:
    """Click a button that opens a form; returns the click, once the form can be submitted."""
    opened = await stack.standin.click(user, message, custom_id)
    shown = await answer(stack, opened)
    if shown.type != MODAL:
        raise RuntimeError(f"{custom_id} did not open a form: {texts(shown)!r}")
    await asyncio.sleep(FORM_READY_S)
    return opened


async def join(
    stack: Stack, name: str, *, about: dict[str, str] | None = None
) -> tuple[User, Channel]:
    """A member who ran /join, agreed and filled the form with `about` (or skipped it);
    returns them and their private thread."""
    standin = stack.standin
    user = await standin.add_member(name)
    consent = await answer(stack, await standin.slash_command(user, "join"))
    agreed = await answer(
        stack, await standin.click(user, consent.original, "parley:consent:1:agree")
    )
    form = agreed.original or consent.original
    if about is None:
        done = await answer(stack, await standin.click(user, form, "parley:about:skip"))
    else:
        opened = await open_form(stack, user, form, "parley:about:open")
        done = await answer(stack, await standin.submit_modal(user, opened, about))
    if "How it works" not in texts(done):
        raise RuntimeError(f"{name} could not join: {texts(done)!r}")
    threads = [t for t in stack.standin.threads() if user.id in t.member_ids]
    if len(threads) != 1:
        raise RuntimeError(f"{name} should have one private thread, has {threads}")
    return user, threads[0]


async def battle(stack: Stack, user: User, channel: Channel, ogg: bytes) -> tuple[dict, str]:
    """Send a voice message and wait for the answered battle; returns (message, battle id)."""
    sent = await stack.standin.send_voice_message(user, channel, ogg, 2.0)
    progress = await wait_reply(stack, channel, sent)
    battle_id = await wait_vote_buttons(stack, progress["id"])
    return stack.standin.message(progress["id"]), battle_id


def rest_bodies(stack: Stack) -> list[str]:
    """Every REST call the bot made, as text: path, query, JSON body and uploaded files."""
    out: list[str] = []
    for call in stack.standin.rest_log:
        parts = [call.path, json.dumps(call.query, default=str), json.dumps(call.json, default=str)]
        parts += [upload.data.decode(errors="replace") for upload in call.files]
        out.append("\n".join(parts))
    return out


def pseudonym_of(user: User) -> str:
    """The study's pseudonym for a stand-in user (the core's HMAC, with the stack's secret)."""
    return hmac.new(SECRET.encode(), str(user.id).encode(), hashlib.sha256).hexdigest()[:16]
