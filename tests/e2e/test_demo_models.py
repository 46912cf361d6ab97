"""One whole battle with the real tiny local models of examples/models.demo.toml (slow)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from devstack.harness import REPO, Stack
from devstack.helpers import UPDATE_MESSAGE, answer, everything, wait_reply, wait_vote_buttons

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

DEMO_MODELS = REPO / "examples" / "models.demo.toml"
# The two ASR pipelines: real Whisper tiny.en, tiny local LLMs; the quickest pair to load.
PAIR = ("demo-pipeline", "demo-pipeline-qwen")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def demo_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    stack = Stack(
        Path(tmp_path_factory.mktemp("demo-stack")),
        models_file=DEMO_MODELS,
        worker_args=["--serve", ",".join(PAIR)],
    )
    try:
        await stack.start(timeout=240)
        yield stack
    finally:
        await stack.stop()


async def test_a_battle_with_the_demo_models(demo_stack: Stack, voice_ogg: bytes) -> None:
    stack = demo_stack
    mod = await stack.standin.add_member("mod", roles=["Study moderator"])
    roster = await stack.standin.slash_command(
        mod, "study", subcommand="models", options={"roster": ",".join(PAIR)}
    )
    assert "demo-pipeline-qwen" in everything(stack, await answer(stack, roster))

    ann = await stack.standin.add_member("ann")
    consent = await answer(stack, await stack.standin.slash_command(ann, "join"))
    await answer(stack, await stack.standin.click(ann, consent.original, "parley:consent:1:agree"))
    dm = stack.standin.dm_channel(ann)
    sent = await stack.standin.send_voice_message(ann, dm, voice_ogg, 2.0)
    progress = await wait_reply(stack, dm, sent)
    battle_id = await wait_vote_buttons(stack, progress["id"], timeout=180)
    voted = await answer(
        stack, await stack.standin.click(ann, progress["id"], f"parley:vote:{battle_id}:bothbad")
    )
    assert voted.type == UPDATE_MESSAGE
    text = everything(stack, voted)
    assert "Whisper tiny.en → SmolLM2-135M-Instruct" in text
    assert "Whisper tiny.en → tiny Qwen2" in text
    assert "Traceback" not in stack.bot_log()
