"""A stand-in for the bot's side of the queue, for the benchmarks: enqueue one side of a battle
the way the bot does (the clip in Redis, `contract.queueing.enqueue_answer`) and read the results
off the stream, without Discord or the study core, so queue and worker overhead can be timed alone.
"""

from __future__ import annotations

import time

import redis

from contract.heartbeat import live_workers
from contract.keys import RESULTS_STREAM, audio_key
from contract.protocol import JobRequest, ResultMessage, Side
from contract.queueing import enqueue_answer


class Bot:
    """What the bot does: enqueue, then read results off the stream."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.last_id = "0-0"
        self.n = 0

    def enqueue(self, model_id: str, clip: bytes, side: Side = "a") -> str:
        self.n += 1
        battle_id = f"bench{self.n}"
        self.client.set(audio_key(battle_id), clip)
        request = JobRequest(
            battle_id=battle_id,
            side=side,
            model_id=model_id,
            audio_key=audio_key(battle_id),
            audio_format="ogg",
            max_audio_seconds=60.0,
        )
        enqueue_answer(self.client, request, timeout_s=60, retries=0)
        return battle_id

    def next_results(self, count: int, timeout_s: float = 60.0) -> list[ResultMessage]:
        out: list[ResultMessage] = []
        deadline = time.monotonic() + timeout_s
        while len(out) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(out)} of {count} results within {timeout_s} s")
            reply = self.client.xread({RESULTS_STREAM: self.last_id}, block=1000)
            if not isinstance(reply, list):  # RESP2: [[stream, entries], ...]
                raise TypeError(f"XREAD replied {type(reply).__name__}; a RESP2 list was expected")
            for _, entries in reply:
                for entry_id, fields in entries:
                    self.last_id = entry_id
                    message = ResultMessage.from_fields(fields)
                    if not message.ok:
                        raise RuntimeError(f"job failed: {message.error}")
                    out.append(message)
        return out


def wait_workers(client: redis.Redis, count: int) -> None:
    """Until `count` workers announce themselves (a minute at most)."""
    deadline = time.monotonic() + 60
    while len(live_workers(client)) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{count} workers did not start")
        time.sleep(0.05)
