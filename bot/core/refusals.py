"""The polite messages of every refusal, by code. `Refused.message` is shown to users as is."""

from __future__ import annotations

from datetime import UTC, datetime

from contract.records import Refused

_MESSAGES = {
    "no_consent": "Please join the study first (use /join and agree to the consent form).",
    "withdrawn": "You have withdrawn from this study, so you cannot take part again.",
    "blocked": "You cannot start new battles in this study. Please contact a moderator.",
    "paused": "The study is paused for now; please try again later.",
    "closed": "The study is closed and takes no new battles. Thank you for taking part!",
    "not_open_yet": (
        "The study is not open yet: the moderators will open it soon. Thank you for your "
        "patience; please come back then!"
    ),
    "roster_too_small": "The study has fewer than two models right now; please try again later.",
    "daily_quota": "You have reached today's limit of battles. Thank you! You can go on {when}.",
    "rate_limited": "Please wait a little before the next battle: you can go on {when}.",
    "audio_too_long": "That recording is too long: please keep it under {limit:g} seconds.",
    "audio_too_large": "That recording is too large: please keep it under {limit} bytes.",
    "no_such_battle": "That battle no longer exists.",
    "not_your_battle": "Only the person who started this battle can vote on it.",
    "already_voted": "You already voted on this battle; your first vote stands.",
    "not_ready": "Please wait until both replies are in before voting.",
    "failed": "One of the models failed on this battle, so it cannot take a vote. Sorry!",
    "empty_comment": "The comment is empty.",
    "comment_too_long": "Comments can be at most {limit} characters.",
    "too_many_comments": "This battle already has the most comments it can take ({limit}).",
    "unknown_model": "Unknown model id(s): {bad}. Known ids: {known}.",
    "roster_invalid": "{detail}",
    "invalid_limit": "{detail}",
    "invalid_reply_mode": "Unknown reply mode {bad!r}; modes: {known}.",
    "turn_limit": (
        "This conversation has reached its {limit} turns. Please vote on it (Tie and Both are "
        "bad are fine too); your next voice message then starts a new round."
    ),
    "not_voted": "Please vote on this round first.",
    "no_loser": "This round was a tie, so neither reply lost.",
    "unknown_reason": "Unknown reason {reason!r}; choose one of: {known}.",
    "no_asr": "This study takes reasons as text only: please use “Add a comment”.",
    "reason_expired": "I was no longer waiting for a reason for that round; nothing was kept.",
    "invalid_value": "{detail}",
}


def when(retry_at: float) -> str:
    """A Discord timestamp tag (renders in the reader's time zone) plus UTC text for elsewhere."""
    utc = datetime.fromtimestamp(retry_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"<t:{int(retry_at + 0.999)}:R> ({utc})"


def refused(code: str, retry_at: float | None = None, **details: object) -> Refused:
    template = _MESSAGES.get(code)
    if template is None:
        raise ValueError(f"no message for refusal code {code!r}")
    if retry_at is not None:
        details.setdefault("when", when(retry_at))
    return Refused(code, template.format(**details), retry_at)


def refused_until(code: str, retry_at: str) -> Refused:
    """A refusal a script answered: its code and retry time as text ("" when there is none)."""
    return refused(code, retry_at=float(retry_at) if retry_at else None)
