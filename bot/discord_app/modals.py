"""The two forms: a comment on a battle, and the optional demographics after consent."""

from __future__ import annotations

import logging
import secrets
import weakref
from typing import TYPE_CHECKING

import discord
from redis.exceptions import RedisError

from bot.discord_app import custom_ids
from contract.records import Demographics, Refused

if TYPE_CHECKING:
    from bot.discord_app.app import ParleyBot

log = logging.getLogger(__name__)

# Discord caps a text input at 4,000 characters; the study's own limit is usually lower.
DISCORD_TEXT_INPUT_MAX = 4000

# The forms this process opened, by custom_id, while they live: a submit whose form is not
# here (or finished) has no handler in discord.py and is answered by views.answer_unhandled.
OPEN_FORMS: weakref.WeakValueDictionary[str, discord.ui.Modal] = weakref.WeakValueDictionary()


def has_open_form(custom_id: str) -> bool:
    form = OPEN_FORMS.get(custom_id)
    return form is not None and not form.is_finished()


async def _on_error(interaction: discord.Interaction, error: Exception) -> None:
    from bot.discord_app.views import STORAGE_DOWN, tell

    if isinstance(error, RedisError):
        log.error("Redis error in a form: %s", error)
        await tell(interaction, STORAGE_DOWN)
        return
    log.error("a form failed", exc_info=error)
    await tell(interaction, "Sorry, something went wrong on our side; nothing was saved.")


class CommentModal(discord.ui.Modal, title="Add a comment"):
    def __init__(self, battle_id: str, *, max_chars: int) -> None:
        # Unique per opening (see DemographicsModal): two clicks on "Add a comment" must not
        # leave one modal answering for the other.
        super().__init__(
            custom_id=custom_ids.comment_modal(battle_id, secrets.token_hex(4)), timeout=15 * 60
        )
        OPEN_FORMS[self.custom_id] = self
        self.battle_id = battle_id
        self.max_chars = max_chars
        self.text: discord.ui.TextInput[CommentModal] = discord.ui.TextInput(
            label="Why did you vote as you did?",
            custom_id=custom_ids.COMMENT_FIELD,
            style=discord.TextStyle.paragraph,
            placeholder="e.g. A understood my accent; B ignored half the question.",
            required=True,
            max_length=min(max_chars, DISCORD_TEXT_INPUT_MAX),
        )
        self.add_item(self.text)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        bot: ParleyBot = interaction.client  # type: ignore[assignment]
        # The Discord client enforces these bounds; a raw interaction need not, so check again.
        text = (self.text.value or "").strip()
        if not text:
            await interaction.response.send_message(
                "Your comment was empty, so nothing was saved.", ephemeral=True
            )
            return
        if len(text) > self.max_chars:
            await interaction.response.send_message(
                f"Your comment has {len(text):,} characters; the limit is {self.max_chars:,}. "
                "Nothing was saved — please shorten it and try again.",
                ephemeral=True,
            )
            return
        try:
            await bot.study.comment(interaction.user.id, self.battle_id, text)
        except Refused as refused:
            await interaction.response.send_message(refused.message, ephemeral=True)
            return
        await interaction.response.send_message("Thanks — your comment was saved.", ephemeral=True)

    async def on_error(self, interaction: discord.Interaction, error: Exception) -> None:
        await _on_error(interaction, error)


class DemographicsModal(discord.ui.Modal, title="About you (all optional)"):
    age_band: discord.ui.TextInput[DemographicsModal] = discord.ui.TextInput(
        label="Age band",
        custom_id="age_band",
        placeholder="e.g. 18-24, 25-34, 35-44 …",
        required=False,
        max_length=20,
    )
    gender: discord.ui.TextInput[DemographicsModal] = discord.ui.TextInput(
        label="Gender", custom_id="gender", required=False, max_length=40
    )
    first_language: discord.ui.TextInput[DemographicsModal] = discord.ui.TextInput(
        label="First language", custom_id="first_language", required=False, max_length=40
    )
    country: discord.ui.TextInput[DemographicsModal] = discord.ui.TextInput(
        label="Country you live in", custom_id="country", required=False, max_length=60
    )

    def __init__(self) -> None:
        # discord.py keys open modals by custom_id alone: a fixed id would let one participant's
        # form replace another's while both are open. The suffix is random, never a user id.
        super().__init__(
            custom_id=custom_ids.demographics_modal(secrets.token_hex(6)), timeout=30 * 60
        )
        OPEN_FORMS[self.custom_id] = self

    async def on_submit(self, interaction: discord.Interaction) -> None:
        bot: ParleyBot = interaction.client  # type: ignore[assignment]

        def value(field: discord.ui.TextInput[DemographicsModal]) -> str | None:
            text = (field.value or "").strip()
            return text[: field.max_length or 60] or None

        demographics = Demographics(
            age_band=value(self.age_band),
            gender=value(self.gender),
            first_language=value(self.first_language),
            country=value(self.country),
        )
        try:
            await bot.study.set_demographics(interaction.user.id, demographics)
        except Refused as refused:
            await interaction.response.send_message(refused.message, ephemeral=True)
            return
        await bot.flow.show_instructions(interaction, edit=False)

    async def on_error(self, interaction: discord.Interaction, error: Exception) -> None:
        await _on_error(interaction, error)
