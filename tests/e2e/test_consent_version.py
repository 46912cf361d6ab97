"""A new consent version: people who agreed to the old text must agree again before a battle."""

from __future__ import annotations

import pytest

from devstack.driver import StudyDriver
from devstack.harness import Stack
from devstack.helpers import custom_ids, texts

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


async def test_bumped_consent_version_asks_again(
    stack: Stack, driver: StudyDriver, voice_ogg: bytes
) -> None:
    mod = await driver.moderator()
    await driver.moderate(mod, "models", roster="alpha, beta")
    eve = await stack.standin.add_member("eve")
    await driver.consent(eve, await driver.consent_form(eve), version="1")

    stack.extra_env["PARLEY_CONSENT_VERSION"] = "2"
    await stack.restart_bot()

    dm = stack.standin.dm_channel(eve)
    refusal = await driver.ask(eve, dm, voice_ogg)
    assert "version 2" in refusal["content"]
    assert "/join" in refusal["content"]
    assert custom_ids(refusal) == []  # no battle was started

    again = await driver.consent_form(eve)
    assert "Consent (version 2)" in texts(again)
    await driver.consent(eve, again, version="2")
    _, battle_id = await driver.battle(eve, dm, voice_ogg)
    assert battle_id
    assert "Traceback" not in stack.bot_log()
