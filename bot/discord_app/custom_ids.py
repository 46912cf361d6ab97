"""Every custom_id the bot puts on a button or a form, built and parsed in one place.

Pure functions, no discord import: the views, the modals and the dev stack's `StudyDriver` (which
plays participants through the stand-in) all build ids here, so a click a test or the demo sends
is the very id the bot renders. Ids are namespaced `parley:<action>:...` and hold only opaque ids
(a battle id, a consent version, a user's own id), never a model's name.

The `*_TEMPLATE` regexes are what the `DynamicItem`s register; discord.py fullmatches them, and
so do the parsers here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NAMESPACE = "parley"

BATTLE_ID = r"[A-Za-z0-9_-]{1,64}"
CONSENT_VERSION = r"[A-Za-z0-9._-]{1,32}"
USER_ID = r"[0-9]{1,20}"  # not \d: that would take other scripts' digits too
CHOICES = ("a", "b", "tie", "bothbad")
CONSENT_ANSWERS = ("agree", "decline")
ABOUT_ACTIONS = ("open", "skip")
WITHDRAW_ACTIONS = ("confirm", "cancel")

VOTE_TEMPLATE = rf"{NAMESPACE}:vote:(?P<battle_id>{BATTLE_ID}):(?P<choice>{'|'.join(CHOICES)})"
COMMENT_TEMPLATE = rf"{NAMESPACE}:comment:(?P<battle_id>{BATTLE_ID})"
# After the vote: the select menu "why did the other one lose?" and "Say why (voice)".
LOSS_REASON_TEMPLATE = rf"{NAMESPACE}:loss:(?P<battle_id>{BATTLE_ID})"
VOICE_REASON_TEMPLATE = rf"{NAMESPACE}:voicereason:(?P<battle_id>{BATTLE_ID})"
JOIN_TEMPLATE = rf"{NAMESPACE}:join"
CONSENT_TEMPLATE = (
    rf"{NAMESPACE}:consent:(?P<version>{CONSENT_VERSION}):(?P<answer>{'|'.join(CONSENT_ANSWERS)})"
)
ABOUT_TEMPLATE = rf"{NAMESPACE}:about:(?P<action>{'|'.join(ABOUT_ACTIONS)})"
WITHDRAW_TEMPLATE = (
    rf"{NAMESPACE}:withdraw:(?P<user_id>{USER_ID}):(?P<action>{'|'.join(WITHDRAW_ACTIONS)})"
)
# A moderator's `/participant withdraw` confirmation: the member and the moderator who asked
# (only they may confirm it).
MOD_WITHDRAW_TEMPLATE = (
    rf"{NAMESPACE}:modwithdraw:(?P<member_id>{USER_ID}):(?P<moderator_id>{USER_ID}):"
    rf"(?P<action>{'|'.join(WITHDRAW_ACTIONS)})"
)
# Forms: the suffix makes each opening's id unique (discord.py keys open modals by id alone).
COMMENT_MODAL_TEMPLATE = (
    rf"{NAMESPACE}:commentmodal:(?P<battle_id>{BATTLE_ID}):(?P<nonce>[0-9a-f]+)"
)
DEMOGRAPHICS_MODAL_TEMPLATE = rf"{NAMESPACE}:demographics:(?P<nonce>[0-9a-f]+)"

# The text inputs inside the forms.
COMMENT_FIELD = "comment"
DEMOGRAPHICS_FIELDS = ("age_band", "gender", "first_language", "country")

VOTE_PREFIX = f"{NAMESPACE}:vote:"
JOIN = f"{NAMESPACE}:join"


def _checked(custom_id: str, template: str, what: str) -> str:
    """The id, once it parses back: a builder never makes an id its own parser refuses."""
    if re.fullmatch(template, custom_id) is None:
        raise ValueError(f"cannot build a {what} custom_id from these values: {custom_id!r}")
    return custom_id


def vote(battle_id: str, choice: str) -> str:
    return _checked(f"{NAMESPACE}:vote:{battle_id}:{choice}", VOTE_TEMPLATE, "vote")


def comment(battle_id: str) -> str:
    return _checked(f"{NAMESPACE}:comment:{battle_id}", COMMENT_TEMPLATE, "comment")


def loss_reason(battle_id: str) -> str:
    return _checked(f"{NAMESPACE}:loss:{battle_id}", LOSS_REASON_TEMPLATE, "loss reason")


def voice_reason(battle_id: str) -> str:
    return _checked(f"{NAMESPACE}:voicereason:{battle_id}", VOICE_REASON_TEMPLATE, "voice reason")


def join() -> str:
    return JOIN


def consent(version: str, answer: str) -> str:
    return _checked(f"{NAMESPACE}:consent:{version}:{answer}", CONSENT_TEMPLATE, "consent")


def about(action: str) -> str:
    return _checked(f"{NAMESPACE}:about:{action}", ABOUT_TEMPLATE, "about-you")


def withdraw(user_id: int | str, action: str) -> str:
    return _checked(f"{NAMESPACE}:withdraw:{user_id}:{action}", WITHDRAW_TEMPLATE, "withdraw")


def mod_withdraw(member_id: int | str, moderator_id: int | str, action: str) -> str:
    return _checked(
        f"{NAMESPACE}:modwithdraw:{member_id}:{moderator_id}:{action}",
        MOD_WITHDRAW_TEMPLATE,
        "moderator's withdrawal",
    )


def comment_modal(battle_id: str, nonce: str) -> str:
    return _checked(
        f"{NAMESPACE}:commentmodal:{battle_id}:{nonce}", COMMENT_MODAL_TEMPLATE, "comment form"
    )


def demographics_modal(nonce: str) -> str:
    return _checked(
        f"{NAMESPACE}:demographics:{nonce}", DEMOGRAPHICS_MODAL_TEMPLATE, "demographics form"
    )


@dataclass(frozen=True)
class Vote:
    battle_id: str
    choice: str


@dataclass(frozen=True)
class Consent:
    version: str
    answer: str


@dataclass(frozen=True)
class Withdraw:
    user_id: int
    action: str


@dataclass(frozen=True)
class ModWithdraw:
    member_id: int
    moderator_id: int
    action: str


def _match(template: str, custom_id: str) -> re.Match[str] | None:
    return re.fullmatch(template, custom_id)


def parse_vote(custom_id: str) -> Vote | None:
    found = _match(VOTE_TEMPLATE, custom_id)
    return Vote(found["battle_id"], found["choice"]) if found else None


def parse_comment(custom_id: str) -> str | None:
    """The battle id of a comment button's id."""
    found = _match(COMMENT_TEMPLATE, custom_id)
    return found["battle_id"] if found else None


def is_join(custom_id: str) -> bool:
    return _match(JOIN_TEMPLATE, custom_id) is not None


def parse_consent(custom_id: str) -> Consent | None:
    found = _match(CONSENT_TEMPLATE, custom_id)
    return Consent(found["version"], found["answer"]) if found else None


def parse_about(custom_id: str) -> str | None:
    """The action (`open` or `skip`) of an about-you button's id."""
    found = _match(ABOUT_TEMPLATE, custom_id)
    return found["action"] if found else None


def parse_withdraw(custom_id: str) -> Withdraw | None:
    found = _match(WITHDRAW_TEMPLATE, custom_id)
    return Withdraw(int(found["user_id"]), found["action"]) if found else None


def parse_mod_withdraw(custom_id: str) -> ModWithdraw | None:
    found = _match(MOD_WITHDRAW_TEMPLATE, custom_id)
    if not found:
        return None
    return ModWithdraw(int(found["member_id"]), int(found["moderator_id"]), found["action"])


def parse_comment_modal(custom_id: str) -> str | None:
    """The battle id of a comment form's id."""
    found = _match(COMMENT_MODAL_TEMPLATE, custom_id)
    return found["battle_id"] if found else None


def is_demographics_modal(custom_id: str) -> bool:
    return _match(DEMOGRAPHICS_MODAL_TEMPLATE, custom_id) is not None
