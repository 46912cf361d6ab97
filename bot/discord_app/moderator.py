"""The moderators' side: `/study ...` and `/participant ...`, all behind the moderator check."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_app import render, views
from bot.discord_app.checks import moderator_only
from bot.discord_app.common import resolve_channel, tell
from bot.discord_app.places import PrivateThreads
from bot.service import StudyService
from bot.service.moderation import EXPORT_FORMATS
from bot.service.outcomes import DesignView, Refusal
from contract.records import ReplyMode, Strategy, StudyState
from contract.settings import Settings

log = logging.getLogger(__name__)

# Discord's upload limit for bots without boosts is 10 MiB; stay under it.
ATTACH_MAX_BYTES = 8_000_000


class Moderator(commands.Cog):
    """`/study` and `/participant`. No `default_permissions`: those would hide the commands
    from moderators who lack that permission (research assistants often do). Server admins can
    hide them from everyone else in Server Settings → Integrations; the gate that counts is the
    moderator check on every command, against PARLEY_MODERATOR_ROLE."""

    study = app_commands.Group(
        name="study",
        description="Run the study (moderators only).",
        guild_only=True,
    )
    participant = app_commands.Group(
        name="participant",
        description="Look after one participant (moderators only).",
        guild_only=True,
    )

    def __init__(
        self,
        *,
        settings: Settings,
        service: StudyService,
        threads: PrivateThreads,
        sync_commands: Callable[[], Awaitable[object]],
    ) -> None:
        self.settings = settings
        self.service = service
        self.moderation = service.moderation
        self.threads = threads
        # Re-syncs the slash commands to the guild (`/study sync`).
        self.sync_commands = sync_commands

    async def _answer(self, interaction: discord.Interaction, text: str) -> None:
        await tell(interaction, text[: render.MESSAGE_LIMIT])

    async def _answer_design(
        self, interaction: discord.Interaction, outcome: DesignView | Refusal
    ) -> None:
        if isinstance(outcome, Refusal):
            await self._answer(interaction, outcome.message)
            return
        await self._answer(interaction, render.config_text(outcome.config, outcome.names))

    async def _answer_data(self, interaction: discord.Interaction, title: str, data: Any) -> None:
        block = render.json_block(data, limit=render.MESSAGE_LIMIT - len(title) - 2)
        if block is not None:
            await self._answer(interaction, f"{title}\n{block}")
            return
        blob = json.dumps(data, indent=2, ensure_ascii=False, default=str).encode()
        await interaction.response.send_message(
            title, file=discord.File(io.BytesIO(blob), filename="parley.json"), ephemeral=True
        )

    # --- state -------------------------------------------------------------------------------

    async def _set_state(self, interaction: discord.Interaction, state: StudyState) -> None:
        outcome = await self.moderation.set_state(state, interaction.user.id)
        if isinstance(outcome, Refusal):
            await self._answer(interaction, outcome.message)
        elif outcome.changed:
            await self._answer(
                interaction,
                f"The study is now **{outcome.config.state.value}**."
                + render.unserved_text(outcome.unserved),
            )
        else:
            await self._answer(
                interaction,
                f"The study was already **{outcome.config.state.value}**; nothing changed."
                + render.unserved_text(outcome.unserved),
            )

    @study.command(name="open", description="Open the study: participants can start rounds.")
    @moderator_only()
    async def open_(self, interaction: discord.Interaction) -> None:
        await self._set_state(interaction, StudyState.OPEN)

    @study.command(name="pause", description="Pause: no new rounds; open rounds still finish.")
    @moderator_only()
    async def pause(self, interaction: discord.Interaction) -> None:
        await self._set_state(interaction, StudyState.PAUSED)

    @study.command(name="close", description="Close the study for good: no new rounds.")
    @moderator_only()
    async def close(self, interaction: discord.Interaction) -> None:
        await self._set_state(interaction, StudyState.CLOSED)

    @study.command(name="status", description="Battles, votes, queues and workers.")
    @moderator_only()
    async def status(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        report = await self.moderation.status()
        summary = report.summary
        lines = [render.config_text(report.design.config, report.design.names)]
        lines.append(
            "**Queues:** "
            + (", ".join(f"`{m}` {n}" for m, n in report.depths.items() if n) or "all empty")
        )
        lines.append(
            f"**Live workers ({len(report.workers)}):** "
            + (
                "; ".join(f"{w.name} on {w.host} ({', '.join(w.models)})" for w in report.workers)
                or "none — no replies will come until a worker runs"
            )
        )
        if report.unserved:
            lines.append(render.unserved_text(report.unserved).strip())
        if report.oldest is not None:
            waited = render.duration(report.oldest.waited_s)
            lines.append(f"**Oldest waiting job:** `{report.oldest.model_id}` for {waited}")
        if report.gaps:
            lines.append(render.votes_needed_text(report.gaps, report.design.names))
        text = "\n".join(lines)
        block = render.json_block(summary, limit=render.MESSAGE_LIMIT - len(text) - 2)
        if block is not None:
            await interaction.followup.send(f"{text}\n{block}", ephemeral=True)
        else:
            blob = json.dumps(summary, indent=2, default=str).encode()
            await interaction.followup.send(
                text[: render.MESSAGE_LIMIT],
                file=discord.File(io.BytesIO(blob), filename="summary.json"),
                ephemeral=True,
            )

    # --- design ------------------------------------------------------------------------------

    @study.command(name="models", description="Show the roster, or set it (comma-separated ids).")
    @app_commands.describe(roster="Model ids from the models file, e.g. demo-a, demo-b")
    @moderator_only()
    async def models(self, interaction: discord.Interaction, roster: str | None = None) -> None:
        if roster is None:
            outcome: DesignView | Refusal = await self.moderation.design()
        else:
            ids = [part.strip() for part in roster.replace(" ", ",").split(",") if part.strip()]
            outcome = await self.moderation.set_roster(ids, interaction.user.id)
        if isinstance(outcome, Refusal):
            await self._answer(interaction, outcome.message)
            return
        known = ", ".join(f"`{m}`" for m in outcome.known)
        await self._answer(
            interaction,
            f"{render.config_text(outcome.config, outcome.names)}\n**Known models:** {known}",
        )

    @study.command(name="strategy", description="Show or set how pairs are drawn.")
    @moderator_only()
    async def strategy(
        self, interaction: discord.Interaction, strategy: Strategy | None = None
    ) -> None:
        if strategy is None:
            config = (await self.moderation.design()).config
        else:
            changed = await self.moderation.set_strategy(strategy, interaction.user.id)
            if isinstance(changed, Refusal):
                await self._answer(interaction, changed.message)
                return
            config = changed
        await self._answer(interaction, f"**Strategy:** {config.strategy.value}")

    @study.command(name="replies", description="Show or set how replies reach participants.")
    @app_commands.describe(
        mode="text: written replies; speech: spoken replies to play; both: spoken and written"
    )
    @moderator_only()
    async def replies(
        self, interaction: discord.Interaction, mode: ReplyMode | None = None
    ) -> None:
        if mode is None:
            config = (await self.moderation.design()).config
        else:
            changed = await self.moderation.set_replies(mode, interaction.user.id)
            if isinstance(changed, Refusal):
                await self._answer(interaction, changed.message)
                return
            config = changed
        await self._answer(interaction, f"**Replies:** {config.replies.value}")

    @study.command(name="limits", description="Show or change quotas and audio limits.")
    @moderator_only()
    async def limits(
        self,
        interaction: discord.Interaction,
        daily_quota: app_commands.Range[int, 0, 10_000] | None = None,
        min_seconds_between: app_commands.Range[float, 0, 86_400] | None = None,
        audio_max_seconds: app_commands.Range[float, 1, 600] | None = None,
        audio_max_bytes: app_commands.Range[int, 1_000, 100_000_000] | None = None,
        comment_max_chars: app_commands.Range[int, 1, 4000] | None = None,
        pair_target: app_commands.Range[int, 1, 1_000_000] | None = None,
        fast_vote_chars_per_second: app_commands.Range[float, 0, 10_000] | None = None,
        fast_vote_listen_share: app_commands.Range[float, 0, 1] | None = None,
        fast_vote_floor_s: app_commands.Range[float, 0, 3600] | None = None,
        max_turns: app_commands.Range[int, 1, 50] | None = None,
    ) -> None:
        changes = {
            name: value
            for name, value in {
                "daily_quota": daily_quota,
                "min_seconds_between": min_seconds_between,
                "audio_max_seconds": audio_max_seconds,
                "audio_max_bytes": audio_max_bytes,
                "comment_max_chars": comment_max_chars,
                "pair_target": pair_target,
                "fast_vote_chars_per_second": fast_vote_chars_per_second,
                "fast_vote_listen_share": fast_vote_listen_share,
                "fast_vote_floor_s": fast_vote_floor_s,
                "max_turns": max_turns,
            }.items()
            if value is not None
        }
        await self._answer_design(
            interaction, await self.moderation.set_limits(interaction.user.id, **changes)
        )

    # --- data and messages -------------------------------------------------------------------

    @study.command(name="export", description="Export every battle to the bot's data dir.")
    @app_commands.describe(
        fmt="File format (csv by default)",
        upload="Also attach the full export here (it holds transcripts, replies and comments)",
    )
    @app_commands.choices(fmt=[app_commands.Choice(name=s, value=s) for s in EXPORT_FORMATS])
    @moderator_only()
    async def export(
        self,
        interaction: discord.Interaction,
        fmt: app_commands.Choice[str] | None = None,
        upload: bool = False,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        exported = await self.moderation.export(fmt.value if fmt is not None else "csv")
        text = render.export_summary(exported)
        # The export holds what participants said and heard: it stays on the bot's host unless
        # a moderator asks for it here, knowingly.
        if not upload:
            await interaction.followup.send(text, ephemeral=True)
        elif exported.size <= ATTACH_MAX_BYTES:
            await interaction.followup.send(
                text + "\n" + render.EXPORT_UPLOAD_WARNING,
                file=discord.File(exported.path),
                ephemeral=True,
            )
        else:
            await interaction.followup.send(
                text + "\nToo large to attach; fetch it from the bot's host.", ephemeral=True
            )

    @study.command(name="post", description="Post the pinned study message with a Join button.")
    @moderator_only()
    async def post(self, interaction: discord.Interaction) -> None:
        channel = self._channel(interaction)
        if channel is None:
            await self._answer(interaction, self._no_channel())
            return
        message = await channel.send(
            "🎙️ **Help us compare voice assistants!** Send a short voice message, two anonymous "
            "models answer, and you tell us which reply is better. Press the button to join.",
            view=views.join_view(),
        )
        try:
            await message.pin(reason="Parley study message")
        except discord.HTTPException as exc:
            await self._answer(
                interaction, f"Posted in {channel.mention}, but pinning failed: {exc}"
            )
            return
        await self._answer(interaction, f"Posted and pinned in {channel.mention}.")

    @study.command(name="announce", description="Post an announcement in the study channel.")
    @moderator_only()
    async def announce(
        self, interaction: discord.Interaction, text: app_commands.Range[str, 1, 1900]
    ) -> None:
        channel = self._channel(interaction)
        if channel is None:
            await self._answer(interaction, self._no_channel())
            return
        await channel.send(f"📣 {text}", allowed_mentions=discord.AllowedMentions.none())
        await self._answer(interaction, f"Announced in {channel.mention}.")

    @study.command(name="sync", description="Re-sync the slash commands to this server.")
    @moderator_only()
    async def sync(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await self.sync_commands()
        await interaction.followup.send("Slash commands synced.", ephemeral=True)

    def _channel(self, interaction: discord.Interaction) -> discord.TextChannel | None:
        if interaction.guild is None:
            return None
        return resolve_channel(interaction.guild, self.settings.study_channel)

    def _no_channel(self) -> str:
        return (
            f"I can't find the study channel {self.settings.study_channel!r} "
            "(PARLEY_STUDY_CHANNEL: its id or name)."
        )

    # --- one participant ---------------------------------------------------------------------

    @participant.command(name="info", description="What the study stores about a participant.")
    @moderator_only()
    async def info(self, interaction: discord.Interaction, member: discord.User) -> None:
        info = await self.moderation.info(member.id)
        await self._answer_data(interaction, f"Participant `{info.pseudonym}`", info.data)

    @participant.command(name="withdraw", description="Withdraw a participant (deletes data).")
    @moderator_only()
    async def withdraw(self, interaction: discord.Interaction, member: discord.User) -> None:
        checked = await self.moderation.withdrawable(member.id)
        if isinstance(checked, Refusal):
            await self._answer(interaction, checked.message)
            return
        await interaction.response.send_message(
            f"Withdraw participant `{checked.pseudonym}`? This deletes their recordings, votes, "
            "comments and answers (only a note that they withdrew is kept), and they cannot "
            "take part again.",
            view=views.mod_withdraw_view(member.id, interaction.user.id),
            ephemeral=True,
        )

    @participant.command(name="block", description="Stop a participant from starting rounds.")
    @moderator_only()
    async def block(
        self,
        interaction: discord.Interaction,
        member: discord.User,
        reason: app_commands.Range[str, 1, 300] = "no reason given",
    ) -> None:
        outcome = await self.moderation.block(member.id, reason, interaction.user.id)
        if isinstance(outcome, Refusal):
            await self._answer(interaction, outcome.message)
            return
        await self._answer(interaction, f"Participant `{outcome.pseudonym}` is blocked.")

    @participant.command(name="unblock", description="Let a blocked participant take part again.")
    @moderator_only()
    async def unblock(self, interaction: discord.Interaction, member: discord.User) -> None:
        outcome = await self.moderation.unblock(member.id, interaction.user.id)
        if isinstance(outcome, Refusal):
            await self._answer(interaction, outcome.message)
            return
        await self._answer(interaction, f"Participant `{outcome.pseudonym}` is unblocked.")
