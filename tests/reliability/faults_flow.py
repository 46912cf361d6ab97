"""Reading the truth back for the fault tests: vote events and RQ's job registries. (The
participants are played by `devstack.driver.StudyDriver`.)"""

from __future__ import annotations

import json

import redis
from rq import Queue
from rq.registry import StartedJobRegistry

from contract.keys import EVENTS, queue_name
from devstack.harness import E2E_MODELS, Stack


def vote_events(stack: Stack, battle_id: str) -> int:
    """How many vote events the event stream holds for a battle (exactly once: 1)."""
    client = stack.redis_client()
    try:
        count = 0
        for _, fields in client.xrange(EVENTS):
            if (
                fields.get(b"type") == b"vote"
                and json.loads(fields[b"data"]).get("battle_id") == battle_id
            ):
                count += 1
        return count
    finally:
        client.close()


def started_jobs(client: redis.Redis, model_id: str) -> list[str]:
    """Ids of the jobs a worker has started (and not finished) on a model's queue."""
    registry = StartedJobRegistry(queue_name(model_id), connection=client)
    return registry.get_job_ids(cleanup=False)


def waiting_jobs(client: redis.Redis) -> int:
    return sum(Queue(queue_name(m), connection=client).count for m in E2E_MODELS)
