"""`StudyDriver`: plays the study's participants and moderators through the Discord stand-in.

The one way the demo, the load benchmark and the e2e and reliability tests act as people:

    driver = StudyDriver(stack)
    mod = await driver.open_study()                      # roster alpha, beta; no rate limit
    user, thread = await driver.join("bea")              # /join, agree, skip the form
    message, battle_id = await driver.battle(user, thread, voice_ogg)
    await driver.comment(user, message, battle_id, "A understood my accent.")
    voted = await driver.vote(user, message, battle_id, "a")
    text = await driver.moderate(mod, "export")          # what the moderator reads
    await driver.withdraw(user)

Every custom_id is built with the bot's own `bot.discord_app.custom_ids`, so a click here is the
very id the bot renders. Waiting is done here too (the bot's answer to an interaction, its
reply to a message, a battle's vote buttons); `devstack.helpers` holds the plain readers
(texts, buttons, replies) it and the tests share.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from bot.discord_app import custom_ids as ids
from devstack.harness import MODERATOR_ROLE, Stack
from devstack.helpers import (
    DEFERRED,
    MODAL,
    answered_battle,
    buttons,
    custom_ids,
    everything,
    reply_to,
    texts,
)
from devstack.standin.interactions import (
    BUTTON,
    MESSAGE_COMPONENT,
    MODAL_SUBMIT,
    Interaction,
    Response,
    modal_submit_components,
)
from devstack.standin.server import StandIn
from devstack.standin.state import Channel, User
from devstack.standin.voice import VoiceClip

T = TypeVar("T")
Message = Mapping[str, Any]

# discord.py keeps a form it showed only once Discord's answer to showing it came back, a few
# milliseconds after the stand-in saw it; a person takes far longer to fill it in.
FORM_READY_S = 0.2
VOICE_SECONDS = 2.0  # the duration a voice message given as bare Ogg bytes claims


class StudyDriver:
    """Acts as participants and moderators on a running `Stack`.

    `timeout`: how long to wait for the bot's answer to an interaction or message (raise it on a
    loaded machine); `poll_s`: how often waits look (hundreds of concurrent waiters want more
    than the stand-in's 10 ms).
    """

    def __init__(self, stack: Stack, *, timeout: float = 10.0, poll_s: float = 0.01) -> None:
        if timeout <= 0 or poll_s <= 0:
            raise ValueError(f"timeout and poll_s must be positive, not {timeout}, {poll_s}")
        self.stack = stack
        self.timeout = timeout
        self.poll_s = poll_s

    @property
    def standin(self) -> StandIn:
        return self.stack.standin

    # -- waiting ------------------------------------------------------------------------------

    async def wait_for(
        self, predicate: Callable[[], T | None], *, timeout: float | None = None, what: str
    ) -> T:
        """Poll `predicate` until it returns something truthy, and return that."""
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while True:
            found = predicate()
            if found:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {limit} s waiting for {what}")
            await asyncio.sleep(self.poll_s)

    async def answer(self, interaction: Interaction, *, timeout: float | None = None) -> Response:
        """The bot's answer to an interaction (the callback, original message and followups)."""
        limit = self.timeout if timeout is None else timeout
        return await self.standin.wait_for_response(interaction, timeout=limit)

    async def wait_reply(
        self, channel: Channel | str, message: Message, *, timeout: float | None = None
    ) -> dict[str, Any]:
        """The bot's first reply to `message`."""
        found = await self.wait_for(
            lambda: reply_to(self.stack, channel, message),
            timeout=timeout,
            what=f"the bot's reply to message {message['id']}",
        )
        return found[0]

    async def wait_content(
        self, message_id: str, needle: str, *, timeout: float = 20.0
    ) -> dict[str, Any]:
        """Wait until the message's content contains `needle`; returns the message."""

        def found() -> dict[str, Any] | None:
            message = self.standin.message(message_id)
            return message if needle in (message.get("content") or "") else None

        return await self.wait_for(
            found, timeout=timeout, what=f"{needle!r} in message {message_id}"
        )

    async def wait_buttons(
        self, message_id: str, *, timeout: float | None = None
    ) -> dict[str, Any]:
        """Wait until a message carries buttons (enabled or not); returns the message."""

        def found() -> dict[str, Any] | None:
            message = self.standin.message(message_id)
            return message if buttons(message) else None

        return await self.wait_for(found, timeout=timeout, what=f"buttons on {message_id}")

    async def wait_vote_buttons(self, message_id: str, *, timeout: float = 30.0) -> str:
        """Wait for enabled vote buttons on a battle message; returns the battle id."""
        return await self.wait_for(
            lambda: answered_battle(self.standin.message(message_id)),
            timeout=timeout,
            what=f"vote buttons on message {message_id}",
        )

    # -- commands -----------------------------------------------------------------------------

    async def command(
        self,
        user: User,
        name: str,
        subcommand: str | None = None,
        *,
        options: Mapping[str, Any] | None = None,
        channel: Channel | str | None = None,
        timeout: float | None = None,
    ) -> Response:
        """Run a slash command; the answer the user finally reads (the followup after a
        deferral)."""
        interaction = await self.standin.slash_command(
            user, name, subcommand=subcommand, options=options, channel=channel
        )
        response = await self.answer(interaction, timeout=timeout)
        if response.type == DEFERRED and not response.followups:
            limit = max(self.timeout if timeout is None else timeout, 15.0)
            response = await self.standin.wait_for_followups(interaction, timeout=limit)
        return response

    def read(self, response: Response) -> str:
        """Everything the user reads in an answer: texts, embeds and attached files."""
        return everything(self.stack, response)

    async def moderator(self, name: str = "mod") -> User:
        """A new member with the moderator role."""
        return await self.standin.add_member(name, roles=[MODERATOR_ROLE])

    async def moderate(
        self, mod: User, subcommand: str, *, group: str = "study", **options: Any
    ) -> str:
        """Run `/<group> <subcommand>` (default `/study`) as `mod`; returns what they read."""
        return self.read(await self.command(mod, group, subcommand, options=options))

    async def open_study(
        self,
        name: str = "mod",
        *,
        roster: str = "alpha, beta",
        min_seconds_between: int = 0,
        **limits: int,
    ) -> User:
        """A moderator who set the roster and the limits (no wait between battles)."""
        mod = await self.moderator(name)
        said = await self.moderate(mod, "models", roster=roster)
        first = roster.split(",")[0].strip()
        if first not in said:
            raise RuntimeError(f"setting the roster to {roster!r} failed: {said!r}")
        options: dict[str, Any] = {"min_seconds_between": min_seconds_between, **limits}
        said = await self.moderate(mod, "limits", **options)
        if f"{min_seconds_between} s between" not in said:
            raise RuntimeError(f"setting the limits failed: {said!r}")
        return mod

    # -- joining ------------------------------------------------------------------------------

    async def consent_form(self, user: User) -> Response:
        """`/join`: the consent form (or, for someone already in, the instructions)."""
        return await self.command(user, "join")

    async def consent(
        self, user: User, form: Response, answer: str = "agree", *, version: str | None = None
    ) -> Response:
        """Click `answer` on the consent form, for the version it offers (or `version`)."""
        if form.original is None:
            raise ValueError(f"no consent form to answer: {texts(form)!r}")
        if version is None:
            offered = [c for c in map(ids.parse_consent, custom_ids(form.original)) if c]
            if not offered:
                raise RuntimeError(f"no consent buttons in the answer to /join: {texts(form)!r}")
            version = offered[0].version
        click = await self.standin.click(user, form.original, ids.consent(version, answer))
        return await self.answer(click)

    async def about_you(
        self, user: User, message: Message, about: Mapping[str, str] | None = None
    ) -> Response:
        """After consent: fill the optional form with `about`, or skip it (None); returns the
        instructions the participant reads."""
        if about is None:
            return await self.answer(await self.standin.click(user, message, ids.about("skip")))
        opened = await self.open_form(user, message, ids.about("open"))
        return await self.answer(await self.standin.submit_modal(user, opened, about))

    async def consented(self, name: str) -> User:
        """A new member who ran /join and agreed, and left the optional form alone."""
        user = await self.standin.add_member(name)
        await self.consent(user, await self.consent_form(user))
        return user

    async def join(
        self, name: str, *, about: Mapping[str, str] | None = None
    ) -> tuple[User, Channel]:
        """A new member who ran /join, agreed and filled the form with `about` (or skipped
        it); returns them and their private thread."""
        user = await self.standin.add_member(name)
        form = await self.consent_form(user)
        agreed = await self.consent(user, form)
        done = await self.about_you(user, agreed.original or form.original or {}, about)
        if "How it works" not in texts(done):
            raise RuntimeError(f"{name} could not join: {texts(done)!r}")
        return user, self.thread_of(user)

    def thread_of(self, user: User) -> Channel:
        """The participant's one private thread in the study channel."""
        threads = [t for t in self.standin.threads() if user.id in t.member_ids]
        if len(threads) != 1:
            raise RuntimeError(f"{user.username} should have one private thread, has {threads}")
        return threads[0]

    async def withdraw(self, user: User) -> Response:
        """`/withdraw` and confirm; returns the answer to the confirmation."""
        asked = await self.command(user, "withdraw")
        if asked.original is None:
            raise RuntimeError(f"/withdraw asked nothing: {texts(asked)!r}")
        confirm = ids.withdraw(user.id, "confirm")
        return await self.answer(await self.standin.click(user, asked.original, confirm))

    async def moderator_withdraw(self, mod: User, member: User, *, confirm: bool = True) -> str:
        """`/participant withdraw member` as `mod`, then confirm (or cancel); returns what the
        moderator reads last (the refusal, when the bot asks nothing)."""
        asked = await self.command(mod, "participant", "withdraw", options={"member": member})
        action = "confirm" if confirm else "cancel"
        custom_id = ids.mod_withdraw(member.id, mod.id, action)
        if asked.original is None or custom_id not in custom_ids(asked.original):
            return self.read(asked)
        click = await self.standin.click(mod, asked.original, custom_id)
        return self.read(await self.answer(click))

    # -- battles ------------------------------------------------------------------------------

    async def send_voice(
        self,
        user: User,
        channel: Channel | str,
        voice: bytes | VoiceClip,
        *,
        duration_secs: float = VOICE_SECONDS,
    ) -> dict[str, Any]:
        """Send a voice message: a clip, or Ogg bytes said to last `duration_secs`."""
        if isinstance(voice, VoiceClip):
            return await self.standin.send_voice_clip(user, channel, voice)
        return await self.standin.send_voice_message(user, channel, voice, duration_secs)

    async def ask(
        self,
        user: User,
        channel: Channel | str,
        voice: bytes | VoiceClip,
        *,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Send a voice message; returns the bot's reply (a battle's progress message)."""
        sent = await self.send_voice(user, channel, voice)
        return await self.wait_reply(channel, sent, timeout=timeout)

    async def battle(
        self,
        user: User,
        channel: Channel | str,
        voice: bytes | VoiceClip,
        *,
        timeout: float = 30.0,
    ) -> tuple[dict[str, Any], str]:
        """Send a voice message and wait for both replies; returns (message, battle id)."""
        progress = await self.ask(user, channel, voice)
        battle_id = await self.wait_vote_buttons(progress["id"], timeout=timeout)
        return self.standin.message(progress["id"]), battle_id

    async def vote(
        self,
        user: User,
        message: Message | str,
        battle_id: str,
        choice: str,
        *,
        forged: bool = False,
        timeout: float | None = None,
    ) -> Response:
        """Click a vote button (`forged`: even one that is disabled or not there)."""
        custom_id = ids.vote(battle_id, choice)
        if forged:
            click = await self.forge_click(user, message, custom_id)
        else:
            click = await self.standin.click(user, message, custom_id)
        return await self.answer(click, timeout=timeout)

    async def open_form(self, user: User, message: Message | str, custom_id: str) -> Interaction:
        """Click a button that opens a form; returns the click, once the form can be submitted."""
        opened = await self.standin.click(user, message, custom_id)
        shown = await self.answer(opened)
        if shown.type != MODAL:
            raise RuntimeError(f"{custom_id} did not open a form: {texts(shown)!r}")
        await asyncio.sleep(FORM_READY_S)
        return opened

    async def comment(
        self, user: User, message: Message | str, battle_id: str, text: str, *, forged: bool = False
    ) -> Response:
        """Open a battle's comment form and submit `text` (`forged`: past the client's checks
        of the form, such as its max_length)."""
        opened = await self.open_form(user, message, ids.comment(battle_id))
        values = {ids.COMMENT_FIELD: text}
        if forged:
            return await self.answer(await self.forge_modal_submit(user, opened, values))
        return await self.answer(await self.standin.submit_modal(user, opened, values))

    async def loss_reason(
        self, user: User, message: Message | str, battle_id: str, reason: str
    ) -> Response:
        """After the vote: pick why the loser lost in the battle's select menu."""
        picked = await self.standin.select(user, message, ids.loss_reason(battle_id), [reason])
        return await self.answer(picked)

    async def voice_reason(
        self,
        user: User,
        message: Message | str,
        battle_id: str,
        channel: Channel | str,
        voice: bytes | VoiceClip,
    ) -> dict[str, Any]:
        """After the vote: click "Say why (voice)" and send the reason as a voice message;
        returns the bot's acknowledgement (edited once the reason is transcribed)."""
        asked = await self.answer(
            await self.standin.click(user, message, ids.voice_reason(battle_id))
        )
        if "Send a voice message" not in texts(asked):
            raise RuntimeError(f"the bot does not wait for a voice reason: {texts(asked)!r}")
        return await self.ask(user, channel, voice)

    # -- what a modified client could send ------------------------------------------------------

    async def forge_click(self, user: User, message: Message | str, custom_id: str) -> Interaction:
        """A component interaction for any custom_id, even one not on the message or disabled,
        on the message as given (a tampered payload too) or as stored (an id). The stand-in's
        `click` refuses these on purpose."""
        payload = dict(self.standin.message(message) if isinstance(message, str) else message)
        data = {"custom_id": custom_id, "component_type": BUTTON}
        channel = self.standin.channel(payload["channel_id"])
        return await self.standin.interact(MESSAGE_COMPONENT, user, channel, data, payload)

    async def forge_modal_submit(
        self, user: User, source: Interaction, values: Mapping[str, str]
    ) -> Interaction:
        """Submit the modal shown for `source` with any values, past the client's own checks
        (required, max_length)."""
        modal = source.modal
        if modal is None:
            raise ValueError(f"interaction {source.id} was not answered with a modal")
        data = {
            "custom_id": modal["custom_id"],
            "components": modal_submit_components(None, dict(values)),
        }
        message = self.standin.message(source.message_id) if source.message_id else None
        return await self.standin.interact(MODAL_SUBMIT, user, source.channel, data, message)

    async def forge_submit(
        self, user: User, channel: Channel, custom_id: str, values: Mapping[str, str]
    ) -> Interaction:
        """A form submit for any form id, shown or not."""
        data = {"custom_id": custom_id, "components": modal_submit_components(None, dict(values))}
        return await self.standin.interact(MODAL_SUBMIT, user, channel, data)
