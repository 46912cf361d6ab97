"""A voice message in, without Discord: the rules before the download, the probe, the battle and
its two RQ jobs on the real queues."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from rq import Queue
from rq.job import Job

from bot.core import Study
from bot.service import StudyService
from bot.service.clips import audio_suffix, first_audio, looks_like_audio
from bot.service.outcomes import (
    Admitted,
    BadAudio,
    Clip,
    ClipMeta,
    ConsentOutdated,
    NotAudio,
    NotDispatched,
    Refusal,
    Started,
    TextOnly,
    TooBig,
    TooLong,
)
from contract.keys import queue_name
from contract.modelsfile import ModelsFile
from contract.protocol import JOB_FUNCTION
from contract.records import BattleStatus, StudyState
from tests.core.helpers import Clock
from tests.service.conftest import JOB_TIMEOUT_S, make_service, tone

VOICE = ClipMeta("voice-message.ogg", "audio/ogg", 20_000, voice_message=True)


def wav_meta(data: bytes) -> ClipMeta:
    return ClipMeta("clip.wav", "audio/wav", len(data))


async def test_take_starts_the_battle_and_queues_both_jobs(
    service: StudyService, study: Study, rq_conn: redis.Redis, data_dir: Path
) -> None:
    await study.consent(1, "1")
    data = tone(2.0)
    outcome = await service.clips.take(
        1, wav_meta(data), data, ui={"channel_id": "10", "message_id": "20"}
    )
    assert isinstance(outcome, Started)
    battle = outcome.battle
    assert battle.status is BattleStatus.QUEUED
    assert battle.audio_seconds == pytest.approx(2.0, abs=0.01)
    assert (data_dir / "audio" / f"{battle.battle_id}.wav").read_bytes() == data
    # Both jobs wait at the head of their model's queue, in side order.
    assert len(outcome.job_ids) == 2
    assert outcome.position == 0
    jobs = Job.fetch_many(outcome.job_ids, connection=rq_conn)
    for job, side, model in zip(jobs, "ab", (battle.model_a, battle.model_b), strict=True):
        assert job is not None
        assert job.origin == queue_name(model)
        assert job.func_name == JOB_FUNCTION
        assert job.timeout == JOB_TIMEOUT_S
        request = job.args[0]
        assert (request["battle_id"], request["side"], request["model_id"]) == (
            battle.battle_id,
            side,
            model,
        )
        assert request["audio_format"] == "wav"
        assert Queue(queue_name(model), connection=rq_conn).count == 1
    stored = await study.battle(battle.battle_id)
    assert stored is not None
    assert stored.ui["jobs"] == outcome.job_ids
    assert stored.ui["message_id"] == "20"


async def test_position_counts_the_jobs_ahead(
    service: StudyService, study: Study, clock: Clock
) -> None:
    await study.set_limits("mod", min_seconds_between=0)
    data = tone(1.0)
    positions = []
    for user in (1, 2, 3):
        await study.consent(user, "1")
        outcome = await service.clips.take(user, wav_meta(data), data)
        assert isinstance(outcome, Started)
        positions.append(outcome.position)
    # With four models, a third battle shares at least one model with an earlier one.
    assert positions[0] == 0
    assert positions[2] is not None
    assert positions[2] >= 1


async def test_text_only_hint_depends_on_joining(service: StudyService, study: Study) -> None:
    assert await service.clips.admit(1, []) == TextOnly(joined=False)
    await study.consent(1, "1")
    assert await service.clips.admit(1, []) == TextOnly(joined=True)


async def test_not_audio_names_the_first_attachment(service: StudyService, study: Study) -> None:
    await study.consent(1, "1")
    offers = [ClipMeta("notes.txt", "text/plain", 10), ClipMeta("cat.png", "image/png", 10)]
    assert await service.clips.admit(1, offers) == NotAudio("notes.txt")


async def test_admit_picks_the_audio_attachment(service: StudyService, study: Study) -> None:
    await study.consent(1, "1")
    offers = [ClipMeta("notes.txt", "text/plain", 10), VOICE]
    admitted = await service.clips.admit(1, offers)
    assert isinstance(admitted, Admitted)
    assert admitted.clip == VOICE
    assert admitted.audio_format == "ogg"
    assert admitted.limits == (await study.config()).limits


async def test_eligibility_refusals_come_back_as_values(
    service: StudyService, study: Study
) -> None:
    refusal = await service.clips.admit(1, [VOICE])
    assert isinstance(refusal, Refusal)
    assert refusal.code == "no_consent"
    await study.consent(1, "1")
    await study.set_state(StudyState.PAUSED, "mod")
    refusal = await service.clips.admit(1, [VOICE])
    assert isinstance(refusal, Refusal)
    assert refusal.code == "paused"


async def test_an_older_consent_version_does_not_count(
    study: Study,
    redis_client: aioredis.Redis,
    rq_conn: redis.Redis,
    models_file: ModelsFile,
    data_dir: Path,
    clock: Clock,
) -> None:
    await study.consent(1, "1")
    service = make_service(
        study, redis_client, rq_conn, models_file, data_dir, clock, consent_version="2"
    )
    data = tone(1.0)
    assert await service.clips.admit(1, [wav_meta(data)]) == ConsentOutdated("2")
    assert await service.clips.take(1, wav_meta(data), data) == ConsentOutdated("2")
    assert await study.open_battles() == []


async def test_too_big_is_refused_before_the_download(service: StudyService, study: Study) -> None:
    await study.consent(1, "1")
    await study.set_limits("mod", audio_max_bytes=5_000)
    big = ClipMeta("long.ogg", None, 5_001)
    assert await service.clips.admit(1, [big]) == TooBig(5_001, 5_000)


async def test_read_refuses_unreadable_and_too_long_audio(
    service: StudyService, study: Study
) -> None:
    await study.consent(1, "1")
    await study.set_limits("mod", audio_max_seconds=1.0)
    admitted = await service.clips.admit(1, [VOICE])
    assert isinstance(admitted, Admitted)
    bad = await service.clips.read(admitted, b"this is not audio at all" * 10)
    assert isinstance(bad, BadAudio)
    assert bad.reason == "not_audio"
    assert bad.message  # AudioError's polite text, shown as is
    long = await service.clips.read(admitted, tone(1.5))
    assert isinstance(long, TooLong)
    assert long.seconds == pytest.approx(1.5, abs=0.01)
    assert long.limit == 1.0
    short = await service.clips.read(admitted, tone(0.5))
    assert isinstance(short, Clip)
    assert await study.open_battles() == []


async def test_start_rechecks_the_rules(service: StudyService, study: Study) -> None:
    """The study can pause while a clip downloads: the core's atomic re-check refuses."""
    await study.consent(1, "1")
    data = tone(1.0)
    admitted = await service.clips.admit(1, [wav_meta(data)])
    assert isinstance(admitted, Admitted)
    clip = await service.clips.read(admitted, data)
    assert isinstance(clip, Clip)
    await study.set_state(StudyState.PAUSED, "mod")
    refusal = await service.clips.start(clip)
    assert isinstance(refusal, Refusal)
    assert refusal.code == "paused"
    assert await study.open_battles() == []


async def test_enqueue_failure_is_reported_not_raised(
    study: Study,
    redis_client: aioredis.Redis,
    models_file: ModelsFile,
    data_dir: Path,
    clock: Clock,
) -> None:
    # Port 1 refuses connections: RQ's enqueue fails with a RedisError.
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)
    service = make_service(study, redis_client, dead, models_file, data_dir, clock)
    await study.consent(1, "1")
    data = tone(1.0)
    outcome = await service.clips.take(1, wav_meta(data), data)
    assert isinstance(outcome, NotDispatched)
    battle = await study.battle(outcome.battle_id)
    assert battle is not None
    assert "jobs" not in battle.ui
    dead.close()


@pytest.mark.parametrize(
    ("filename", "content_type", "voice", "expected"),
    [
        ("voice-message.ogg", "audio/ogg", True, True),
        ("x.bin", None, True, True),
        ("x.bin", "audio/mpeg; codecs=mp3", False, True),
        ("REC.M4A", None, False, True),
        ("clip.MP3", None, False, True),
        ("blob", "audio/x-wav", False, True),
        # A video's sound is taken; `read` keeps only its audio stream.
        ("screen.mp4", "video/mp4", False, True),
        ("take.mov", None, False, True),
        ("photo.png", "image/png", False, False),
        ("notes.txt", "text/plain", False, False),
    ],
)
def test_looks_like_audio(
    filename: str, content_type: str | None, voice: bool, expected: bool
) -> None:
    assert looks_like_audio(filename, content_type, voice_message=voice) is expected
    meta = ClipMeta(filename, content_type, 1, voice_message=voice)
    assert (first_audio([meta]) == meta) is expected


@pytest.mark.parametrize(
    ("filename", "content_type", "expected"),
    [
        ("a.ogg", None, "ogg"),
        ("A.WAV", "audio/wav", "wav"),
        ("clip", "audio/x-wav", "xwav"),
        ("clip", None, "ogg"),
        ("clip", "audio/;", "ogg"),
    ],
)
def test_audio_suffix(filename: str, content_type: str | None, expected: str) -> None:
    assert audio_suffix(filename, content_type) == expected


@pytest.fixture(scope="module")
def speech_ogg(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    from devstack.clips import encode, speak

    wav = speak("What is the capital of France?", tmp_path_factory.mktemp("c") / "q.wav")
    return encode(wav, "ogg", "libopus", 48_000)


async def test_a_corrupt_recording_is_refused_before_any_quota(
    service: StudyService, study: Study, speech_ogg: bytes
) -> None:
    """A good header and last page pass the probe; decoding it all finds the damage."""
    from bot.discord_app import render
    from devstack.clips import corrupt_ogg_packets

    await study.consent(1, "1")
    before = await study.remaining_today(1)
    bad = corrupt_ogg_packets(speech_ogg)
    outcome = await service.clips.take(1, VOICE, bad)
    assert outcome == BadAudio("corrupt", outcome.message)  # type: ignore[union-attr]
    assert render.clip_answer(outcome) == render.UNREADABLE_RECORDING  # type: ignore[arg-type]
    assert "could not read your recording" in render.UNREADABLE_RECORDING
    assert await study.open_battles() == []
    assert await study.remaining_today(1) == before
    # The same recording undamaged starts a battle.
    assert isinstance(await service.clips.take(1, VOICE, speech_ogg), Started)


async def test_a_video_file_is_stored_as_audio_only(
    service: StudyService, study: Study, data_dir: Path, speech_ogg: bytes, tmp_path: Path
) -> None:
    import io

    import av

    from devstack.clips import speak, with_video

    await study.consent(1, "1")
    mp4 = with_video(speak("Tell me a joke.", tmp_path / "j.wav"))
    outcome = await service.clips.take(1, ClipMeta("clip.webm", None, len(mp4)), mp4)
    assert isinstance(outcome, Started)
    stored = data_dir / "audio" / f"{outcome.battle.battle_id}.m4a"
    with av.open(io.BytesIO(stored.read_bytes())) as container:
        assert [s.type for s in container.streams] == ["audio"]
    assert not list((data_dir / "audio").glob("*.webm"))
