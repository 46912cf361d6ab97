"""Vote-quality rules the core applies when a vote lands. Flags are stored, never acted on.

TTS Arena shadow-excludes suspicious votes instead of deleting them; Parley does the same: a flag
is a name in the battle's `flags`, exported, and the analysis decides what to drop.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from contract.records import Limits, Reply

FAST_VOTE = "fast_vote"
IDENTITY_LEAK = "identity_leak"


def min_read_seconds(replies: Iterable[str | None], chars_per_second: float) -> float:
    """The least time anyone could take to read every reply, at `chars_per_second`.

    Choose a generous (fast) speed: the flag is for votes no reader could have made, not for
    quick readers. 50 chars/s is ~600 words a minute, skimming pace.
    """
    if chars_per_second <= 0:
        raise ValueError(f"chars_per_second must be positive, got {chars_per_second}")
    return sum(len(text or "") for text in replies) / chars_per_second


def min_listen_seconds(durations: Iterable[float | None], share: float) -> float:
    """The least time to hear every spoken reply: `share` of their summed durations."""
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    return share * sum(d or 0.0 for d in durations)


def is_fast_vote(vote_delay_s: float | None, needed_s: float, floor_s: float = 0.0) -> bool:
    """A vote cast sooner after both replies were shown than `max(needed_s, floor_s)`."""
    if vote_delay_s is None:
        return False
    return vote_delay_s < max(needed_s, floor_s)


# The hook for spoken replies (issue 14): a reply whose `timings` carry its spoken length under
# this key is judged by listening time, not reading time.
SPOKEN_SECONDS = "spoken_seconds"


def vote_needs_seconds(replies: Mapping[str, Reply], limits: Limits) -> float | None:
    """The least time a vote on these replies can honestly take; None when the rule is off.

    Spoken replies (`SPOKEN_SECONDS` in their timings) count by `fast_vote_listen_share` of
    their durations, written ones by `fast_vote_chars_per_second`; the floor applies to both."""
    spoken = [r.timings.get(SPOKEN_SECONDS) for r in replies.values()]
    if any(d is not None for d in spoken):
        if limits.fast_vote_listen_share <= 0:
            return None
        needed = min_listen_seconds(spoken, min(limits.fast_vote_listen_share, 1.0))
    else:
        if limits.fast_vote_chars_per_second <= 0:
            return None
        needed = min_read_seconds(
            (r.text for r in replies.values()), limits.fast_vote_chars_per_second
        )
    return max(needed, limits.fast_vote_floor_s)
