from __future__ import annotations

import pytest

from bot.core.quality import is_fast_vote, min_listen_seconds, min_read_seconds


def test_reading_time_counts_both_replies() -> None:
    assert min_read_seconds(["a" * 100, "b" * 150], 50.0) == pytest.approx(5.0)
    assert min_read_seconds([None, "xyz"], 3.0) == pytest.approx(1.0)


def test_listening_time_is_a_share_of_both_durations() -> None:
    assert min_listen_seconds([4.0, 6.0], 0.5) == pytest.approx(5.0)
    assert min_listen_seconds([None, 2.0], 1.0) == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("delay", "needed", "floor", "fast"),
    [
        (1.0, 5.0, 0.0, True),
        (5.0, 5.0, 0.0, False),
        (1.5, 0.1, 2.0, True),
        (None, 5.0, 0.0, False),
    ],
)
def test_fast_vote(delay: float | None, needed: float, floor: float, fast: bool) -> None:
    assert is_fast_vote(delay, needed, floor) is fast


def test_bad_thresholds_are_refused() -> None:
    with pytest.raises(ValueError, match="chars_per_second"):
        min_read_seconds(["x"], 0)
    with pytest.raises(ValueError, match="share"):
        min_listen_seconds([1.0], 1.5)
    with pytest.raises(ValueError, match="share"):
        min_listen_seconds([1.0], 0.0)
    # Only what is not positive (or not a share) is refused: slow readers and tiny shares pass.
    assert min_read_seconds(["x"], 0.5) == pytest.approx(2.0)
    assert min_listen_seconds([10.0], 0.01) == pytest.approx(0.1)


def test_no_floor_by_default() -> None:
    assert is_fast_vote(0.5, 0.4) is False
    assert is_fast_vote(0.3, 0.4) is True
