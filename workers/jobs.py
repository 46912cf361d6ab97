"""The RQ job: answer one side of a battle, and tell the bot how it went.

`answer(request)` runs in a worker process that has its models loaded (`workers.runtime`). It
reads the clip from Redis, decodes it, calls the model with a partial-text callback, publishes a
`ResultMessage` on `RESULTS_STREAM` and returns the same message as a dict.

Failures. Every job is enqueued with `report_failure` as its RQ failure callback
(`contract.queueing.enqueue_answer`), so whatever ends a job — bad audio, the model raising, the job
timeout (RQ raises `JobTimeout` inside the job), an unexpected bug — ends in a failure
`ResultMessage` the bot can tell the participant about. Only transient backend errors (429, 5xx,
network, after the backend's own backoff) are left to RQ's `Retry`; every other failure sets the
job's remaining retries to 0 before it propagates, because running it again would fail again and
keep the participant waiting. The callback publishes only once no retry is left, so the bot sees
exactly one failure per job (at-least-once: the bot's side is idempotent anyway).
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import redis

from contract.audio import AudioError, load
from contract.keys import (
    AUDIO_TTL_S,
    PARTIALS_MAXLEN,
    PARTIALS_STREAM,
    RESULTS_STREAM,
    TRANSCRIPTS_STREAM,
    reply_audio_key,
)
from contract.protocol import (
    ErrorKind,
    JobRequest,
    ResultMessage,
    TranscribeRequest,
    TranscriptMessage,
)
from contract.queueing import JobTimeout, RunningJob, current_job
from workers import runtime
from workers.backends.base import Answer, BackendError
from workers.tts import SpokenReply, speak, spoken_reply

log = logging.getLogger(__name__)

PARTIAL_MIN_INTERVAL_S = 0.5


class PartialPublisher:
    """`on_partial` for a backend: XADDs the text so far, at most every `min_interval_s`.

    The first partial goes out at once (it is what makes the wait feel short); later ones are
    dropped until the interval has passed. The final text comes with the result anyway.
    """

    def __init__(
        self,
        connection: redis.Redis,
        request: JobRequest,
        *,
        min_interval_s: float = PARTIAL_MIN_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.connection = connection
        self.request = request
        self.min_interval_s = min_interval_s
        self.clock = clock
        self.first_at: float | None = None
        self._last_sent: float | None = None
        self.sent = 0

    def __call__(self, text: str) -> None:
        now = self.clock()
        if self.first_at is None:
            self.first_at = now
        if self._last_sent is not None and now - self._last_sent < self.min_interval_s:
            return
        self._last_sent = now
        try:
            self.connection.xadd(
                PARTIALS_STREAM,
                {"battle_id": self.request.battle_id, "side": self.request.side, "text": text},
                maxlen=PARTIALS_MAXLEN,
                approximate=True,
            )
        except redis.exceptions.RedisError as exc:
            # Partials are best effort: a Redis hiccup must not cost the participant the reply.
            log.warning("partial for battle %s not published: %s", self.request.battle_id, exc)
            return
        self.sent += 1


def publish(connection: redis.Redis, message: ResultMessage) -> dict[str, Any]:
    """Put the result on the results stream; return a receipt for RQ to keep.

    RQ stores a job's return value (as `rq:results:<job id>`, for the result TTL), out of the
    study core's reach: a participant who withdraws would leave their transcript and the
    replies there. So the receipt names the job's battle and side, never what was said."""
    connection.xadd(RESULTS_STREAM, message.to_fields())
    return {
        "battle_id": message.battle_id,
        "side": message.side,
        "model_id": message.model_id,
        "ok": message.ok,
    }


def run(
    request: JobRequest,
    loaded: runtime.Runtime,
    connection: redis.Redis,
    *,
    job_id: str | None = None,
    worker: str | None = None,
) -> ResultMessage:
    """The job's work, given its dependencies; raises on failure (see the module docstring)."""
    started_wall = time.time()
    started = time.perf_counter()
    timings: dict[str, float] = {}
    if request.enqueued_at:
        timings["queue_wait"] = max(0.0, started_wall - request.enqueued_at)
    model = loaded.get(request.model_id)
    timings["load"] = model.load_s
    data = connection.get(request.audio_key)
    if data is None:
        raise AudioError(
            "empty", "The recording is no longer available. Please send your message again."
        )
    if not isinstance(data, bytes):
        raise TypeError(
            f"audio at {request.audio_key!r} read as {type(data).__name__}, not bytes: "
            "the worker's Redis connection must not decode responses"
        )
    audio = load(data, request.max_audio_seconds)
    timings["decode_audio"] = time.perf_counter() - started
    partials = PartialPublisher(connection, request)
    with model.guard:
        # Time spent waiting for another job on the same in-process model: `model_wait`.
        model_started = time.perf_counter()
        if model.guard.exclusive:
            timings["model_wait"] = model_started - started - timings["decode_audio"]
        result = model.backend.answer(audio, list(request.history), partials)
    done = time.perf_counter()
    for key, value in result.timings.items():
        if key == "total":
            timings["model"] = value
        elif key != "first_token":
            timings[key] = value
    if "first_token" in result.timings:
        timings["first_token"] = model_started - started + result.timings["first_token"]
    elif partials.first_at is not None:
        timings["first_token"] = partials.first_at - started
    timings["total"] = done - started
    spoken: SpokenReply | None = None
    audio_key: str | None = None
    if request.speak:
        spoken = spoken_answer(result, loaded)
        timings["speak"] = time.perf_counter() - done
        audio_key = reply_audio_key(request.battle_id, request.side)
        # Next to the participant's clip, with the same TTL; the withdrawal deletes both.
        connection.set(audio_key, spoken.data, ex=AUDIO_TTL_S)
    return ResultMessage(
        battle_id=request.battle_id,
        side=request.side,
        model_id=request.model_id,
        reply=result.reply,
        transcript=result.transcript,
        timings=timings,
        job_id=job_id,
        worker=worker,
        finished_at=time.time(),
        audio_key=audio_key,
        audio_seconds=None if spoken is None else round(spoken.seconds, 3),
        audio_format=None if spoken is None else spoken.format,
        turn=request.turn,
    )


def spoken_answer(result: Answer, loaded: runtime.Runtime) -> SpokenReply:
    """The reply as the participant hears it: the model's own speech where it has one, else
    the study's voice reading the text."""
    if result.audio is not None:
        return spoken_reply(result.audio)
    return speak(loaded.require_voice(), result.reply)


def answer(request: dict[str, Any]) -> dict[str, Any]:
    """RQ entry point (`contract.protocol.JOB_FUNCTION`)."""
    job = current_job()
    if job is None:
        raise RuntimeError("workers.jobs.answer must run inside an RQ worker (no current job)")
    parsed = JobRequest.from_dict(request)
    loaded = runtime.current()
    metrics = loaded.metrics
    if metrics is not None:
        metrics.job_started(parsed.model_id)
    try:
        message = run(parsed, loaded, job.connection, job_id=job.id, worker=job.worker_name)
    except Exception as exc:
        if metrics is not None:
            metrics.job_failed(parsed.model_id, failure_kind(exc))
        if not (isinstance(exc, BackendError) and exc.transient):
            job.retries_left = 0  # permanent: a retry would fail the same way
        raise
    if metrics is not None:
        metrics.job_done(message)
    return publish(job.connection, message)


_TRANSCRIBE_ERRORS = (
    BackendError,
    AudioError,
    JobTimeout,
    KeyError,
    OSError,
    RuntimeError,
    ValueError,
)


def run_transcribe(
    request: TranscribeRequest, loaded: runtime.Runtime, connection: redis.Redis
) -> TranscriptMessage:
    """The study ASR's work: the words of one clip, or the reason it has none."""
    started = time.perf_counter()
    try:
        model = loaded.get(request.model_id)
        transcribe = getattr(model.backend, "transcribe", None)
        if transcribe is None:
            raise BackendError(f"model {request.model_id!r} cannot transcribe (not an ASR model)")
        data = connection.get(request.audio_key)
        if data is None:
            raise AudioError("empty", "The recording is no longer available.")
        if not isinstance(data, bytes):
            raise TypeError(
                f"audio at {request.audio_key!r} read as {type(data).__name__}, not bytes: "
                "the worker's Redis connection must not decode responses"
            )
        audio = load(data, request.max_audio_seconds)
        text: str | None = transcribe(audio)
        error = None
    # Reported rather than raised: the bot then drops the clip and tells nobody's reason is kept.
    except (
        BackendError,
        AudioError,
        JobTimeout,
        KeyError,
        OSError,
        RuntimeError,
        ValueError,
    ) as exc:
        log.warning("transcription for battle %s failed: %s", request.battle_id, exc)
        text, error = None, str(exc) or type(exc).__name__
    return TranscriptMessage(
        battle_id=request.battle_id,
        purpose=request.purpose,
        turn=request.turn,
        text=text,
        model_id=request.model_id,
        seconds=time.perf_counter() - started,
        error=error,
    )


def transcribe(request: dict[str, Any]) -> dict[str, Any]:
    """RQ entry point (`contract.protocol.TRANSCRIBE_FUNCTION`): publishes on
    TRANSCRIPTS_STREAM; the receipt names the battle only, never the words."""
    job = current_job()
    if job is None:
        raise RuntimeError("workers.jobs.transcribe must run inside an RQ worker (no current job)")
    parsed = TranscribeRequest.from_dict(request)
    message = run_transcribe(parsed, runtime.current(), job.connection)
    job.connection.xadd(TRANSCRIPTS_STREAM, message.to_fields())
    return {"battle_id": message.battle_id, "purpose": message.purpose, "ok": not message.error}


def failure_kind(exc: BaseException | None) -> ErrorKind:
    if isinstance(exc, JobTimeout):
        return "timeout"
    if isinstance(exc, AudioError):
        return "bad_audio"
    if isinstance(exc, BackendError) and exc.transient:
        return "transient"
    return "permanent"


def failure_message(
    job: RunningJob, exc: BaseException | None, *, worker: str | None
) -> ResultMessage:
    request = JobRequest.from_dict(job.args[0])
    kind = failure_kind(exc)
    if kind == "timeout":
        error = f"model {request.model_id!r} took longer than the job timeout ({job.timeout} s)"
    elif exc is None:
        error = "the job failed"
    else:
        error = str(exc) or type(exc).__name__
    timings: dict[str, float] = {}
    now = time.time()
    if job.started_at is not None:
        started = job.started_at
        if started.tzinfo is None:  # RQ stores UTC
            started = started.replace(tzinfo=datetime.UTC)
        timings["total"] = max(0.0, now - started.timestamp())
        if request.enqueued_at:
            timings["queue_wait"] = max(0.0, started.timestamp() - request.enqueued_at)
    return ResultMessage(
        battle_id=request.battle_id,
        side=request.side,
        model_id=request.model_id,
        reply=None,
        transcript=None,
        timings=timings,
        error=error,
        error_kind=kind,
        job_id=job.id,
        worker=worker,
        finished_at=now,
        turn=request.turn,
    )


def report_failure(
    job: RunningJob,
    connection: redis.Redis,
    exc_type: type[BaseException] | None,
    exc_value: BaseException | None,
    traceback: TracebackType | None,
) -> None:
    """RQ failure callback: publish a failure result unless RQ is about to retry the job."""
    if job.retries_left:
        log.warning(
            "job %s (%s) failed, %d retr%s left: %s",
            job.id,
            job.args[0].get("model_id") if job.args else "?",
            job.retries_left,
            "y" if job.retries_left == 1 else "ies",
            exc_value,
        )
        return
    message = failure_message(job, exc_value, worker=job.worker_name)
    log.error(
        "job %s for battle %s side %s failed (%s): %s",
        job.id,
        message.battle_id,
        message.side,
        message.error_kind,
        message.error,
    )
    publish(connection, message)
