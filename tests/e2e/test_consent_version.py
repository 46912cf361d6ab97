"""A new consent version: people who agreed to the old text must agree again before a battle."""

from __future__ import annotations

import pytest

from devstack.harness import Stack
from devstack.helpers import answer, custom_ids, texts, wait_reply, wait_vote_buttons

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


async def test_bumped_consent_version_asks_again(stack: Stack, voice_ogg: bytes) -> None:
    mod = await stack.standin.add_member("mod", roles=["Study moderator"])
    roster = await stack.standin.slash_command(
        mod, "study", subcommand="models", options={"roster": "alpha, beta"}
    )
    await answer(stack, roster)
    eve = await stack.standin.add_member("eve")
    consent = await answer(stack, await stack.standin.slash_command(eve, "join"))
    await answer(stack, await stack.standin.click(eve, consent.original, "parley:consent:1:agree"))

    stack.extra_env["PARLEY_CONSENT_VERSION"] = "2"
    await stack.restart_bot()

    dm = stack.standin.dm_channel(eve)
    sent = await stack.standin.send_voice_message(eve, dm, voice_ogg, 2.0)
    refusal = await wait_reply(stack, dm, sent)
    assert "version 2" in refusal["content"]
    assert "/join" in refusal["content"]
    assert custom_ids(refusal) == []  # no battle was started

    again = await answer(stack, await stack.standin.slash_command(eve, "join"))
    assert "Consent (version 2)" in texts(again)
    await answer(stack, await stack.standin.click(eve, again.original, "parley:consent:2:agree"))
    sent = await stack.standin.send_voice_message(eve, dm, voice_ogg, 2.0)
    progress = await wait_reply(stack, dm, sent)
    assert await wait_vote_buttons(stack, progress["id"])
    assert "Traceback" not in stack.bot_log()
