"""Every moderator command, run by a moderator and by someone who is not one."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio

from bot.discord_app import custom_ids as ids
from devstack.driver import StudyDriver
from devstack.harness import Stack
from devstack.helpers import UPDATE_MESSAGE, attached_text, custom_ids, texts
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
    ("study", "replies", {"mode": "speech"}),
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
async def mod(driver: StudyDriver) -> User:
    return await driver.moderator()


def public_messages(stack: Stack) -> list[dict]:
    """Messages in the study channel that everybody sees (not ephemeral answers)."""
    return [m for m in stack.standin.messages("study") if not int(m.get("flags") or 0) & 64]


@pytest.mark.parametrize(("group", "subcommand", "options"), EVERY_COMMAND)
async def test_non_moderators_are_refused_politely(
    stack: Stack, driver: StudyDriver, group: str, subcommand: str, options: dict[str, Any]
) -> None:
    somebody = await stack.standin.add_member(f"not-a-mod-{group}-{subcommand}")
    options = {k: (somebody if v == "SELF" else v) for k, v in options.items()}
    before = len(public_messages(stack))
    response = await driver.command(somebody, group, subcommand, options=options)
    text = driver.read(response)
    assert response.ephemeral
    assert text == "Sorry — only study moderators can use this command."
    assert len(public_messages(stack)) == before


async def test_open_pause_close(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes
) -> None:
    user = await driver.consented("pat")
    dm = stack.standin.dm_channel(user)
    await driver.moderate(mod, "limits", min_seconds_between=0)
    await driver.moderate(mod, "models", roster="alpha,beta")
    text = await driver.moderate(mod, "pause")
    assert "now **paused**" in text
    assert "paused" in (await driver.ask(user, dm, voice_ogg))["content"]
    text = await driver.moderate(mod, "close")
    assert "now **closed**" in text
    assert "closed" in (await driver.ask(user, dm, voice_ogg))["content"]
    text = await driver.moderate(mod, "open")
    assert "now **open**" in text
    progress = await driver.ask(user, dm, voice_ogg)
    assert await driver.wait_vote_buttons(progress["id"])


async def test_models_strategy_limits(stack: Stack, driver: StudyDriver, mod: User) -> None:
    shown = await driver.moderate(mod, "models")
    assert "**Known models:** `alpha`, `beta`, `broken`" in shown
    text = await driver.moderate(mod, "models", roster="alpha, nosuch")
    assert "Unknown model id(s): nosuch" in text
    text = await driver.moderate(mod, "models", roster="alpha,beta")
    assert "`alpha` (Alpha Voice), `beta` (Beta Speech)" in text
    text = await driver.moderate(mod, "strategy", strategy="balanced")
    assert "**Strategy:** balanced" in text
    text = await driver.moderate(mod, "strategy")
    assert "**Strategy:** balanced" in text
    text = await driver.moderate(mod, "limits", daily_quota=7, comment_max_chars=300)
    assert "7/day" in text
    assert "comments ≤ 300 chars" in text
    text = await driver.moderate(mod, "limits")
    assert "7/day" in text


async def test_status(stack: Stack, driver: StudyDriver, mod: User) -> None:
    response = await driver.command(mod, "study", "status")
    text = driver.read(response)
    assert response.ephemeral
    assert "**State:** open" in text
    assert "**Live workers (1):**" in text
    assert "**Queues:**" in text
    assert '"by_status"' in text or "status" in text


async def test_export_writes_to_the_data_dir_and_uploads_only_on_request(
    stack: Stack, driver: StudyDriver, mod: User
) -> None:
    response = await driver.command(mod, "study", "export")
    text = driver.read(response)
    assert "Exported 1 battles (" in text
    assert "1 participants)" in text
    assert str(stack.data_dir / "exports") in text
    assert "Flagged battles" in text
    # By default no transcripts, replies or comments go into Discord.
    assert attached_text(stack, response) == ""
    response = await driver.command(mod, "study", "export", options={"upload": True})
    assert "ethics approval" in driver.read(response)
    exported = attached_text(stack, response)
    assert exported.splitlines()[0].lstrip('"').startswith("battle_id")
    assert len(list((stack.data_dir / "exports").glob("battles-*.csv"))) >= 1
    text = await driver.moderate(mod, "export", fmt="jsonl")
    assert ".jsonl" in text


async def test_post_pins_a_join_message(stack: Stack, driver: StudyDriver, mod: User) -> None:
    text = await driver.moderate(mod, "post")
    assert "Posted and pinned" in text
    posted = next(m for m in public_messages(stack) if custom_ids(m) == [ids.join()])
    assert posted["author"]["id"] == stack.standin.bot.id
    assert posted["id"] in stack.standin.world.pins.get(stack.standin.study_channel.id, [])
    newcomer = await stack.standin.add_member("newcomer")
    consent = await driver.answer(await stack.standin.click(newcomer, posted, ids.join()))
    assert consent.ephemeral
    assert "Consent (version 1)" in texts(consent)


async def test_announce(stack: Stack, driver: StudyDriver, mod: User) -> None:
    text = await driver.moderate(mod, "announce", text="New models today! @everyone")
    assert "Announced" in text
    posted = [m for m in public_messages(stack) if m["author"]["id"] == stack.standin.bot.id][-1]
    assert posted["content"] == "📣 New models today! @everyone"


async def test_sync_on_demand_and_not_on_every_start(
    stack: Stack, driver: StudyDriver, mod: User
) -> None:
    puts = len(stack.standin.calls("PUT", GUILD_COMMANDS))
    assert puts == 1, "the first start syncs once"
    await stack.restart_bot()
    assert len(stack.standin.calls("PUT", GUILD_COMMANDS)) == puts, "a restart must not re-sync"
    text = await driver.moderate(mod, "sync")
    assert "synced" in text
    assert len(stack.standin.calls("PUT", GUILD_COMMANDS)) == puts + 1


async def test_participant_info_block_unblock_withdraw(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes
) -> None:
    quinn = await driver.consented("quinn")
    dm = stack.standin.dm_channel(quinn)
    info = await driver.moderate(mod, "info", group="participant", member=quinn)
    assert "Participant `" in info
    assert '"consent_version": "1"' in info or "consent" in info
    assert quinn.id not in info, "no Discord id in what the study stores"
    text = await driver.moderate(mod, "block", group="participant", member=quinn, reason="spam")
    assert "is blocked" in text
    assert "cannot start new battles" in (await driver.ask(quinn, dm, voice_ogg))["content"]
    text = await driver.moderate(mod, "unblock", group="participant", member=quinn)
    assert "is unblocked" in text
    progress = await driver.ask(quinn, dm, voice_ogg)
    battle_id = await driver.wait_vote_buttons(progress["id"])
    text = await driver.moderator_withdraw(mod, quinn)  # asks, then confirmed
    assert "was withdrawn" in text
    late = await driver.vote(quinn, progress["id"], battle_id, "a")
    assert late.type != UPDATE_MESSAGE
    assert late.ephemeral
    info = await driver.moderate(mod, "info", group="participant", member=quinn)
    assert "withdrawn" in info


async def test_no_tracebacks_in_the_bot_log(stack: Stack) -> None:
    unknown = [f"{c.method} {c.path}" for c in stack.standin.unknown_routes()]
    assert not unknown, f"the bot called routes Discord does not have: {unknown}"
    log = stack.bot_log()
    assert "Traceback" not in log, log[-5000:]
    assert " ERROR " not in log, log[-5000:]
