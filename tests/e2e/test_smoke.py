"""The bot starts against the stand-in, registers its commands, and stops cleanly."""

from __future__ import annotations

import pytest

from devstack.harness import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


async def test_bot_connects_and_registers_commands(stack: Stack) -> None:
    names = set(stack.standin.world.commands.get(stack.standin.guild_id, {}))
    assert {"join", "study", "participant"} <= names
    # Global, so they work in DMs too; not also in the guild, where they would show twice.
    global_names = set(stack.standin.world.commands.get(None, {}))
    assert global_names == {"withdraw", "mydata"}
    assert not names & global_names


async def test_sigterm_shuts_the_bot_down_cleanly(stack: Stack) -> None:
    assert await stack.stop_bot() == 0
    assert "Traceback" not in stack.bot_log()
    await stack.start_bot()
