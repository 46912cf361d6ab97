"""Golden cases for the texts of the Discord layer (pure functions, no Discord)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.discord_app import render
from bot.service.outcomes import (
    BadAudio,
    ConsentOutdated,
    Exported,
    NotAudio,
    NotDispatched,
    Refusal,
    TextOnly,
    TooBig,
    TooLong,
    UnknownLength,
)
from contract.records import Battle, BattleStatus, Reply, Strategy, Winner


def _battle(status: BattleStatus, a: str | None, b: str | None, **extra: object) -> Battle:
    replies = {}
    for side, text in (("a", a), ("b", b)):
        if text is not None:
            error = "boom from secret-model-x" if text == "ERROR" else None
            replies[side] = Reply(
                side=side,
                model_id=f"secret-model-{side}",
                text=None if error else text,
                transcript=None,
                timings={},
                error=error,
                received_at=1.0,
            )
    return Battle(
        battle_id="0123456789abcdef",
        participant="p" * 16,
        model_a="secret-model-a",
        model_b="secret-model-b",
        status=status,
        strategy=Strategy.UNIFORM,
        created_at=0.0,
        audio_ref=None,
        audio_seconds=3.0,
        replies=replies,
        **extra,  # type: ignore[arg-type]
    )


def test_answered_battle_shows_both_replies_without_names() -> None:
    rendered = render.render_battle(_battle(BattleStatus.ANSWERED, "Hello there.", "Hi!"))
    assert rendered.content == (
        render.VOTE_HEADER + "\n\n**Model A**\n```\nHello there.\n```\n\n**Model B**\n```\nHi!\n```"
    )
    assert rendered.overflow == {}
    assert "secret" not in rendered.content


def test_failed_side_hides_the_error_text() -> None:
    rendered = render.render_battle(_battle(BattleStatus.FAILED, "fine", "ERROR"))
    assert "could not answer" in rendered.content
    assert "secret" not in rendered.content
    assert rendered.content.startswith(render.failed_header())


def test_long_replies_fit_and_overflow_to_files() -> None:
    long_a = "word " * 1000
    rendered = render.render_battle(_battle(BattleStatus.ANSWERED, long_a, "short"))
    assert len(rendered.content) <= render.MESSAGE_LIMIT
    assert rendered.overflow == {"a": long_a}
    assert "model-a.txt" in rendered.content
    assert "```\nshort\n```" in rendered.content


def test_streaming_text_is_marked_and_never_overflows() -> None:
    rendered = render.battle_message("h", {"a": "x" * 5000, "b": None}, streaming=True)
    assert len(rendered.content) <= render.MESSAGE_LIMIT
    assert rendered.overflow == {}
    assert "*listening…*" in rendered.content
    assert "still writing" in rendered.content


def test_reveal_names_the_models_and_the_rest_of_the_day() -> None:
    battle = _battle(BattleStatus.VOTED, "a", "b", winner=Winner.TIE)
    names = {"a": "Alpha", "b": "Beta"}
    rendered = render.render_battle(battle, names=names, remaining=1)
    assert rendered.content.startswith(
        "✅ Thanks for voting (a tie)! Model A was **Alpha** and Model B was **Beta**. "
        "You can do 1 more round today."
    )
    done = render.render_battle(battle, names=names, remaining=0)
    assert "reached today's limit" in done.content


@pytest.mark.parametrize(
    ("position", "expected"),
    [
        (None, "🎧 Got your message — two models are listening now."),
        (0, "🎧 Got your message — two models are listening now."),
        (
            1,
            "🎧 Got your message — 1 message is ahead of yours in the queue. "
            "Replies will appear here.",
        ),
        (
            3,
            "🎧 Got your message — 3 messages are ahead of yours in the queue. "
            "Replies will appear here.",
        ),
    ],
)
def test_progress_header(position: int | None, expected: str) -> None:
    assert render.progress_header(position) == expected


def test_split_text_prefers_line_breaks() -> None:
    text = "a" * 10 + "\n" + "b" * 10
    assert render.split_text(text, limit=15) == ["a" * 10, "b" * 10]
    assert render.split_text("c" * 25, limit=10) == ["c" * 10, "c" * 10, "c" * 5]
    with pytest.raises(ValueError, match="limit must be positive"):
        render.split_text("x", limit=0)


def test_json_block_refuses_what_does_not_fit() -> None:
    assert render.json_block({"a": 1}) == '```json\n{\n  "a": 1\n}\n```'
    # What a participant typed cannot close the block early.
    block = render.json_block({"country": "x```\n**fake**"})
    assert block is not None
    assert block.count("```") == 2
    assert render.json_block({"a": "x" * 3000}) is None


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (TextOnly(joined=True), render.TEXT_HINT),
        (TextOnly(joined=False), render.NOT_JOINED),
        (NotAudio("notes.txt"), render.not_audio("notes.txt")),
        (Refusal("paused", "The study is paused."), "The study is paused."),
        (BadAudio("silent", "The recording is silent."), "The recording is silent."),
        (BadAudio("corrupt", "The recording seems damaged."), render.UNREADABLE_RECORDING),
        (ConsentOutdated("2"), render.consent_outdated("2")),
        (TooBig(9_000_000, 8_000_000), render.too_big(9_000_000, 8_000_000)),
        (UnknownLength(), render.unreadable_audio("its length is unknown")),
        (TooLong(75.0, 60.0), render.too_long(75.0, 60.0)),
        (NotDispatched("00000000000000a1"), render.NOT_DISPATCHED),
    ],
)
def test_clip_answer(outcome: render.ClipAnswer, expected: str) -> None:
    assert render.clip_answer(outcome) == expected


def test_clip_answer_texts() -> None:
    assert render.too_long(75.0, 60.0) == (
        "That recording is 75 s long; the study takes up to 60 s. Please send a shorter one."
    )
    assert render.NOT_DISPATCHED == (
        "Sorry, I couldn't pass your message to the models right now. "
        "Please try again in a little while."
    )


def test_unserved_models_are_named_with_what_to_do() -> None:
    assert render.unserved_text([]) == ""
    text = render.unserved_text(["alpha", "beta"])
    assert text.startswith("\n")
    assert "`alpha`, `beta`" in text
    assert "/study models" in text


def test_export_summary_names_path_counts_and_flags_never_content(tmp_path: Path) -> None:
    path = tmp_path / "exports" / "battles-20261129-120000.csv"
    exported = Exported(
        path, 5, 2_500_000, voted=4, participants=2, flags={"fast_vote": 1, "identity_leak": 2}
    )
    text = render.export_summary(exported)
    assert "Exported 5 battles (4 voted, 2 participants)" in text
    assert f"`{path}`" in text
    assert "2.5 MB" in text
    assert "fast_vote 1, identity_leak 2" in text
    assert "upload:True" in text
    empty = render.export_summary(Exported(path, 0, 10))
    assert "Flagged battles (kept in the export, column `flags`): none." in empty
