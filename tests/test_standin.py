"""The Discord stand-in against the real, unmodified discord.py client.

A small commands.Bot (a slash command group, a persistent button view, a modal, an on_message that
downloads and decodes voice messages) connects to the stand-in; every test also scans the client's
log for tracebacks, because discord.py only logs exceptions raised inside event handlers.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import av
import discord
import numpy as np
import pytest
import yarl
from discord import app_commands
from discord.ext import commands

from devstack.standin import Fault, StandIn, StandInThread
from devstack.standin.gateway import without_content
from devstack.standin.interactions import (
    check_can_use,
    command_data,
    find_command,
    modal_submit_components,
)
from devstack.standin.state import World
from devstack.standin.voice import VoiceClip, speak, waveform

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


class PickView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.select(
        custom_id="pick",
        options=[
            discord.SelectOption(label="x", value="x"),
            discord.SelectOption(label="y", value="y"),
        ],
    )
    async def pick(self, interaction: discord.Interaction, select: discord.ui.Select) -> None:
        await interaction.response.defer()  # on a component: DEFERRED_UPDATE_MESSAGE
        await interaction.edit_original_response(content=f"picked {select.values}", view=None)


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
        self.add_view(PickView())
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

        @study.command(name="quiet", description="Deferred ephemerally, answered by a followup")
        async def study_quiet(interaction: discord.Interaction) -> None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            await interaction.followup.send("quietly done")

        @study.command(name="model", description="Autocomplete")
        async def study_model(interaction: discord.Interaction, model: str) -> None:
            await interaction.response.send_message(f"model {model}")

        @study_model.autocomplete("model")
        async def model_choices(
            interaction: discord.Interaction, current: str
        ) -> list[app_commands.Choice[str]]:
            names = ["demo-pipeline", "demo-echo", "other"]
            return [app_commands.Choice(name=n, value=n) for n in names if n.startswith(current)]

        @study.command(name="pick", description="A select menu")
        async def study_pick(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("pick one", view=PickView())

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
        self.decoded.append(
            {**info, "duration": attachment.duration, "waveform": attachment.waveform}
        )
        await message.reply(
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
    refused = [(c.method, c.path, c.response) for c in standin.rest_log if 400 <= c.status < 429]
    assert refused == []


async def test_login_ready_and_guild(standin: StandIn, bot: StudyBot) -> None:
    guild = bot.get_guild(int(standin.guild_id))
    assert bot.user is not None
    assert bot.user.id == int(standin.bot.id)
    assert {c.name for c in guild.text_channels} == {"study", "general"}
    assert {r.name for r in guild.roles} >= {"@everyone", "Study moderator"}
    assert guild.get_member(bot.user.id) is not None
    assert guild.chunked
    # discord.py asked for a compressed stream, and the stand-in answered in kind.
    assert standin.gateway.connections[0]["compress"] == (
        discord.utils._ActiveDecompressionContext.COMPRESSION_TYPE
    )
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
    message = await standin.send_voice_clip(alice, standin.study_channel, clip)
    await standin.wait_for(lambda: bot.decoded, what="the bot to decode the voice message")
    decoded = bot.decoded[0]
    assert decoded["codec"] == "opus"
    assert decoded["rate"] == 48_000
    assert decoded["samples"] / 48_000 == pytest.approx(clip.duration_secs, abs=0.05)
    assert decoded["duration"] == pytest.approx(clip.duration_secs)
    assert decoded["waveform"] == clip.waveform
    assert standin.downloads == [message["attachments"][0]["id"]]
    # The bot's reply (a file upload) is a real message, also dispatched on the gateway.
    reply = await standin.wait_for(
        lambda: [m for m in standin.messages("study") if m["author"]["id"] == standin.bot.id]
    )
    assert reply[0]["content"] == "heard opus"
    assert reply[0]["type"] == 19  # a reply, referencing the voice message with string ids
    assert reply[0]["message_reference"]["message_id"] == message["id"]
    assert reply[0]["referenced_message"]["id"] == message["id"]
    assert standin.attachment_bytes(reply[0]["attachments"][0]) == clip.ogg
    await standin.wait_for(lambda: any(m.id == int(reply[0]["id"]) for m in bot.seen))


async def test_voice_message_in_dm(standin: StandIn, bot: StudyBot, clip: VoiceClip) -> None:
    bob = await standin.add_member("bob")
    dm = standin.dm_channel(bob)
    await standin.send_voice_message(bob, dm, clip.ogg, clip.duration_secs)
    await standin.wait_for(lambda: len(standin.messages(dm)) == 2, what="the bot's reply")
    assert isinstance(bot.seen[0].channel, discord.DMChannel)
    assert standin.messages(dm)[1]["content"] == "heard opus"


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


async def test_unknown_command_and_bad_options_fail_loudly(standin: StandIn, bot: StudyBot) -> None:
    alice = await standin.add_member("alice")
    with pytest.raises(LookupError, match="nope"):
        await standin.slash_command(alice, "nope")
    with pytest.raises(ValueError, match="needs a subcommand"):
        await standin.slash_command(alice, "study")
    with pytest.raises(ValueError, match="missing required options"):
        await standin.slash_command(alice, "study", subcommand="open")
    # The bot synced its commands to the guild only, so they do not exist in DMs.
    with pytest.raises(LookupError, match="no application command 'study'"):
        await standin.slash_command(
            alice, "study", subcommand="slow", channel=standin.dm_channel(alice)
        )


async def test_autocomplete_choices(standin: StandIn, bot: StudyBot) -> None:
    alice = await standin.add_member("alice")
    ix = await standin.autocomplete(
        alice, "study", "model", subcommand="model", options={"model": "demo"}
    )
    response = await standin.wait_for_response(ix)
    assert response.type == 8
    assert [c["value"] for c in response.data["choices"]] == ["demo-pipeline", "demo-echo"]
    with pytest.raises(ValueError, match="has no autocomplete"):
        await standin.autocomplete(alice, "study", "who", subcommand="open", options={"who": "x"})


async def test_button_click_and_modal_submit(standin: StandIn, bot: StudyBot) -> None:
    alice = await standin.add_member("alice")
    ix = await standin.slash_command(alice, "study", subcommand="open", options={"who": alice})
    message = (await standin.wait_for_response(ix)).original

    comment = await standin.click(alice, message, "vote:comment")
    modal = (await standin.wait_for_response(comment)).data
    assert modal["custom_id"]
    assert modal["title"] == "Your comment"
    submitted = await standin.submit_modal(alice, comment, {"comment:text": "B was clearer"})
    thanks = await standin.wait_for_response(submitted)
    assert thanks.original["content"] == "Thanks: B was clearer"
    assert thanks.ephemeral

    vote = await standin.click(alice, message, "vote:a")
    update = await standin.wait_for_response(vote)
    assert update.type == 7
    assert standin.message(message["id"])["content"] == "You voted A"
    assert standin.message(message["id"])["components"] == []


async def test_select_with_deferred_update_edits_the_component_message(
    standin: StandIn, bot: StudyBot
) -> None:
    alice = await standin.add_member("alice")
    ix = await standin.slash_command(alice, "study", subcommand="pick")
    message = (await standin.wait_for_response(ix)).original
    with pytest.raises(ValueError, match="not among the select's options"):
        await standin.select(alice, message, "pick", ["z"])
    chosen = await standin.select(alice, message, "pick", ["y"])
    assert (await standin.wait_for_response(chosen)).type == 6
    await standin.wait_for(lambda: standin.message(message["id"])["content"] == "picked ['y']")
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


async def test_first_followup_after_defer_replaces_the_loading_message(
    standin: StandIn, bot: StudyBot
) -> None:
    alice = await standin.add_member("alice")
    ix = await standin.slash_command(alice, "study", subcommand="quiet")
    response = await standin.wait_for_followups(ix, 1)
    assert response.original["content"] == "quietly done"
    assert response.original["flags"] == 64  # ephemeral, as deferred; no longer loading
    assert response.followups == [response.original]


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
    assert posts[1].at - posts[0].at >= 0.29  # slept Retry-After (clock jitter aside)
    assert fault.hits == 1
    assert sent.content == "after a rate limit"


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


@pytest.mark.slow  # discord.py waits 5 s before any IDENTIFY but the first
async def test_invalid_session_makes_the_client_identify_again(
    standin: StandIn, bot: StudyBot
) -> None:
    assert await standin.invalidate_session() == 1
    await standin.gateway.wait_connected(identifies=2, timeout=10)
    alice = await standin.add_member("alice")
    await standin.send_message(alice, "study", "after a new session")
    await standin.wait_for(lambda: [m for m in bot.seen if m.content == "after a new session"])


async def test_unknown_route_is_404_and_recorded(standin: StandIn, bot: StudyBot) -> None:
    route = discord.http.Route("GET", "/nothing/here")
    with pytest.raises(discord.NotFound):
        await bot.http.request(route)
    assert [(c.path, c.status, c.response) for c in standin.unknown_routes()] == [
        ("/nothing/here", 404, {"message": "404: Not Found", "code": 0})
    ]
    standin.rest.calls.clear()  # the fixture fails tests that hit unknown routes


async def test_dm_private_thread_pins_and_guild_fetches(standin: StandIn, bot: StudyBot) -> None:
    alice = await standin.add_member("alice")
    guild = bot.get_guild(int(standin.guild_id))
    member = await guild.fetch_member(int(alice.id))
    await member.send("hello in your DMs")
    dm = standin.dm_channel(alice)
    assert [m["content"] for m in standin.messages(dm)] == ["hello in your DMs"]

    study = guild.get_channel(int(standin.study_channel.id))
    thread = await study.create_thread(
        name="alice's battle", type=discord.ChannelType.private_thread
    )
    await thread.add_user(member)
    assert {m.id for m in await thread.fetch_members()} == {bot.user.id, member.id}
    posted = await thread.send("your battle")
    await posted.pin()
    assert standin.threads()[0].member_ids == [standin.bot.id, alice.id]
    assert standin.message(str(posted.id))["pinned"]
    await standin.wait_for(lambda: guild.get_thread(thread.id), what="THREAD_CREATE")
    # The participant can post in the private thread they were added to.
    await standin.send_message(alice, thread.id, "my answer")
    await standin.wait_for(lambda: [m for m in bot.seen if m.content == "my answer"])

    assert {r.name for r in await guild.fetch_roles()} >= {"Study moderator"}
    assert {c.name for c in await guild.fetch_channels()} == {"study", "general"}
    assert (await thread.fetch_message(posted.id)).content == "your battle"
    await posted.edit(content="edited")
    assert standin.message(str(posted.id))["content"] == "edited"
    await posted.delete()
    assert str(posted.id) not in {m["id"] for m in standin.messages(thread.id)}


async def test_message_content_needs_the_intent(standin: StandIn, monkeypatch) -> None:
    monkeypatch.setattr(discord.http.Route, "BASE", standin.api_base)
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(standin.gateway_url)
    )
    seen: list[discord.Message] = []
    client = discord.Client(intents=discord.Intents.default())  # no message_content
    client.event(_collector(seen))
    task = asyncio.create_task(client.start(TOKEN))
    try:
        await standin.wait_until_connected()
        alice = await standin.add_member("alice")
        await standin.send_message(
            alice, "study", "secret", attachments=[("a.txt", b"x", "text/plain")]
        )
        await standin.send_message(alice, "study", f"hey {standin.bot.mention}")
        await standin.wait_for(lambda: len(seen) == 2)
    finally:
        await client.close()
        await asyncio.wait_for(task, 10)
    assert [(m.content, len(m.attachments)) for m in seen] == [
        ("", 0),
        (f"hey <@{standin.bot.id}>", 0),
    ]
    assert seen[1].mentions[0].id == int(standin.bot.id)


def _collector(seen: list[discord.Message]):
    async def on_message(message: discord.Message) -> None:
        seen.append(message)

    return on_message


# -- pure pieces, with golden cases ------------------------------------------------------------


def test_waveform_is_peak_per_slice_scaled_to_255() -> None:
    samples = np.array([0.0, 0.5, -1.0, 0.25], dtype=np.float32)
    assert waveform(samples, points=4) == bytes([0, 128, 255, 64])
    assert len(waveform(np.linspace(-1, 1, 48_000, dtype=np.float32))) == 256


def test_speak_is_cached_and_real_opus(tmp_path) -> None:
    first = speak("cache me", cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.ogg"))) == 1
    assert speak("cache me", cache_dir=tmp_path) == first
    with av.open(io.BytesIO(first.ogg)) as container:
        assert container.streams.audio[0].codec_context.name == "opus"
    assert 0.3 < first.duration_secs < 3


def test_command_data_nests_subcommand_and_resolves_members() -> None:
    world = World()
    bob = world.add_user("bob", roles=["Study moderator"])
    world.commands[world.guild_id] = {
        "study": {
            "id": "42",
            "name": "study",
            "type": 1,
            "options": [
                {
                    "type": 1,
                    "name": "open",
                    "options": [
                        {"type": 6, "name": "who", "required": True},
                        {"type": 4, "name": "count"},
                    ],
                }
            ],
        }
    }
    command, in_guild = find_command(world, "study", in_guild=True)
    data = command_data(
        world,
        command,
        guild_command=in_guild,
        group=None,
        subcommand="open",
        options={"who": bob, "count": "3"},
        upload=lambda stored: {},
    )
    assert data["options"] == [
        {
            "name": "open",
            "type": 1,
            "options": [
                {"name": "who", "type": 6, "value": bob.id},
                {"name": "count", "type": 4, "value": 3},
            ],
        }
    ]
    assert data["guild_id"] == world.guild_id
    assert data["resolved"]["users"][bob.id]["username"] == "bob"
    assert data["resolved"]["members"][bob.id]["roles"] == [world.moderator_role_id]
    with pytest.raises(ValueError, match=r"no option 'nope'; its options are \['who', 'count'\]"):
        command_data(
            world,
            command,
            guild_command=True,
            group=None,
            subcommand="open",
            options={"who": bob, "nope": 1},
            upload=lambda stored: {},
        )


def test_commands_hidden_by_permissions_or_context_are_refused() -> None:
    world = World()
    alice = world.add_user("alice")
    admins = world.add_role("admins", permissions=str(1 << 3))
    boss = world.add_user("boss", roles=[admins["id"]])
    manage_guild = {"name": "setup", "default_member_permissions": str(1 << 5), "contexts": [0]}
    with pytest.raises(PermissionError, match="alice lacks the permissions 32"):
        check_can_use(world, manage_guild, alice, world.study_channel)
    check_can_use(world, manage_guild, boss, world.study_channel)  # administrators may
    check_can_use(world, {"name": "open"}, alice, world.study_channel)
    with pytest.raises(LookupError, match="not available in DMs"):
        check_can_use(world, manage_guild, alice, world.dm_channel(alice))


def test_modal_submit_mirrors_rows_and_labels() -> None:
    modal = {
        "custom_id": "m",
        "components": [
            {"type": 1, "components": [{"type": 4, "custom_id": "a", "required": True}]},
            {"type": 18, "component": {"type": 4, "custom_id": "b", "required": False}},
        ],
    }
    assert modal_submit_components(modal, {"a": "x"}) == [
        {"type": 1, "components": [{"type": 4, "custom_id": "a", "value": "x"}]},
        {"type": 18, "component": {"type": 4, "custom_id": "b", "value": ""}},
    ]
    with pytest.raises(ValueError, match="required"):
        modal_submit_components(modal, {"b": "y"})
    with pytest.raises(ValueError, match=r"no text inputs \['zz'\]"):
        modal_submit_components(modal, {"a": "x", "zz": "y"})


def test_without_content_blanks_only_others_guild_messages() -> None:
    message = {"guild_id": "1", "author": {"id": "7"}, "content": "hi", "attachments": [{}]}
    assert without_content(message, bot_id="9")["content"] == ""
    assert without_content(message, bot_id="9")["attachments"] == []
    assert without_content(message, bot_id="7") == message  # the bot's own message
    assert without_content({**message, "mentions": [{"id": "9"}]}, bot_id="9")["content"] == "hi"
    dm = {k: v for k, v in message.items() if k != "guild_id"}
    assert without_content(dm, bot_id="9") == dm


def test_fault_matches_template_or_glob_and_counts() -> None:
    fault = Fault("POST", "/channels/*/messages", status=500, times=1)
    assert fault.matches("POST", "/channels/1/messages", "/channels/{channel_id}/messages")
    assert not fault.matches("GET", "/channels/1/messages", "/channels/{channel_id}/messages")
    assert not fault.matches("POST", "/channels/1/messages/2", None)
    fault.hits = 1
    assert not fault.matches("POST", "/channels/1/messages", None)


# -- the thread wrapper, over plain HTTP ---------------------------------------------------------


def test_thread_wrapper_serves_discord_json() -> None:
    with StandInThread(token=TOKEN) as thread:
        standin = thread.standin
        alice = thread.run(standin.add_member("alice"))
        request = urllib.request.Request(
            f"{standin.api_base}/users/@me", headers={"Authorization": f"Bot {TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.headers["Content-Type"] == "application/json"
            assert json.load(response)["id"] == standin.bot.id
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{standin.api_base}/no/such/route", timeout=5)
        assert missing.value.code == 404
        assert json.load(missing.value) == {"message": "404: Not Found", "code": 0}
        message = thread.run(standin.send_message(alice, "general", "hi"))
        assert thread.call(lambda: standin.messages("general")) == [message]
        assert [c.path for c in thread.call(standin.unknown_routes)] == ["/no/such/route"]
