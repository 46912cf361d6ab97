"""The custom_ids the bot renders and the dev stack's driver clicks: built and parsed once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bot.discord_app import custom_ids as ids
from bot.discord_app import views


def test_builders_golden() -> None:
    assert ids.vote("b1x", "bothbad") == "parley:vote:b1x:bothbad"
    assert ids.comment("b1x") == "parley:comment:b1x"
    assert ids.join() == "parley:join"
    assert ids.consent("1.2", "agree") == "parley:consent:1.2:agree"
    assert ids.about("skip") == "parley:about:skip"
    assert ids.withdraw(123, "confirm") == "parley:withdraw:123:confirm"
    assert ids.mod_withdraw(123, 9, "cancel") == "parley:modwithdraw:123:9:cancel"
    assert ids.comment_modal("b1x", "0a1b2c3d") == "parley:commentmodal:b1x:0a1b2c3d"
    assert ids.demographics_modal("00ff00ff00ff") == "parley:demographics:00ff00ff00ff"


def test_parsers_invert_the_builders() -> None:
    assert ids.parse_vote(ids.vote("b1x", "tie")) == ids.Vote("b1x", "tie")
    assert ids.parse_comment(ids.comment("b1x")) == "b1x"
    assert ids.is_join(ids.join())
    assert ids.parse_consent(ids.consent("2", "decline")) == ids.Consent("2", "decline")
    assert ids.parse_about(ids.about("open")) == "open"
    assert ids.parse_withdraw(ids.withdraw("42", "cancel")) == ids.Withdraw(42, "cancel")
    assert ids.parse_mod_withdraw(ids.mod_withdraw(42, 7, "confirm")) == ids.ModWithdraw(
        42, 7, "confirm"
    )
    assert ids.parse_comment_modal(ids.comment_modal("b1x", "beef")) == "b1x"
    assert ids.is_demographics_modal(ids.demographics_modal("beef"))


@pytest.mark.parametrize(
    "custom_id",
    ["parley:vote:b1x:alpha", "parley:vote:b1x:a ", "parley:comment:", "parley:join:x", ""],
)
def test_parsers_refuse_what_the_bot_never_renders(custom_id: str) -> None:
    assert ids.parse_vote(custom_id) is None
    assert ids.parse_comment(custom_id) is None
    assert not ids.is_join(custom_id)


@pytest.mark.parametrize(
    ("build", "args"),
    [
        (ids.vote, ("b 1", "a")),
        (ids.vote, ("b1", "alpha")),
        (ids.comment, ("x" * 65,)),
        (ids.consent, ("1", "maybe")),
        (ids.about, ("delete",)),
        (ids.withdraw, (-1, "confirm")),
        (ids.mod_withdraw, (1, -2, "confirm")),
        (ids.comment_modal, ("b1", "xyz")),
    ],
)
def test_builders_refuse_ids_their_parser_would_not_take(
    build: Callable[..., str], args: tuple[Any, ...]
) -> None:
    with pytest.raises(ValueError, match="cannot build"):
        build(*args)


def test_the_dynamic_items_register_these_templates() -> None:
    templates = {
        item.__name__: item.__discord_ui_compiled_template__.pattern for item in views.DYNAMIC_ITEMS
    }
    assert templates == {
        "VoteButton": ids.VOTE_TEMPLATE,
        "CommentButton": ids.COMMENT_TEMPLATE,
        "LossReasonSelect": ids.LOSS_REASON_TEMPLATE,
        "VoiceReasonButton": ids.VOICE_REASON_TEMPLATE,
        "JoinButton": ids.JOIN_TEMPLATE,
        "ConsentButton": ids.CONSENT_TEMPLATE,
        "AboutYouButton": ids.ABOUT_TEMPLATE,
        "WithdrawButton": ids.WITHDRAW_TEMPLATE,
        "ModWithdrawButton": ids.MOD_WITHDRAW_TEMPLATE,
    }
