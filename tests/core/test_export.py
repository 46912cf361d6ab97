"""Export: one row per battle in Parquet / CSV / JSONL, pseudonyms only, and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from bot.core import Demographics, Winner
from bot.core.study import Study
from bot.export import BATTLE_COLUMNS, PARTICIPANT_COLUMNS, export_battles, export_participants
from contract.modelsfile import load_models_file
from tests.core.helpers import AUDIO, T0, Clock, answered_battle, result_for

DISCORD_ID = 987654321987654321
REPO = Path(__file__).resolve().parents[2]


async def _study_with_battles(study: Study, clock: Clock) -> dict[str, str]:
    """A voted battle with a comment, an unvoted one and a failed one."""
    voted = await answered_battle(study, clock, user=DISCORD_ID)
    await study.set_ui(voted.battle_id, channel=111222333444, message=555666777888)
    await study.comment(DISCORD_ID, voted.battle_id, "A was better")
    clock.advance(4)
    await study.vote(DISCORD_ID, voted.battle_id, Winner.MODEL_A)
    await study.set_demographics(DISCORD_ID, Demographics(first_language="fr"))
    clock.advance(60)
    queued = await study.start_battle(DISCORD_ID, AUDIO, 2.5, "ogg")
    clock.advance(60)
    failed = await study.start_battle(DISCORD_ID, AUDIO, 2.5, "ogg")
    await study.record_reply(result_for(failed, "b", error="timeout"))
    return {"voted": voted.battle_id, "queued": queued.battle_id, "failed": failed.battle_id}


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    return pd.read_json(path, lines=True)


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
async def test_export_one_row_per_battle(
    study: Study, clock: Clock, tmp_path: Path, suffix: str
) -> None:
    ids = await _study_with_battles(study, clock)
    out = tmp_path / f"battles{suffix}"
    assert await export_battles(study, out) == 3
    frame = _read(out)
    assert list(frame.columns) == BATTLE_COLUMNS
    rows = frame.set_index("battle_id")
    voted = rows.loc[ids["voted"]]
    pseudonym = study.pseudonym(DISCORD_ID)
    assert voted["participant"] == pseudonym
    assert voted["winner"] == "model_a"
    assert voted["status"] == "voted"
    assert voted["comment"] == "A was better"
    assert voted["transcript"] == "what is the weather"
    assert voted["reply_a"].startswith("hi on side")
    assert voted["latency_a"] == pytest.approx(1.5)
    assert voted["vote_delay_s"] == pytest.approx(4.0)
    assert pd.Timestamp(voted["tstamp"]) == pd.Timestamp(T0 + 6, unit="s", tz="UTC")
    unvoted = rows.loc[ids["queued"], "winner"]
    assert unvoted == "" or pd.isna(unvoted)
    assert rows.loc[ids["failed"], "status"] == "failed"
    assert rows.loc[ids["failed"], "flags"] == "error_b:permanent"
    text = out.read_bytes()
    for secret in (str(DISCORD_ID), "111222333444", "555666777888", "audio/", ".ogg"):
        assert secret.encode() not in text


async def test_export_accepts_a_plain_redis_and_empty_study(study: Study, tmp_path: Path) -> None:
    out = tmp_path / "empty.parquet"
    assert await export_battles(study.redis, out) == 0
    assert list(pd.read_parquet(out).columns) == BATTLE_COLUMNS


async def test_export_rejects_unknown_suffix(study: Study, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"battles\.xlsx"):
        await export_battles(study, tmp_path / "battles.xlsx")


async def test_participants_table(study: Study, clock: Clock, tmp_path: Path) -> None:
    await _study_with_battles(study, clock)
    await study.consent(5, "2")
    out = tmp_path / "people.jsonl"
    assert await export_participants(study, out) == 2
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [list(r) for r in rows] == [PARTICIPANT_COLUMNS] * 2
    by_id = {r["participant"]: r for r in rows}
    me = by_id[study.pseudonym(DISCORD_ID)]
    assert (me["consent_version"], me["first_language"], me["status"]) == ("1", "fr", "active")
    assert str(DISCORD_ID) not in out.read_text()


async def test_cli_writes_battles_and_participants(
    study: Study, clock: Clock, tmp_path: Path, redis_url: str
) -> None:
    await _study_with_battles(study, clock)
    env = {**os.environ, "REDIS_URL": redis_url}
    env.pop("PARLEY_SECRET", None)
    out, people = tmp_path / "b.csv", tmp_path / "p.parquet"
    proc = subprocess.run(
        [sys.executable, "-m", "bot.export", "--out", str(out), "--participants", str(people)],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "wrote 3 battles" in proc.stdout
    assert len(pd.read_csv(out)) == 3
    assert len(pd.read_parquet(people)) == 1


async def test_cli_fastchat_names(
    study: Study, clock: Clock, tmp_path: Path, redis_url: str
) -> None:
    await _study_with_battles(study, clock)
    out = tmp_path / "arena.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "bot.export", "--out", str(out), "--fastchat"],
        cwd=tmp_path,
        env={**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3
    assert list(rows[0])[:6] == ["question_id", "tstamp", "judge", "model_a", "model_b", "winner"]
    assert "battle_id" not in rows[0]
    assert "participant" not in rows[0]
    assert "flags" in rows[0]


def test_cli_refuses_bad_suffix(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bot.export", "--out", str(tmp_path / "x.txt")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "x.txt" in proc.stderr


async def test_static_names_exported_per_battle(
    study: Study, clock: Clock, tmp_path: Path, redis_url: str
) -> None:
    """The models file's static_name (a row of a benchmark table) lands in each battle's row,
    through export_battles and through the CLI (which reads PARLEY_MODELS)."""
    ids = await _study_with_battles(study, clock)
    models_path = tmp_path / "static.toml"
    # Every model gets a static name ("<id> static"), except whichever is model_b of the
    # voted battle: its column stays empty.
    voted = await study.battle(ids["voted"])
    assert voted is not None
    models_path.write_text(
        "".join(
            f'[models.{m}]\nbackend = "openai_compatible"\n'
            + ("" if m == voted.model_b else f'static_name = "{m} static"\n')
            for m in study.known_models.models
        )
    )
    models = load_models_file(models_path)
    out = tmp_path / "battles.parquet"
    assert await export_battles(study, out, models) == 3
    row = pd.read_parquet(out).set_index("battle_id").loc[ids["voted"]]
    assert row["static_name_a"] == f"{voted.model_a} static"
    assert row["static_name_b"] is None or pd.isna(row["static_name_b"])

    csv_out = tmp_path / "cli.csv"
    env = {**os.environ, "REDIS_URL": redis_url, "PARLEY_MODELS": str(models_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "bot.export", "--out", str(csv_out)],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    frame = pd.read_csv(csv_out).set_index("battle_id")
    assert frame.loc[ids["voted"], "static_name_a"] == f"{voted.model_a} static"


async def test_the_study_asr_transcript_is_the_battles_transcript(
    study: Study, clock: Clock, tmp_path: Path
) -> None:
    """A battle whose sides transcribe nothing (audio LMs, API models) gets the study ASR's text
    of the clip, exported as `transcript` (what the topics read); a side's own ASR text is used
    where the study ASR did not run."""
    battle = await answered_battle(study, clock, user=DISCORD_ID)
    assert await study.record_transcript(battle.battle_id, 1, "what is the capital of france")
    out = tmp_path / "battles.csv"
    await export_battles(study, out)
    row = pd.read_csv(out).iloc[0]
    assert row["transcript"] == "what is the capital of france"
    assert row["transcript_a"] == "what is the weather"  # the side's own, kept apart

    other = await answered_battle(study, clock, user=DISCORD_ID + 1)
    await export_battles(study, out)
    rows = pd.read_csv(out).set_index("battle_id")
    assert rows.loc[other.battle_id, "transcript"] == "what is the weather"
