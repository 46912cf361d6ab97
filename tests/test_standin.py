"""The Discord stand-in against the real, unmodified discord.py client.

A small commands.Bot (a slash command group, a persistent button view, a modal, an on_message that
downloads and decodes voice messages) connects to the stand-in; every test also scans the client's
log for tracebacks, because discord.py only logs exceptions raised inside event handlers.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator
from typing import Any

import av
import discord
import pytest
import yarl
from discord import app_commands
from discord.ext import commands

from tests.standin import StandIn
from tests.standin.voice import VoiceClip, speak

TOKEN = "standin-token"


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> VoiceClip:
    return speak("Which model answers better?", cache_dir=tmp_path_factory.mktemp("voice"))


class VoteView(discord.ui.View):
    """A persistent view: survives restarts because its custom_ids are fixed."""

    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="A is better", custom_id="vote:a", style=discord.ButtonStyle.primary)
    async def vote_a(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.edit_message(content="You voted A", view=None)

    @discord.ui.button(label="Comment", custom_id="vote:comment")
    async def comment(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.send_modal(CommentModal())


class CommentModal(discord.ui.Modal, title="Your comment"):
    text = discord.ui.TextInput(label="Comment", custom_id="comment:text", max_length=200)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"Thanks: {self.text.value}", ephemeral=True)


class StudyBot(commands.Bot):
    def __init__(self, guild_id: int) -> None:
        intents = discord.Intents.default()
        intents.message_content = True
        intents.members = True
        super().__init__(command_prefix="!", intents=intents)
        self.guild_id = guild_id
        self.seen: list[discord.Message] = []
        self.decoded: list[dict[str, Any]] = []
        self.events: list[str] = []
        self.build_commands()

    async def setup_hook(self) -> None:
        self.add_view(VoteView())
        guild = discord.Object(self.guild_id)
        self.tree.copy_global_to(guild=guild)
        await self.tree.sync(guild=guild)

    def build_commands(self) -> None:
        study = app_commands.Group(name="study", description="Study commands")

        @study.command(name="open", description="Open the study")
        async def study_open(
            interaction: discord.Interaction, who: discord.Member, note: str | None = None
        ) -> None:
            await interaction.response.send_message(
                f"opened by {interaction.user.name} for {who.name} ({note})", view=VoteView()
            )

        @study.command(name="slow", description="Deferred, then an ephemeral followup")
        async def study_slow(interaction: discord.Interaction) -> None:
            await interaction.response.defer(thinking=True)
            await interaction.edit_original_response(content="done thinking")
            await interaction.followup.send("only you see this", ephemeral=True)

        @study.command(name="report", description="Upload a file")
        async def study_report(interaction: discord.Interaction) -> None:
            await interaction.response.defer()
            await interaction.followup.send(
                "report", file=discord.File(io.BytesIO(b"a,b\n1,2\n"), filename="report.csv")
            )

        self.tree.add_command(study)

    async def on_message(self, message: discord.Message) -> None:
        self.seen.append(message)
        if message.author == self.user or not message.flags.voice:
            return
        attachment = message.attachments[0]
        data = await attachment.read()
        with av.open(io.BytesIO(data)) as container:
            stream = container.streams.audio[0]
            samples = sum(frame.samples for frame in container.decode(stream))
            info = {"codec": stream.codec_context.name, "rate": stream.rate, "samples": samples}
        self.decoded.append({**info, "duration": attachment.duration, "waveform": attachment.waveform})
        await message.channel.send(
            f"heard {info['codec']}", file=discord.File(io.BytesIO(data), filename="echo.ogg")
        )

    async def on_resumed(self) -> None:
        self.events.append("resumed")


class LogScan(logging.Handler):
    """Collects discord.py's log records so tests can fail on tracebacks in handlers."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def tracebacks(self) -> list[str]:
        return [
            f"{r.name}: {r.getMessage()}"
            for r in self.records
            if r.exc_info is not None or r.levelno >= logging.ERROR
        ]


@pytest.fixture
async def standin() -> AsyncIterator[StandIn]:
    async with StandIn(token=TOKEN) as server:
        yield server


@pytest.fixture
async def bot(standin: StandIn, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[StudyBot]:
    monkeypatch.setattr(discord.http.Route, "BASE", standin.api_base)
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(standin.gateway_url)
    )
    scan = LogScan()
    discord_log = logging.getLogger("discord")
    discord_log.addHandler(scan)
    previous_level = discord_log.level
    discord_log.setLevel(logging.INFO)
    client = StudyBot(int(standin.guild_id))
    task = asyncio.create_task(client.start(TOKEN))
    try:
        await standin.wait_until_connected(timeout=10)
        await standin.wait_for(lambda: client.get_guild(int(standin.guild_id)), what="the guild")
        yield client
    finally:
        await client.close()
        await asyncio.wait_for(task, 10)
        discord_log.removeHandler(scan)
        discord_log.setLevel(previous_level)
    assert scan.tracebacks() == []
    assert standin.unknown_routes() == [], [(c.method, c.path) for c in standin.unknown_routes()]


async def test_login_ready_and_guild(standin: StandIn, bot: StudyBot) -> None:
    guild = bot.get_guild(int(standin.guild_id))
    assert bot.user is not None and bot.user.id == int(standin.bot.id)
    assert {c.name for c in guild.text_channels} == {"study", "general"}
    assert {r.name for r in guild.roles} >= {"@everyone", "Study moderator"}
    assert guild.get_member(bot.user.id) is not None
    assert guild.chunked
    assert [c.route for c in standin.calls("GET")][:2] == [
        "/users/@me",
        "/oauth2/applications/@me",
    ]
    # setup_hook synced the guild commands with a bulk overwrite.
    put = standin.calls("PUT", "/applications/{app_id}/guilds/{guild_id}/commands")
    assert [c["name"] for c in put[0].json] == ["study"]


async def test_member_added_at_run_time(standin: StandIn, bot: StudyBot) -> None:
    mod = await standin.add_member("mod", roles=["Study moderator"])
    guild = bot.get_guild(int(standin.guild_id))
    member = await standin.wait_for(lambda: guild.get_member(int(mod.id)), what="the new member")
    assert [r.name for r in member.roles if not r.is_default()] == ["Study moderator"]


async def test_voice_message_is_downloaded_and_decodes_as_opus(
    standin: StandIn, bot: StudyBot, clip: VoiceClip
) -> None:
    alice = await standin.add_member("alice")
    message = await standin.send_voice_message(
        alice, standin.study_channel, clip.ogg, clip.duration_secs, waveform=clip.waveform
    )
    await standin.wait_for(lambda: bot.decoded, what="the bot to decode the voice message")
    decoded = bot.decoded[0]
    assert decoded["codec"] == "opus" and decoded["rate"] == 48_000
    assert decoded["samples"] / 48_000 == pytest.approx(clip.duration_secs, abs=0.05)
    assert decoded["duration"] == pytest.approx(clip.duration_secs)
    assert decoded["waveform"] == clip.waveform
    assert standin.downloads == [message["attachments"][0]["id"]]
    # The bot's reply (a file upload) is a real message, also dispatched on the gateway.
    reply = await standin.wait_for(
        lambda: [m for m in standin.messages("study") if m["author"]["id"] == standin.bot.id]
    )
    assert reply[0]["content"] == "heard opus"
    assert standin.attachment_bytes(reply[0]["attachments"][0]) == clip.ogg
    await standin.wait_for(lambda: any(m.id == int(reply[0]["id"]) for m in bot.seen))


async def test_voice_message_in_dm(standin: StandIn, bot: StudyBot, clip: VoiceClip) -> None:
    bob = await standin.add_member("bob")
    await standin.send_voice_message(bob, standin.dm_channel(bob), clip.ogg, clip.duration_secs)
    await standin.wait_for(lambda: bot.decoded)
    assert isinstance(bot.seen[0].channel, discord.DMChannel)


async def test_slash_command_with_subcommand_and_member_option(
    standin: StandIn, bot: StudyBot
) -> None:
    alice = await standin.add_member("alice")
    bob = await standin.add_member("bob")
    ix = await standin.slash_command(
        alice, "study", subcommand="open", options={"who": bob, "note": "hi"}
    )
    response = await standin.wait_for_response(ix)
    assert response.type == 4
    assert response.original["content"] == "opened by alice for bob (hi)"
    assert response.original["type"] == 20
    buttons = [c["custom_id"] for c in response.original["components"][0]["components"]]
    assert buttons == ["vote:a", "vote:comment"]


async def test_unknown_command_and_bad_options_fail_loudly(
    standin: StandIn, bot: StudyBot
) -> None:
    alice = await standin.add_member("alice")
    with pytest.raises(LookupError, match="nope"):
        await standin.slash_command(alice, "nope")
    with pytest.raises(ValueError, match="needs a subcommand"):
        await standin.slash_command(alice, "study")
    with pytest.raises(ValueError, match="missing required options"):
        await standin.slash_command(alice, "study", subcommand="open")


async def test_button_click_and_modal_submit(standin: StandIn, bot: StudyBot) -> None:
    alice = await standin.add_member("alice")
    ix = await standin.slash_command(alice, "study", subcommand="open", options={"who": alice})
    message = (await standin.wait_for_response(ix)).original

    comment = await standin.click(alice, message, "vote:comment")
    modal = (await standin.wait_for_response(comment)).data
    assert modal["custom_id"] and modal["title"] == "Your comment"
    submitted = await standin.submit_modal(alice, comment, {"comment:text": "B was clearer"})
    thanks = await standin.wait_for_response(submitted)
    assert thanks.original["content"] == "Thanks: B was clearer" and thanks.ephemeral

    vote = await standin.click(alice, message, "vote:a")
    update = await standin.wait_for_response(vote)
    assert update.type == 7
    assert standin.message(message["id"])["content"] == "You voted A"
    assert standin.message(message["id"])["components"] == []


async def test_deferred_response_edit_and_ephemeral_followup(
    standin: StandIn, bot: StudyBot
) -> None:
    alice = await standin.add_member("alice")
    ix = await standin.slash_command(alice, "study", subcommand="slow")
    assert (await standin.wait_for_response(ix)).type == 5
    response = await standin.wait_for_followups(ix, 1)
    assert response.original["content"] == "done thinking"
    assert not response.original["flags"] & 128  # no longer "thinking"
    assert response.followups[0]["content"] == "only you see this"
    assert response.followups[0]["flags"] & 64


async def test_file_upload_keeps_bytes(standin: StandIn, bot: StudyBot) -> None:
    alice = await standin.add_member("alice")
    ix = await standin.slash_command(alice, "study", subcommand="report")
    response = await standin.wait_for_followups(ix, 1)
    attachment = response.followups[0]["attachments"][0]
    assert attachment["filename"] == "report.csv"
    assert standin.attachment_bytes(attachment) == b"a,b\n1,2\n"


async def test_429_with_retry_after_is_retried(standin: StandIn, bot: StudyBot) -> None:
    fault = standin.fail_next("POST", "/channels/{channel_id}/messages", retry_after=0.3)
    channel = bot.get_channel(int(standin.study_channel.id))
    sent = await channel.send("after a rate limit")
    posts = standin.calls("POST", "/channels/{channel_id}/messages")
    assert [c.status for c in posts] == [429, 200]
    assert posts[1].at - posts[0].at >= 0.3
    assert fault.hits == 1 and sent.content == "after a rate limit"


async def test_5xx_is_retried(standin: StandIn, bot: StudyBot) -> None:
    standin.fail_next("POST", "/channels/*/messages", status=502)
    channel = bot.get_channel(int(standin.study_channel.id))
    await channel.send("after a bad gateway")
    posts = standin.calls("POST", "/channels/{channel_id}/messages")
    assert [c.status for c in posts] == [502, 200]


@pytest.mark.parametrize("abrupt", [False, True], ids=["close-4000", "abrupt"])
async def test_gateway_drop_resumes_and_replays_missed_events(
    standin: StandIn, bot: StudyBot, abrupt: bool
) -> None:
    alice = await standin.add_member("alice")
    await standin.wait_for(lambda: bot.get_guild(int(standin.guild_id)).get_member(int(alice.id)))
    assert await standin.drop_gateway(abrupt=abrupt) == 1
    # Sent while the bot is disconnected: kept in the session and replayed on RESUME.
    missed = [await standin.send_message(alice, "study", f"missed {i}") for i in range(3)]
    await standin.wait_for_resume(timeout=10)
    await standin.wait_for(lambda: len(bot.seen) >= 3, what="the replayed messages")
    assert [m.content for m in bot.seen] == [m["content"] for m in missed]
    assert "resumed" in bot.events
    assert standin.gateway.identifies == 1


async def test_reconnect_opcode(standin: StandIn, bot: StudyBot) -> None:
    alice = await standin.add_member("alice")
    assert await standin.send_reconnect() == 1
    await standin.wait_for_resume(timeout=10)
    await standin.send_message(alice, "study", "after reconnect")
    await standin.wait_for(lambda: [m for m in bot.seen if m.content == "after reconnect"])
    assert standin.gateway.identifies == 1


async def test_unknown_route_is_404_and_recorded(standin: StandIn, bot: StudyBot) -> None:
    route = discord.http.Route("GET", "/nothing/here")
    with pytest.raises(discord.NotFound):
        await bot.http.request(route)
    assert [(c.path, c.status, c.response) for c in standin.unknown_routes()] == [
        ("/nothing/here", 404, {"message": "404: Not Found", "code": 0})
    ]
    standin.rest.calls.clear()  # the fixture fails tests that hit unknown routes
