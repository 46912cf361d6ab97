"""Snapshots of a study's Redis state, to show that a refused input changed nothing.

RQ's keys and the workers' heartbeats change on their own every few seconds, so they are left
out; everything else (the study, the Discord layer's keys, the results streams) is compared
byte for byte through DUMP, which also catches a changed field order or stream entry.
"""

from __future__ import annotations

import redis

from contract.keys import WORKERS_KEY

# Volatile: RQ's own bookkeeping (worker registrations, heartbeats, job hashes) and the
# workers' heartbeat hash.
VOLATILE_PREFIXES: tuple[bytes, ...] = (b"rq:", WORKERS_KEY.encode())


def snapshot(client: redis.Redis) -> dict[bytes, bytes]:
    """key -> DUMP of its value, for every non-volatile key of the db."""
    found: dict[bytes, bytes] = {}
    for key in client.scan_iter(count=1000):
        if key.startswith(VOLATILE_PREFIXES):
            continue
        dumped = client.dump(key)
        if dumped is not None:  # expired between SCAN and DUMP
            found[key] = dumped
    return found


def differences(before: dict[bytes, bytes], after: dict[bytes, bytes]) -> list[str]:
    """Human-readable changes between two snapshots (empty: the same state)."""
    out = [f"added {k!r}" for k in sorted(after.keys() - before.keys())]
    out += [f"removed {k!r}" for k in sorted(before.keys() - after.keys())]
    out += [f"changed {k!r}" for k in sorted(before.keys() & after.keys()) if before[k] != after[k]]
    return out
