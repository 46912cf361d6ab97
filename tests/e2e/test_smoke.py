from __future__ import annotations

import pytest

from tests.e2e.harness import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


async def test_bot_connects_and_registers_commands(stack: Stack) -> None:
    names = set(stack.standin.world.commands.get(stack.standin.guild_id, {}))
    assert {"join", "withdraw", "mydata", "study", "participant"} <= names
