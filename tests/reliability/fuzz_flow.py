"""Readers the fuzz and security tests share: every text the stand-in recorded, and the study's
pseudonym of a user. (The participants and moderators are played by `devstack.driver`.)"""

from __future__ import annotations

import hashlib
import hmac
import json

from devstack.harness import SECRET, Stack
from devstack.standin.state import User


def rest_bodies(stack: Stack) -> list[str]:
    """Every REST call the bot made, as text: path, query, JSON body and uploaded files."""
    out: list[str] = []
    for call in stack.standin.rest_log:
        parts = [call.path, json.dumps(call.query, default=str), json.dumps(call.json, default=str)]
        parts += [upload.data.decode(errors="replace") for upload in call.files]
        out.append("\n".join(parts))
    return out


def pseudonym_of(user: User) -> str:
    """The study's pseudonym for a stand-in user (the core's HMAC, with the stack's secret)."""
    return hmac.new(SECRET.encode(), str(user.id).encode(), hashlib.sha256).hexdigest()[:16]
