"""The one small interface every model backend implements.

A backend is built from its `ModelSpec`, loads once (`load`), is warmed up once (`warmup`), and then
answers many clips (`answer`). Loading happens in the worker process at start, never per job.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol

import numpy as np

from contract.modelsfile import ModelSpec

SAMPLE_RATE = 16_000

# Called with the whole reply text so far, as it grows (where the backend can stream).
PartialCallback = Callable[[str], None]


@dataclass(frozen=True)
class Answer:
    reply: str
    transcript: str | None = None
    # Seconds. Keys: total, first_token (where known), asr, generate, tokens (count), ...
    timings: dict[str, float] = field(default_factory=dict)
    # A model that speaks for itself (audio out): its speech, in any container PyAV reads.
    # Used in reply modes speech/both instead of the study's TTS voicing `reply`.
    audio: bytes | None = None


class BackendError(Exception):
    """A backend could not answer. `transient` errors (429, 5xx, timeouts) are worth a retry."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class Backend(Protocol):
    spec: ModelSpec
    # A backend whose `answer` may run in several threads at once says so with a class
    # attribute `concurrent = True` (read with getattr: the default is one job at a time).

    def __init__(self, spec: ModelSpec) -> None:
        """Validate the model's settings; load nothing (the registry builds every backend so)."""

    def load(self) -> None:
        """Load weights / open sessions. Called once per worker process."""

    def warmup(self) -> None:
        """Run one short request so the first participant does not pay for compilation."""

    def answer(
        self,
        audio: np.ndarray,
        history: list[dict[str, str]],
        on_partial: PartialCallback | None = None,
    ) -> Answer:
        """`audio`: 16 kHz mono float32 in [-1, 1]. `history`: earlier turns, oldest first."""
        ...


# How long one try to take a model's guard lasts (see ModelGuard.__enter__).
GUARD_POLL_S = 0.05


class ModelGuard:
    """Lets one job at a time into a backend (or a stage of one) that cannot take two at once.

    A backend says it can (`concurrent = True`: the API backends, whose servers batch; the
    pipeline, which guards its own local stages); every other one (in-process transformers
    models: one static KV cache, one set of compiled graphs) gets a lock. With one job in flight
    per worker the lock is never contended."""

    def __init__(self, concurrent: bool) -> None:
        self._lock = None if concurrent else threading.Lock()

    @property
    def exclusive(self) -> bool:
        return self._lock is not None

    def __enter__(self) -> None:
        if self._lock is None:
            return
        # In short tries: a job timeout in a slot thread is an exception raised asynchronously
        # in that thread, delivered between bytecodes, never inside one long blocking acquire.
        while not self._lock.acquire(timeout=GUARD_POLL_S):
            pass

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._lock is not None:
            self._lock.release()
