"""What the bot calls to queue one side of a battle: light (rq and the protocol only, no torch).

    job = enqueue_answer(redis_conn, request, timeout_s=settings.job_timeout_s, retries=1)

The job runs `workers.jobs.answer` on the queue of the request's model, with `timeout_s` as its
RQ job timeout, up to `retries` RQ retries for transient failures (the API backends already retry
429/5xx with backoff inside one attempt), and `workers.jobs.report_failure` as its failure
callback, so every way a job can fail ends in a failure `ResultMessage` on the results stream.
"""

from __future__ import annotations

import dataclasses
import time

import redis
from rq import Callback, Queue, Retry
from rq.job import Job

from contract.keys import queue_name
from contract.protocol import JOB_FUNCTION, JobRequest

FAILURE_CALLBACK = "workers.jobs.report_failure"
# RQ bookkeeping only: the result itself travels on the results stream.
RESULT_TTL_S = 3600
FAILURE_TTL_S = 7 * 24 * 3600


def enqueue_answer(
    redis_conn: redis.Redis,
    request: JobRequest,
    *,
    timeout_s: int,
    retries: int = 1,
    retry_interval_s: int = 0,
) -> Job:
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s}")
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    if not request.enqueued_at:
        request = dataclasses.replace(request, enqueued_at=time.time())
    queue = Queue(queue_name(request.model_id), connection=redis_conn)
    return queue.enqueue(
        JOB_FUNCTION,
        request.to_dict(),
        job_timeout=timeout_s,
        # A retry with an interval waits in RQ's scheduler; 0 puts it straight back on the queue.
        retry=Retry(max=retries, interval=retry_interval_s) if retries else None,
        on_failure=Callback(FAILURE_CALLBACK),
        result_ttl=RESULT_TTL_S,
        failure_ttl=FAILURE_TTL_S,
        description=f"{request.model_id} battle {request.battle_id} side {request.side}",
    )
