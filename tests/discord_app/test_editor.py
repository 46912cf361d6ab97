"""BattleEditor against a real Study on Redis, with a recording stand-in for Discord's messages.

Discord itself cannot run here (the e2e tests use the full stand-in); this fake records the edits
the editor asks for, which is all that the rate and once-only rules are about.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio

from bot.core import Study, StudyState, connect
from bot.discord_app.results import BattleEditor
from contract.modelsfile import load_models_file
from contract.protocol import ResultMessage
from contract.records import BattleStatus

INTERVAL = 0.2


@dataclass
class RecordedMessage:
    edits: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)

    @property
    def channel(self) -> RecordedMessage:
        return self

    async def edit(self, **fields: Any) -> None:
        self.edits.append((time.monotonic(), fields))

    async def send(self, *args: Any, **fields: Any) -> None:
        self.sent.append(fields)

    def to_reference(self, **_: Any) -> None:
        return None


@dataclass
class RecordingClient:
    message: RecordedMessage = field(default_factory=RecordedMessage)

    def get_partial_messageable(self, channel_id: int) -> RecordingClient:
        return self

    def get_partial_message(self, message_id: int) -> RecordedMessage:
        return self.message


@pytest_asyncio.fixture
async def study(redis_url: str, tmp_path: Path) -> AsyncIterator[Study]:
    models = tmp_path / "models.toml"
    models.write_text(
        '[models.m1]\nbackend = "openai_compatible"\n[models.m2]\nbackend = "openai_compatible"\n'
    )
    redis = connect(redis_url)
    yield Study(
        redis,
        secret=b"0123456789abcdef0123",
        data_dir=tmp_path,
        known_models=load_models_file(models),
        rng=np.random.default_rng(7),
        initial_state=StudyState.OPEN,
    )
    await redis.aclose()


async def _battle(study: Study) -> str:
    await study.consent(42, "1")
    battle = await study.start_battle(
        42, b"OggS fake bytes", 2.0, "ogg", ui={"channel_id": "1", "message_id": "2"}
    )
    return battle.battle_id


def _result(battle_id: str, side: str, model: str, text: str) -> ResultMessage:
    return ResultMessage(battle_id, side, model, text, None, {"total": 1.0})  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_partials_are_coalesced_and_spaced(study: Study) -> None:
    client = RecordingClient()
    editor = BattleEditor(client, study, interval=INTERVAL)  # type: ignore[arg-type]
    battle_id = await _battle(study)
    for n in range(30):
        editor.partial(battle_id, "a", "word " * n)
        await asyncio.sleep(0.01)
    await asyncio.sleep(INTERVAL * 2)
    edits = client.message.edits
    # The first partial is shown at once, later ones at most once per interval (how many
    # intervals 30 partials span depends on the machine's speed).
    assert 2 <= len(edits) < 30
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(edits)]
    assert all(gap >= INTERVAL * 0.9 for gap in gaps), gaps
    assert ("word " * 29).strip() in edits[-1][1]["content"]
    await editor.close()


@pytest.mark.asyncio
async def test_final_render_happens_once_and_ignores_late_partials(study: Study) -> None:
    client = RecordingClient()
    editor = BattleEditor(client, study, interval=INTERVAL)  # type: ignore[arg-type]
    battle_id = await _battle(study)
    battle = await study.battle(battle_id)
    assert battle is not None
    await study.record_reply(_result(battle_id, "a", battle.model_a, "Reply A."))
    answered, _ = await study.record_reply(_result(battle_id, "b", battle.model_b, "Reply B."))
    assert answered.status is BattleStatus.ANSWERED
    await editor.final(answered)
    await editor.final(answered)  # a re-delivered result
    editor.partial(battle_id, "a", "late partial")
    await asyncio.sleep(INTERVAL * 2)
    assert len(client.message.edits) == 1
    fields = client.message.edits[0][1]
    assert "Reply A." in fields["content"]
    assert "Reply B." in fields["content"]
    assert fields["view"] is not None
    assert (await study.battle(battle_id)).ui["rendered"] is True  # type: ignore[union-attr]
    await editor.close()


def _failure(battle_id: str, side: str, model: str) -> ResultMessage:
    return ResultMessage(
        battle_id,
        side,  # type: ignore[arg-type]
        model,
        None,
        None,
        {"total": 1.0},
        error="HTTP 500",
        error_kind="permanent",
    )


@pytest.mark.asyncio
async def test_a_failed_side_does_not_hide_the_answer_that_comes_after(study: Study) -> None:
    client = RecordingClient()
    editor = BattleEditor(client, study, interval=0.0)  # type: ignore[arg-type]
    battle_id = await _battle(study)
    battle = await study.battle(battle_id)
    assert battle is not None
    failed, _ = await study.record_reply(_failure(battle_id, "b", battle.model_b))
    assert failed.status is BattleStatus.FAILED
    await editor.final(failed)
    first = client.message.edits[-1][1]
    assert "could not answer" in first["content"]
    assert "(empty reply)" not in first["content"]
    assert first["view"] is None  # a failed battle takes no vote
    later, changed = await study.record_reply(
        _result(battle_id, "a", battle.model_a, "Paris, of course.")
    )
    assert changed
    assert later.status is BattleStatus.FAILED
    await editor.final(later)
    await editor.final(later)  # a re-delivered result changes nothing
    assert len(client.message.edits) == 2
    assert "Paris, of course." in client.message.edits[-1][1]["content"]
    await editor.close()


@pytest.mark.asyncio
async def test_every_edit_pings_no_one(study: Study) -> None:
    client = RecordingClient()
    editor = BattleEditor(client, study, interval=0.0)  # type: ignore[arg-type]
    battle_id = await _battle(study)
    battle = await study.battle(battle_id)
    assert battle is not None
    editor.partial(battle_id, "a", "<@42> hello @everyone")
    await asyncio.sleep(0.2)
    await study.record_reply(_result(battle_id, "a", battle.model_a, "<@42> hi"))
    answered, _ = await study.record_reply(_result(battle_id, "b", battle.model_b, "<@&1> yo"))
    await editor.final(answered)
    assert len(client.message.edits) >= 2
    for _, fields in client.message.edits:
        mentions = fields["allowed_mentions"]
        assert (mentions.users, mentions.roles, mentions.everyone) == (False, False, False)
        assert mentions.replied_user is False
    await editor.close()
