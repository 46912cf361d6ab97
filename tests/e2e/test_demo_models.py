"""One whole battle with the real tiny local models of examples/models.demo.toml (slow)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from devstack.driver import StudyDriver
from devstack.harness import REPO, Stack
from devstack.helpers import UPDATE_MESSAGE

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
    driver = StudyDriver(stack)
    mod = await driver.moderator()
    assert "demo-pipeline-qwen" in await driver.moderate(mod, "models", roster=",".join(PAIR))

    ann = await driver.consented("ann")
    message, battle_id = await driver.battle(
        ann, stack.standin.dm_channel(ann), voice_ogg, timeout=180
    )
    voted = await driver.vote(ann, message, battle_id, "bothbad")
    assert voted.type == UPDATE_MESSAGE
    text = driver.read(voted)
    assert "Whisper tiny.en → SmolLM2-135M-Instruct" in text
    assert "Whisper tiny.en → tiny Qwen2" in text
    assert "Traceback" not in stack.bot_log()
