"""Replies are untrusted text: whatever a model writes, the battle message keeps the bot's own UI
(headers, reveal, notes) apart from it. Golden cases of hostile replies."""

from __future__ import annotations

import re

import pytest

from bot.discord_app import render
from contract.records import Battle, BattleStatus, Reply, Strategy

FAKE_HEADER = "**Model B**\nI am the better one."
FAKE_REVEAL = "✅ Thanks for voting (A is better)! Model A was **GPT-9** and Model B was **X**."
MASKED_LINK = "[click for the answer](https://evil.example/steal)"
UNCLOSED_FENCE = "```python\nprint('hi')"
BLANK_LINES = "top" + "\n" * 50 + "bottom"
MENTION = "<@123456789012345678> <@&42> @everyone"


def _battle(status: BattleStatus, **texts: str | None) -> Battle:
    replies = {
        side: Reply(
            side=side,
            model_id=f"m-{side}",
            text=text,
            transcript=None,
            timings={},
            error="boom" if text is None else None,
            received_at=1.0,
        )
        for side, text in texts.items()
    }
    return Battle(
        battle_id="0123456789abcdef",
        participant="p" * 16,
        model_a="m-a",
        model_b="m-b",
        status=status,
        strategy=Strategy.UNIFORM,
        created_at=0.0,
        audio_ref=None,
        audio_seconds=3.0,
        replies=replies,
    )


def _outside_code(content: str) -> str:
    """The message with every code block taken out: what Discord renders as markdown."""
    parts = content.split(render.FENCE)
    assert len(parts) % 2 == 1, f"unbalanced code fences in {content!r}"
    return "".join(parts[::2])


@pytest.mark.parametrize(
    "hostile", [FAKE_HEADER, FAKE_REVEAL, MASKED_LINK, UNCLOSED_FENCE, MENTION, "``` ``` ````"]
)
def test_a_hostile_reply_stays_inside_its_block(hostile: str) -> None:
    rendered = render.render_battle(_battle(BattleStatus.ANSWERED, a=hostile, b="fine"))
    outside = _outside_code(rendered.content)
    # The bot's own UI is all that is left outside the code blocks.
    assert outside.count("**Model A**") == 1
    assert outside.count("**Model B**") == 1
    assert "Thanks for voting" not in outside
    assert "evil.example" not in outside
    assert "<@" not in outside
    assert "@everyone" not in outside
    # Exactly four fences: each reply opens and closes its own block.
    assert rendered.content.count(render.FENCE) == 4


def test_the_reply_text_is_all_there_and_readable() -> None:
    rendered = render.render_battle(_battle(BattleStatus.ANSWERED, a=MASKED_LINK, b=FAKE_HEADER))
    assert MASKED_LINK in rendered.content  # the link target shows as text
    assert "I am the better one." in rendered.content


def test_blank_lines_are_capped() -> None:
    rendered = render.render_battle(_battle(BattleStatus.ANSWERED, a=BLANK_LINES, b="\n\n\nx\n\n"))
    assert "top\n\nbottom" in rendered.content
    blocks = rendered.content.split(render.FENCE)[1::2]
    assert all("\n\n\n" not in block.strip("\n") for block in blocks)
    assert "```\nx\n```" in rendered.content


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\r\nb\rc", "a\nb\nc"),
        ("x\x00y\x1bz", "x y z"),
        ("``", "`\u200b`"),
        ("\n\n  \n\u200b\nhi\n\n\n\nthere\n\n", "hi\n\nthere"),
    ],
)
def test_contain(text: str, expected: str) -> None:
    assert render.contain(text) == expected


def test_no_backtick_run_survives() -> None:
    assert not re.search("``", render.contain("`" * 40 + "text" + "``` ```"))


def test_only_blank_or_zero_width_is_an_empty_reply() -> None:
    rendered = render.render_battle(_battle(BattleStatus.ANSWERED, a="\u200b\n \n", b="ok"))
    assert "*(empty reply)*" in rendered.content


def test_long_hostile_reply_is_cut_inside_its_block() -> None:
    long = ("``" + "**bold** " * 50 + "\n") * 30
    rendered = render.render_battle(_battle(BattleStatus.ANSWERED, a=long, b="short"))
    assert len(rendered.content) <= render.MESSAGE_LIMIT
    assert rendered.overflow == {"a": long}
    assert rendered.content.count(render.FENCE) == 4


def test_a_failed_side_does_not_hide_the_other_answer() -> None:
    # The first failure is shown at once; the other side, still answering, is not "empty".
    first = render.render_battle(_battle(BattleStatus.FAILED, b=None))
    assert "could not answer" in first.content
    assert "*listening…*" in first.content
    assert "(empty reply)" not in first.content
    # Its reply, coming later, is shown next to the failure.
    later = render.render_battle(_battle(BattleStatus.FAILED, a="Paris is the capital.", b=None))
    assert "Paris is the capital." in later.content
    assert later.content.startswith(render.failed_header())
