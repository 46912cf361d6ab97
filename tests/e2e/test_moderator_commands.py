"""Every moderator command, run by a moderator and by someone who is not one."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio

from devstack.harness import Stack
from devstack.helpers import (
    UPDATE_MESSAGE,
    answer,
    attached_text,
    custom_ids,
    everything,
    texts,
    wait_reply,
    wait_vote_buttons,
)
from devstack.standin.interactions import Response
from devstack.standin.state import User

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

GUILD_COMMANDS = "/applications/{app_id}/guilds/{guild_id}/commands"

EVERY_COMMAND: list[tuple[str, str, dict[str, Any]]] = [
    ("study", "open", {}),
    ("study", "pause", {}),
    ("study", "close", {}),
    ("study", "status", {}),
    ("study", "models", {}),
    ("study", "models", {"roster": "alpha"}),
    ("study", "strategy", {"strategy": "balanced"}),
    ("study", "limits", {"daily_quota": 1}),
    ("study", "export", {}),
    ("study", "post", {}),
    ("study", "announce", {"text": "hello all"}),
    ("study", "sync", {}),
    ("participant", "info", {"member": "SELF"}),
    ("participant", "withdraw", {"member": "SELF"}),
    ("participant", "block", {"member": "SELF"}),
    ("participant", "unblock", {"member": "SELF"}),
]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def mod(stack: Stack) -> User:
    return await stack.standin.add_member("mod", roles=["Study moderator"])


async def run(
    stack: Stack, user: User, group: str, subcommand: str, **options: Any
) -> tuple[Response, str]:
    """Run a command and wait for what the user finally reads (also after a deferral)."""
    interaction = await stack.standin.slash_command(
        user, group, subcommand=subcommand, options=options
    )
    response = await answer(stack, interaction)
    if response.type == 5:  # deferred: the answer comes as a followup
        response = await stack.standin.wait_for_followups(interaction, timeout=15)
    return response, everything(stack, response)


def public_messages(stack: Stack) -> list[dict]:
    """Messages in the study channel that everybody sees (not ephemeral answers)."""
    return [m for m in stack.standin.messages("study") if not int(m.get("flags") or 0) & 64]


async def participant(stack: Stack, name: str) -> User:
    """A member who joined the study (consent, no form)."""
    user = await stack.standin.add_member(name)
    consent = await answer(stack, await stack.standin.slash_command(user, "join"))
    await answer(stack, await stack.standin.click(user, consent.original, "parley:consent:1:agree"))
    return user


async def send_voice(stack: Stack, user: User, ogg: bytes) -> dict:
    dm = stack.standin.dm_channel(user)
    sent = await stack.standin.send_voice_message(user, dm, ogg, 2.0)
    return await wait_reply(stack, dm, sent)


@pytest.mark.parametrize(("group", "subcommand", "options"), EVERY_COMMAND)
async def test_non_moderators_are_refused_politely(
    stack: Stack, group: str, subcommand: str, options: dict[str, Any]
) -> None:
    somebody = await stack.standin.add_member(f"not-a-mod-{group}-{subcommand}")
    options = {k: (somebody if v == "SELF" else v) for k, v in options.items()}
    before = len(public_messages(stack))
    response, text = await run(stack, somebody, group, subcommand, **options)
    assert response.ephemeral
    assert text == "Sorry — only study moderators can use this command."
    assert len(public_messages(stack)) == before


async def test_open_pause_close(stack: Stack, mod: User, voice_ogg: bytes) -> None:
    user = await participant(stack, "pat")
    await run(stack, mod, "study", "limits", min_seconds_between=0)
    await run(stack, mod, "study", "models", roster="alpha,beta")
    _, text = await run(stack, mod, "study", "pause")
    assert "now **paused**" in text
    assert "paused" in (await send_voice(stack, user, voice_ogg))["content"]
    _, text = await run(stack, mod, "study", "close")
    assert "now **closed**" in text
    assert "closed" in (await send_voice(stack, user, voice_ogg))["content"]
    _, text = await run(stack, mod, "study", "open")
    assert "now **open**" in text
    progress = await send_voice(stack, user, voice_ogg)
    assert await wait_vote_buttons(stack, progress["id"])


async def test_models_strategy_limits(stack: Stack, mod: User) -> None:
    _, shown = await run(stack, mod, "study", "models")
    assert "**Known models:** `alpha`, `beta`, `broken`" in shown
    _, text = await run(stack, mod, "study", "models", roster="alpha, nosuch")
    assert "Unknown model id(s): nosuch" in text
    _, text = await run(stack, mod, "study", "models", roster="alpha,beta")
    assert "`alpha` (Alpha Voice), `beta` (Beta Speech)" in text
    _, text = await run(stack, mod, "study", "strategy", strategy="balanced")
    assert "**Strategy:** balanced" in text
    _, text = await run(stack, mod, "study", "strategy")
    assert "**Strategy:** balanced" in text
    _, text = await run(stack, mod, "study", "limits", daily_quota=7, comment_max_chars=300)
    assert "7/day" in text
    assert "comments ≤ 300 chars" in text
    _, text = await run(stack, mod, "study", "limits")
    assert "7/day" in text


async def test_status(stack: Stack, mod: User) -> None:
    response, text = await run(stack, mod, "study", "status")
    assert response.ephemeral
    assert "**State:** open" in text
    assert "**Live workers (1):**" in text
    assert "**Queues:**" in text
    assert '"by_status"' in text or "status" in text


async def test_export_attaches_the_battles(stack: Stack, mod: User) -> None:
    response, text = await run(stack, mod, "study", "export")
    assert "Exported 1 battles" in text
    exported = attached_text(stack, response)
    assert exported.splitlines()[0].lstrip('"').startswith("battle_id")
    assert len(list((stack.data_dir / "exports").glob("battles-*.csv"))) == 1
    _, text = await run(stack, mod, "study", "export", fmt="jsonl")
    assert ".jsonl" in text


async def test_post_pins_a_join_message(stack: Stack, mod: User) -> None:
    _, text = await run(stack, mod, "study", "post")
    assert "Posted and pinned" in text
    posted = next(m for m in public_messages(stack) if custom_ids(m) == ["parley:join"])
    assert posted["author"]["id"] == stack.standin.bot.id
    assert posted["id"] in stack.standin.world.pins.get(stack.standin.study_channel.id, [])
    newcomer = await stack.standin.add_member("newcomer")
    consent = await answer(stack, await stack.standin.click(newcomer, posted, "parley:join"))
    assert consent.ephemeral
    assert "Consent (version 1)" in texts(consent)


async def test_announce(stack: Stack, mod: User) -> None:
    _, text = await run(stack, mod, "study", "announce", text="New models today! @everyone")
    assert "Announced" in text
    posted = [m for m in public_messages(stack) if m["author"]["id"] == stack.standin.bot.id][-1]
    assert posted["content"] == "📣 New models today! @everyone"


async def test_sync_on_demand_and_not_on_every_start(stack: Stack, mod: User) -> None:
    puts = len(stack.standin.calls("PUT", GUILD_COMMANDS))
    assert puts == 1, "the first start syncs once"
    await stack.restart_bot()
    assert len(stack.standin.calls("PUT", GUILD_COMMANDS)) == puts, "a restart must not re-sync"
    _, text = await run(stack, mod, "study", "sync")
    assert "synced" in text
    assert len(stack.standin.calls("PUT", GUILD_COMMANDS)) == puts + 1


async def test_participant_info_block_unblock_withdraw(
    stack: Stack, mod: User, voice_ogg: bytes
) -> None:
    quinn = await participant(stack, "quinn")
    _, info = await run(stack, mod, "participant", "info", member=quinn)
    assert "Participant `" in info
    assert '"consent_version": "1"' in info or "consent" in info
    assert quinn.id not in info, "no Discord id in what the study stores"
    _, text = await run(stack, mod, "participant", "block", member=quinn, reason="spam")
    assert "is blocked" in text
    assert "cannot start new battles" in (await send_voice(stack, quinn, voice_ogg))["content"]
    _, text = await run(stack, mod, "participant", "unblock", member=quinn)
    assert "is unblocked" in text
    progress = await send_voice(stack, quinn, voice_ogg)
    battle_id = await wait_vote_buttons(stack, progress["id"])
    _, text = await run(stack, mod, "participant", "withdraw", member=quinn)
    assert "was withdrawn" in text
    late = await answer(
        stack, await stack.standin.click(quinn, progress["id"], f"parley:vote:{battle_id}:a")
    )
    assert late.type != UPDATE_MESSAGE
    assert late.ephemeral
    _, info = await run(stack, mod, "participant", "info", member=quinn)
    assert "withdrawn" in info


async def test_no_tracebacks_in_the_bot_log(stack: Stack) -> None:
    unknown = [f"{c.method} {c.path}" for c in stack.standin.unknown_routes()]
    assert not unknown, f"the bot called routes Discord does not have: {unknown}"
    log = stack.bot_log()
    assert "Traceback" not in log, log[-5000:]
    assert " ERROR " not in log, log[-5000:]
