"""Buttons that keep working after a restart: `DynamicItem`s whose custom_id carries the state.

Every custom_id is namespaced `parley:<action>:...` and holds only opaque ids (a battle id, a
consent version, a user's own id), never a model's name. The truth lives in Redis: a callback
re-reads it through the study core, so a click on an old message after a restart, or a second
click, meets the same rules as the first.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import discord

from bot.discord_app import custom_ids, modals, render
from bot.discord_app.checks import is_moderator_member
from bot.discord_app.client import parley
from bot.discord_app.common import NO_MENTIONS, polite, tell
from bot.service.outcomes import (
    Agreed,
    CommentForm,
    ConsentChanged,
    NoSuchBattle,
    NotYourBattle,
    Refusal,
    Reveal,
)
from contract.records import Battle, Winner

log = logging.getLogger(__name__)


def on_own_form(interaction: discord.Interaction) -> bool:
    """Whether a click on a form button (consent, about-you, withdrawal) came from the
    ephemeral form that carries it. A modified client can send such a click with any message
    (a battle message, the pinned post): that message must never be rewritten."""
    message = interaction.message
    return message is not None and message.flags.ephemeral


async def answer_form(
    interaction: discord.Interaction, content: str, view: discord.ui.View | None = None
) -> None:
    """Replace the form the click came from with `content` (and `view`); for a click forged
    onto another message, answer the clicker alone and leave that message as it is."""
    if on_own_form(interaction):
        await interaction.response.edit_message(
            content=content, embed=None, view=view, allowed_mentions=NO_MENTIONS
        )
    elif view is None:
        await tell(interaction, content)
    else:
        await interaction.response.send_message(
            content, view=view, ephemeral=True, allowed_mentions=NO_MENTIONS
        )


class VoteButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=custom_ids.VOTE_TEMPLATE,
):
    def __init__(self, battle_id: str, choice: str, *, disabled: bool = False) -> None:
        style = (
            discord.ButtonStyle.primary if choice in ("a", "b") else discord.ButtonStyle.secondary
        )
        super().__init__(
            discord.ui.Button(
                label=render.CHOICE_LABELS[choice],
                style=style,
                custom_id=custom_ids.vote(battle_id, choice),
                disabled=disabled,
                row=0,
            )
        )
        self.battle_id = battle_id
        self.choice = choice

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> VoteButton:
        return cls(match["battle_id"], match["choice"])

    @polite
    async def callback(self, interaction: discord.Interaction) -> None:
        outcome = await parley(interaction).service.battles.vote(
            interaction.user.id, self.battle_id, render.CHOICES[self.choice]
        )
        if isinstance(outcome, Refusal):
            await tell(interaction, outcome.message)
            if outcome.code == "already_voted":
                await show_reveal(interaction, self.battle_id)
            return
        rendered = _reveal_message(outcome)
        if not _carries_battle(interaction.message, self.battle_id):
            # A click forged onto another message: the vote stands, that message stays.
            await tell(interaction, rendered.content[:2000])
            return
        await interaction.response.edit_message(
            content=rendered.content,
            view=revealed_view(outcome.battle, voice_reason=_has_asr(interaction)),
            allowed_mentions=NO_MENTIONS,
        )


def _has_asr(interaction: discord.Interaction) -> bool:
    """Voice reasons need the study's ASR (the models file's `asr_model`)."""
    return parley(interaction).service.deps.models.asr_model is not None


def _reveal_message(reveal: Reveal) -> render.RenderedBattle:
    return render.render_battle(reveal.battle, names=reveal.names, remaining=reveal.remaining)


def _carries_battle(message: discord.Message | None, battle_id: str) -> bool:
    """Whether the message shows this battle's vote buttons (enabled or not)."""
    return message is not None and any(
        isinstance(item, discord.Button)
        and (vote := custom_ids.parse_vote(item.custom_id or "")) is not None
        and vote.battle_id == battle_id
        for row in message.components
        if isinstance(row, discord.ActionRow)
        for item in row.children
    )


def _votes_open(message: discord.Message) -> bool:
    return any(
        isinstance(item, discord.Button)
        and custom_ids.parse_vote(item.custom_id or "") is not None
        and not item.disabled
        for row in message.components
        if isinstance(row, discord.ActionRow)
        for item in row.children
    )


async def show_reveal(interaction: discord.Interaction, battle_id: str) -> None:
    """Put the reveal on a voted battle's message that still offers the vote buttons.

    The bot can die after `study.vote` recorded a click and before the click's answer edited
    the message; after a restart the message still asks for a vote. The participant's repeat
    click is told "already voted" and, through this, sees the reveal of the vote that stands.
    """
    message = interaction.message
    if message is None or not _votes_open(message):
        return
    reveal = await parley(interaction).service.battles.reveal(interaction.user.id, battle_id)
    if reveal is None:
        return
    rendered = _reveal_message(reveal)
    try:
        await message.edit(
            content=rendered.content,
            view=revealed_view(reveal.battle, voice_reason=_has_asr(interaction)),
            allowed_mentions=NO_MENTIONS,
        )
    except discord.HTTPException as exc:
        log.warning("could not show the reveal of battle %s: %s", battle_id, exc)


class CommentButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=custom_ids.COMMENT_TEMPLATE,
):
    def __init__(self, battle_id: str, *, disabled: bool = False) -> None:
        super().__init__(
            discord.ui.Button(
                label="Add a comment",
                emoji="💬",
                style=discord.ButtonStyle.secondary,
                custom_id=custom_ids.comment(battle_id),
                disabled=disabled,
                row=1,
            )
        )
        self.battle_id = battle_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> CommentButton:
        return cls(match["battle_id"])

    @polite
    async def callback(self, interaction: discord.Interaction) -> None:
        opened = await parley(interaction).service.battles.open_comment(
            interaction.user.id, self.battle_id
        )
        match opened:
            case NoSuchBattle():
                await tell(interaction, "Sorry, I can't find that round any more.")
            case NotYourBattle():
                await tell(
                    interaction, "This is not your battle — you can only comment on your own."
                )
            case CommentForm(battle_id=battle_id, max_chars=max_chars):
                await interaction.response.send_modal(
                    modals.CommentModal(battle_id, max_chars=max_chars)
                )


class LossReasonSelect(
    discord.ui.DynamicItem[discord.ui.Select[Any]],
    template=custom_ids.LOSS_REASON_TEMPLATE,
):
    """After the vote, optional: why the loser lost (Talk Arena / Voice Showdown's reasons)."""

    def __init__(self, battle_id: str, placeholder: str = "Optional: why did it lose?") -> None:
        super().__init__(
            discord.ui.Select(
                custom_id=custom_ids.loss_reason(battle_id),
                placeholder=placeholder,
                options=[
                    discord.SelectOption(label=label, value=value)
                    for value, label in render.LOSS_REASON_LABELS.items()
                ],
                min_values=1,
                max_values=1,
                row=2,
            )
        )
        self.battle_id = battle_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> LossReasonSelect:
        return cls(match["battle_id"])

    @polite
    async def callback(self, interaction: discord.Interaction) -> None:
        # discord.py fills the select's values from the interaction before calling back.
        values = self.item.values
        outcome = await parley(interaction).service.battles.loss_reason(
            interaction.user.id, self.battle_id, str(values[0]) if values else ""
        )
        if isinstance(outcome, Refusal):
            await tell(interaction, outcome.message)
            return
        label = render.LOSS_REASON_LABELS[outcome.reason]
        await tell(interaction, f"Thanks — Noted: “{label}”.")


class VoiceReasonButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=custom_ids.VOICE_REASON_TEMPLATE,
):
    """After the vote: the participant's next voice message here is the reason for it."""

    def __init__(self, battle_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Say why (voice)",
                emoji="🎙️",
                style=discord.ButtonStyle.secondary,
                custom_id=custom_ids.voice_reason(battle_id),
                row=1,
            )
        )
        self.battle_id = battle_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> VoiceReasonButton:
        return cls(match["battle_id"])

    @polite
    async def callback(self, interaction: discord.Interaction) -> None:
        place = str(interaction.channel_id)
        outcome = await parley(interaction).service.battles.await_voice_reason(
            interaction.user.id, self.battle_id, place
        )
        if isinstance(outcome, Refusal):
            await tell(interaction, outcome.message)
            return
        await tell(interaction, render.awaiting_voice_reason(outcome.minutes))


def revealed_view(battle: Battle, *, voice_reason: bool = True) -> discord.ui.View:
    """The voted battle's buttons: comment, "Say why (voice)" and, unless it was a tie, the
    optional select menu asking why the loser lost."""
    view = battle_view(battle.battle_id, votes=False)
    if voice_reason:
        view.add_item(VoiceReasonButton(battle.battle_id))
    if battle.winner is not None and battle.winner is not Winner.TIE:
        view.add_item(LossReasonSelect(battle.battle_id, render.loss_question(battle)))
    return view


def battle_view(battle_id: str, *, votes: bool = True, comment: bool = True) -> discord.ui.View:
    """Vote buttons plus "Add a comment"; disabled ones show where they will be (before the
    replies are in) or that the vote is done (the comment stays open after the vote)."""
    view = discord.ui.View(timeout=None)
    for choice in ("a", "b", "tie", "bothbad"):
        view.add_item(VoteButton(battle_id, choice, disabled=not votes))
    view.add_item(CommentButton(battle_id, disabled=not comment))
    return view


class JoinButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=custom_ids.JOIN_TEMPLATE):
    """The button on the pinned study message (`/study post`); same as `/join`."""

    def __init__(self) -> None:
        super().__init__(
            discord.ui.Button(
                label="Join the study",
                style=discord.ButtonStyle.success,
                custom_id=custom_ids.join(),
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> JoinButton:
        return cls()

    @polite
    async def callback(self, interaction: discord.Interaction) -> None:
        await start_join(interaction)


class ConsentButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=custom_ids.CONSENT_TEMPLATE,
):
    def __init__(self, version: str, answer: str) -> None:
        agree = answer == "agree"
        super().__init__(
            discord.ui.Button(
                label="I agree" if agree else "No thanks",
                style=discord.ButtonStyle.success if agree else discord.ButtonStyle.secondary,
                custom_id=custom_ids.consent(version, answer),
            )
        )
        self.version = version
        self.answer = answer

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> ConsentButton:
        return cls(match["version"], match["answer"])

    @polite
    async def callback(self, interaction: discord.Interaction) -> None:
        if self.answer == "agree":
            await agree(interaction, self.version)
        else:
            await answer_form(
                interaction, "No problem — nothing was stored. You can `/join` any time."
            )


def consent_view(version: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(ConsentButton(version, "agree"))
    view.add_item(ConsentButton(version, "decline"))
    return view


class AboutYouButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=custom_ids.ABOUT_TEMPLATE
):
    """After consent: the optional demographics form, or skip straight to the instructions."""

    def __init__(self, action: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Tell us about you (optional)" if action == "open" else "Skip",
                style=discord.ButtonStyle.primary
                if action == "open"
                else discord.ButtonStyle.secondary,
                custom_id=custom_ids.about(action),
            )
        )
        self.action = action

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> AboutYouButton:
        return cls(match["action"])

    @polite
    async def callback(self, interaction: discord.Interaction) -> None:
        if self.action == "open":
            await interaction.response.send_modal(modals.DemographicsModal())
        else:
            await parley(interaction).threads.show_instructions(
                interaction, edit=on_own_form(interaction)
            )


def about_you_view() -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(AboutYouButton("open"))
    view.add_item(AboutYouButton("skip"))
    return view


class WithdrawButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=custom_ids.WITHDRAW_TEMPLATE,
):
    """`/withdraw`'s confirmation. The user id in it only checks who clicked; it is theirs."""

    def __init__(self, user_id: int, action: str) -> None:
        confirm = action == "confirm"
        super().__init__(
            discord.ui.Button(
                label="Yes, delete my data" if confirm else "Cancel",
                style=discord.ButtonStyle.danger if confirm else discord.ButtonStyle.secondary,
                custom_id=custom_ids.withdraw(user_id, action),
            )
        )
        self.user_id = user_id
        self.action = action

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> WithdrawButton:
        return cls(int(match["user_id"]), match["action"])

    @polite
    async def callback(self, interaction: discord.Interaction) -> None:
        if interaction.user.id != self.user_id:
            await tell(interaction, "This button is someone else's — use `/withdraw` yourself.")
            return
        if self.action == "cancel":
            await answer_form(interaction, "Nothing was deleted. Thanks for staying!")
            return
        await withdraw(interaction)


class ModWithdrawButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=custom_ids.MOD_WITHDRAW_TEMPLATE,
):
    """`/participant withdraw`'s confirmation, for the moderator who asked."""

    def __init__(self, member_id: int, moderator_id: int, action: str) -> None:
        confirm = action == "confirm"
        super().__init__(
            discord.ui.Button(
                label="Yes, withdraw them" if confirm else "Cancel",
                style=discord.ButtonStyle.danger if confirm else discord.ButtonStyle.secondary,
                custom_id=custom_ids.mod_withdraw(member_id, moderator_id, action),
            )
        )
        self.member_id = member_id
        self.moderator_id = moderator_id
        self.action = action

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> ModWithdrawButton:
        return cls(int(match["member_id"]), int(match["moderator_id"]), match["action"])

    @polite
    async def callback(self, interaction: discord.Interaction) -> None:
        bot = parley(interaction)
        if interaction.user.id != self.moderator_id or not is_moderator_member(
            interaction.user, bot.settings.moderator_role
        ):
            await tell(interaction, "Only the moderator who asked can confirm this withdrawal.")
            return
        if self.action == "cancel":
            await answer_form(interaction, "Nothing was deleted.")
            return
        outcome = await bot.service.moderation.withdraw(self.member_id, self.moderator_id)
        if isinstance(outcome, Refusal):
            await answer_form(interaction, outcome.message)
            return
        await answer_form(interaction, f"Participant `{outcome.pseudonym}` was withdrawn.")
        bot.threads.close_later(outcome.thread_id, self.member_id)


def mod_withdraw_view(member_id: int, moderator_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(ModWithdrawButton(member_id, moderator_id, "confirm"))
    view.add_item(ModWithdrawButton(member_id, moderator_id, "cancel"))
    return view


def withdraw_view(user_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(WithdrawButton(user_id, "confirm"))
    view.add_item(WithdrawButton(user_id, "cancel"))
    return view


def join_view() -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(JoinButton())
    return view


# --- the participant's flows that these buttons and the slash commands share --------------


async def start_join(interaction: discord.Interaction) -> None:
    """`/join` and the Join button: the consent form, or the instructions for someone who
    already agreed to the current version."""
    bot = parley(interaction)
    step = await bot.service.participants.join_start(interaction.user.id)
    if not step.needs_consent:
        await bot.threads.show_instructions(interaction, edit=False)
        return
    embed = discord.Embed(
        title=render.consent_title(step.version),
        description=bot.consent_text[:4096],
        colour=discord.Colour.blurple(),
    )
    await interaction.response.send_message(
        embed=embed, view=consent_view(step.version), ephemeral=True
    )


async def agree(interaction: discord.Interaction, version: str) -> None:
    bot = parley(interaction)
    outcome = await bot.service.participants.agree(interaction.user.id, version)
    match outcome:
        case ConsentChanged():
            await answer_form(
                interaction,
                "The consent form has changed since this was shown; please read the "
                "new version (use `/join`).",
            )
        case Refusal(message=message):
            await answer_form(interaction, message)
        case Agreed():
            await answer_form(
                interaction,
                "Thank you for joining! If you like, tell us a little about yourself "
                "(every field is optional) — or skip straight to the instructions.",
                about_you_view(),
            )
            if interaction.guild is not None:
                # Open the thread while the participant reads the form, not when they close it.
                bot.threads.open_soon(interaction.guild, interaction.user)


async def withdraw(interaction: discord.Interaction) -> None:
    """The confirmed `/withdraw`."""
    bot = parley(interaction)
    withdrawn = await bot.service.participants.withdraw(interaction.user.id)
    if isinstance(withdrawn, Refusal):
        await answer_form(interaction, withdrawn.message)
        return
    await answer_form(
        interaction,
        "Done — your data was deleted and you have left the study. Thank you for "
        "your help! (Voice messages you sent me in DMs stay in your own DM history; you can "
        "delete them there.)",
    )
    # After the answer: the confirmation may sit in the very thread being closed.
    bot.threads.close_later(withdrawn.thread_id, interaction.user.id)


DYNAMIC_ITEMS: tuple[type[discord.ui.DynamicItem[Any]], ...] = (
    VoteButton,
    CommentButton,
    LossReasonSelect,
    VoiceReasonButton,
    JoinButton,
    ConsentButton,
    AboutYouButton,
    WithdrawButton,
    ModWithdrawButton,
)

UNKNOWN_BUTTON = (
    "Sorry — that button doesn't work (any more). Nothing was changed; use `/join` or send a "
    "new voice message to carry on."
)
EXPIRED_FORM = "Sorry — that form has expired, so nothing was saved. Please open it again."


def _custom_id(interaction: discord.Interaction) -> str:
    data = interaction.data
    return str(data.get("custom_id", "")) if data is not None else ""


def takes_click(interaction: discord.Interaction) -> bool:
    """Whether a dynamic item will answer this click. discord.py runs one only when its
    template fullmatches the custom_id and the message carries that custom_id; anything else
    (a button from an older version of the bot, a forged payload) it drops without an answer."""
    custom_id = _custom_id(interaction)
    if not any(
        item.__discord_ui_compiled_template__.fullmatch(custom_id) for item in DYNAMIC_ITEMS
    ):
        return False
    message = interaction.message
    if message is None:
        return False
    view_cls = discord.ui.LayoutView if message.flags.components_v2 else discord.ui.View
    view = view_cls.from_message(message, timeout=None)
    return any(getattr(item, "custom_id", None) == custom_id for item in view.walk_children())


async def answer_unhandled(interaction: discord.Interaction) -> None:
    """Politely answer a click or form submit that no handler takes, instead of leaving the
    user with Discord's "This interaction failed"."""
    if interaction.type is discord.InteractionType.component:
        if takes_click(interaction):
            return
        text = UNKNOWN_BUTTON
    elif interaction.type is discord.InteractionType.modal_submit:
        # Open forms live in this process's memory only (a restart forgets them). A form still
        # open here is being handled now (discord.py stops it only after its on_submit).
        custom_id = _custom_id(interaction)
        if modals.has_open_form(custom_id) or interaction.response.is_done():
            return
        text = EXPIRED_FORM
    else:
        return
    log.info("answered an unhandled %s interaction", interaction.type.name)
    try:
        await tell(interaction, text)
    except discord.HTTPException as exc:
        # The form's handler answered at the very last moment: nothing more to say.
        log.info("could not answer an unhandled interaction: %s", exc)
