"""The two forms: a comment on a battle, and the optional demographics after consent."""

from __future__ import annotations

import logging
import secrets
import weakref

import discord
from redis.exceptions import RedisError

from bot.discord_app import custom_ids
from bot.discord_app.client import parley
from bot.discord_app.common import STORAGE_DOWN, tell
from bot.service.outcomes import CommentSaved, CommentTooLong, EmptyComment, Refusal
from contract.records import Demographics

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
        outcome = await parley(interaction).service.battles.comment(
            interaction.user.id, self.battle_id, self.text.value or "", max_chars=self.max_chars
        )
        match outcome:
            case EmptyComment():
                text = "Your comment was empty, so nothing was saved."
            case CommentTooLong(length=length, limit=limit):
                text = (
                    f"Your comment has {length:,} characters; the limit is {limit:,}. "
                    "Nothing was saved — please shorten it and try again."
                )
            case Refusal(message=message):
                text = message
            case CommentSaved():
                text = "Thanks — your comment was saved."
        await interaction.response.send_message(text, ephemeral=True)

    # discord.py's Modal.on_error drops the `item` parameter of BaseView.on_error, which it
    # overrides; this is Modal's own signature.
    async def on_error(  # type: ignore[override]  # discord.py's own Modal signature (above)
        self, interaction: discord.Interaction, error: Exception
    ) -> None:
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
        bot = parley(interaction)

        def value(field: discord.ui.TextInput[DemographicsModal]) -> str | None:
            text = (field.value or "").strip()
            return text[: field.max_length or 60] or None

        demographics = Demographics(
            age_band=value(self.age_band),
            gender=value(self.gender),
            first_language=value(self.first_language),
            country=value(self.country),
        )
        saved = await bot.service.participants.tell_about_you(interaction.user.id, demographics)
        if isinstance(saved, Refusal):
            await interaction.response.send_message(saved.message, ephemeral=True)
            return
        await bot.threads.show_instructions(interaction, edit=False)

    # discord.py's Modal.on_error drops the `item` parameter of BaseView.on_error, which it
    # overrides; this is Modal's own signature.
    async def on_error(  # type: ignore[override]  # discord.py's own Modal signature (above)
        self, interaction: discord.Interaction, error: Exception
    ) -> None:
        await _on_error(interaction, error)
