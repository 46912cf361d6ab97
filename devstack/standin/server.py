"""`StandIn`: the local Discord stand-in server and the API tests drive it with.

    standin = StandIn()
    await standin.start()                 # base_url, api_base, gateway_url
    # bot: discord.http.Route.BASE = standin.api_base
    #      discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(standin.gateway_url)
    await standin.wait_until_connected()
    alice = await standin.add_member("alice")
    msg = await standin.send_voice_message(alice, standin.study_channel, ogg, 2.5)
    ix = await standin.slash_command(alice, "study", subcommand="open", options={"who": alice})
    response = await standin.wait_for_response(ix)
    await standin.stop()

`StandInThread` runs one in a background thread for synchronous callers (the demo).
"""

from __future__ import annotations

import asyncio
import base64
import re
import threading
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import Future
from typing import Any, TypeVar

from aiohttp import web

from devstack.standin.gateway import INVALID_SESSION, RECONNECT, UNKNOWN_ERROR, Gateway
from devstack.standin.interactions import (
    APPLICATION_COMMAND,
    APPLICATION_COMMAND_AUTOCOMPLETE,
    BUTTON,
    MESSAGE_COMPONENT,
    MODAL_SUBMIT,
    Interaction,
    Response,
    check_can_use,
    command_data,
    find_command,
    interaction_payload,
    modal_submit_components,
)
from devstack.standin.rest import Fault, Rest, RestCall
from devstack.standin.state import (
    DM,
    EPHEMERAL,
    IS_VOICE_MESSAGE,
    PRIVATE_THREAD,
    Channel,
    StoredFile,
    User,
    World,
)
from devstack.standin.voice import VoiceClip

T = TypeVar("T")

_MENTION = re.compile(r"<@!?(\d+)>")
# The least time a simulated person takes between a modal opening and its submit.
MODAL_TYPING_S = 0.2

ChannelRef = Channel | str | int


class StandIn:
    """A local Discord: one guild, REST under /api/v10, a gateway at /gateway, attachments under
    /attachments. Not thread-safe: use it from the event loop that started it."""

    def __init__(
        self,
        *,
        token: str = "standin-token",
        host: str = "127.0.0.1",
        port: int = 0,
        heartbeat_interval_ms: int = 41_250,
        callback_deadline_s: float | None = 3.0,
        bot_name: str = "Parley",
    ) -> None:
        self.token = token
        self._host = host
        self._port = port
        self.world = World(bot_name=bot_name)
        self.interactions: dict[str, Interaction] = {}
        self.gateway = Gateway(
            self.world,
            token=token,
            resume_url=lambda: self.gateway_url,
            heartbeat_interval_ms=heartbeat_interval_ms,
        )
        self.rest = Rest(
            self.world,
            self.gateway,
            token=token,
            base_url=lambda: self.base_url,
            interactions=self.interactions,
            callback_deadline_s=callback_deadline_s,
        )
        self.downloads: list[str] = []  # attachment ids fetched from /attachments, in order
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> StandIn:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/v10/{tail:.*}", self.rest.handle)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/gateway/", self.gateway.handle)
        app.router.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", self._attachment)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self._base_url = f"http://{host}:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self.gateway.drop(code=1001)
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> StandIn:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("the stand-in is not started; await standin.start() first")
        return self._base_url

    @property
    def api_base(self) -> str:
        """What discord.http.Route.BASE (DISCORD_API_BASE) must be."""
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        """What DiscordWebSocket.DEFAULT_GATEWAY (DISCORD_GATEWAY_URL) must be."""
        return self.base_url.replace("http://", "ws://", 1) + "/gateway"

    async def _attachment(self, request: web.Request) -> web.Response:
        stored = self.world.files.get(request.match_info["attachment_id"])
        if stored is None or stored.filename != request.match_info["filename"]:
            raise web.HTTPNotFound(text="no such attachment")
        self.downloads.append(request.match_info["attachment_id"])
        return web.Response(body=stored.data, headers={"Content-Type": stored.content_type})

    # -- the world ------------------------------------------------------------------------------

    @property
    def guild_id(self) -> str:
        return self.world.guild_id

    @property
    def application_id(self) -> str:
        return self.world.application_id

    @property
    def bot(self) -> User:
        return self.world.bot

    @property
    def study_channel(self) -> Channel:
        return self.world.study_channel

    @property
    def general_channel(self) -> Channel:
        return self.world.general_channel

    @property
    def moderator_role_id(self) -> str:
        return self.world.moderator_role_id

    def channel(self, ref: ChannelRef) -> Channel:
        """A channel (or thread, or DM) by object, id or name."""
        return self.world.channel(ref)

    def dm_channel(self, user: User) -> Channel:
        """The DM channel between `user` and the bot."""
        return self.world.dm_channel(user)

    def threads(self) -> list[Channel]:
        return [c for c in self.world.channels.values() if "thread_metadata" in c.payload]

    async def add_member(self, username: str, *, roles: list[str] | None = None) -> User:
        """A new guild member (roles by id or name, e.g. "Study moderator"); the bot gets
        GUILD_MEMBER_ADD."""
        user = self.world.add_user(username, roles=roles)
        await self.gateway.dispatch(
            "GUILD_MEMBER_ADD", {**user.member_payload(), "guild_id": self.guild_id}
        )
        return user

    async def add_role(self, name: str, *, permissions: int = 0) -> dict[str, Any]:
        """A new role (permission bits as an int); the bot gets GUILD_ROLE_CREATE."""
        role = self.world.add_role(name, permissions=str(permissions))
        await self.gateway.dispatch("GUILD_ROLE_CREATE", {"guild_id": self.guild_id, "role": role})
        return role

    def add_user(self, username: str) -> User:
        """A user who is not in the guild (can still DM the bot)."""
        return self.world.add_user(username, member=False)

    async def set_roles(self, user: User, roles: list[str]) -> None:
        """Replace a member's roles; the bot gets GUILD_MEMBER_UPDATE."""
        user.member_roles = [self.world.role_id(role) for role in roles]
        await self.gateway.dispatch(
            "GUILD_MEMBER_UPDATE", {**user.member_payload(), "guild_id": self.guild_id}
        )

    def messages(self, channel: ChannelRef) -> list[dict[str, Any]]:
        """Every message in `channel`, oldest first (the stand-in's copies: read, don't edit)."""
        return list(self.world.messages.get(self.channel(channel).id, {}).values())

    def message(self, message_id: str) -> dict[str, Any]:
        return self.world.find_message(message_id)[1]

    def attachment_bytes(self, attachment: Mapping[str, Any]) -> bytes:
        """The bytes behind an attachment object (e.g. a file the bot uploaded)."""
        return self.world.files[attachment["id"]].data

    # -- REST record and faults -----------------------------------------------------------------

    @property
    def rest_log(self) -> list[RestCall]:
        return self.rest.calls

    def calls(self, method: str | None = None, route: str | None = None) -> list[RestCall]:
        """Recorded REST calls, filtered by method and route template."""
        return [
            c
            for c in self.rest.calls
            if (method is None or c.method == method) and (route is None or c.route == route)
        ]

    def unknown_routes(self) -> list[RestCall]:
        """Calls to routes the stand-in does not serve (answered 404/405, no route matched)."""
        return [c for c in self.rest.calls if c.route is None and not c.fault]

    def fail_next(
        self,
        method: str,
        pattern: str,
        *,
        status: int = 429,
        times: int = 1,
        retry_after: float = 0.2,
        is_global: bool = False,
    ) -> Fault:
        """Answer the next `times` matching requests with `status` (429 with Retry-After and
        rate-limit headers, or a 5xx). `pattern` is a route template such as
        "/channels/{channel_id}/messages" or a glob over the path ("/channels/*/messages")."""
        if status != 429 and not 500 <= status <= 599:
            raise ValueError(f"fail_next status must be 429 or 5xx, not {status}")
        if times < 1:
            raise ValueError(f"fail_next times must be at least 1, not {times}")
        fault = Fault(method.upper(), pattern, status, times, retry_after, is_global)
        self.rest.faults.append(fault)
        return fault

    # -- gateway controls -----------------------------------------------------------------------

    async def wait_until_connected(self, identifies: int = 1, *, timeout: float = 10.0) -> None:
        """Wait until `identifies` IDENTIFYs in all (one per bot start) have been answered with
        READY and GUILD_CREATE."""
        await self.gateway.wait_connected(identifies=identifies, timeout=timeout)

    async def wait_for_resume(self, count: int = 1, *, timeout: float = 10.0) -> None:
        """Wait until `count` RESUMEs in all have been answered."""
        await self.gateway.wait_connected(identifies=1, resumes=count, timeout=timeout)

    async def drop_gateway(self, *, code: int = UNKNOWN_ERROR, abrupt: bool = False) -> int:
        """Drop the bot's gateway connection (close `code`, or cut TCP when abrupt); events keep
        queuing in the session and are replayed when the bot RESUMEs."""
        return await self.gateway.drop(code=code, abrupt=abrupt)

    async def send_reconnect(self) -> int:
        """Send op 7 RECONNECT: the client closes and RESUMEs."""
        return await self.gateway.send_op(RECONNECT)

    async def invalidate_session(self, *, resumable: bool = False) -> int:
        """Send op 9 INVALID_SESSION: the client IDENTIFYs again (or RESUMEs when resumable)."""
        sessions = list(self.gateway.sessions)
        sent = await self.gateway.send_op(INVALID_SESSION, resumable)
        if not resumable:
            # Forget them, so that a RESUME of these sessions is refused as Discord would.
            for session_id in sessions:
                del self.gateway.sessions[session_id]
        return sent

    # -- injecting what users do ----------------------------------------------------------------

    async def send_message(
        self,
        user: User,
        channel: ChannelRef,
        content: str = "",
        *,
        attachments: list[tuple[str, bytes, str]] | None = None,
    ) -> dict[str, Any]:
        """`user` posts a message (attachments as (filename, bytes, content type)); the bot gets
        MESSAGE_CREATE. User mentions (`<@id>`, e.g. `standin.bot.mention`) in the content fill
        `mentions`, as Discord does."""
        target = self.channel(channel)
        self._check_can_post(user, target)
        if not content and not attachments:
            raise ValueError("a message needs content or attachments (Discord refuses empty ones)")
        mentioned = [
            self.world.users[i] for i in _MENTION.findall(content) if i in self.world.users
        ]
        files = [
            StoredFile(name, content_type, data) for name, data, content_type in attachments or []
        ]
        payloads = [self.world.attachment_payload(self.base_url, target.id, f) for f in files]
        extra = {"mentions": [u.payload() for u in mentioned]}
        return await self._post(user, target, content, payloads, flags=0, extra=extra)

    async def send_voice_message(
        self,
        user: User,
        channel: ChannelRef,
        ogg: bytes,
        duration_secs: float,
        *,
        waveform: bytes | None = None,
    ) -> dict[str, Any]:
        """`user` records a voice message (Ogg/Opus bytes): flags IS_VOICE_MESSAGE (8192), one
        attachment "voice-message.ogg" with duration_secs and a base64 waveform, no content."""
        if duration_secs <= 0:
            raise ValueError(f"duration_secs must be positive, not {duration_secs}")
        if not ogg.startswith(b"OggS"):
            raise ValueError("a voice message must be Ogg (the bytes do not start with OggS)")
        target = self.channel(channel)
        self._check_can_post(user, target)
        stored = StoredFile("voice-message.ogg", "audio/ogg", ogg)
        attachment = self.world.attachment_payload(self.base_url, target.id, stored)
        attachment["duration_secs"] = float(duration_secs)
        attachment["waveform"] = base64.b64encode(waveform or bytes(256)).decode()
        attachment["flags"] = 0
        return await self._post(user, target, "", [attachment], flags=IS_VOICE_MESSAGE, extra={})

    async def send_voice_clip(
        self, user: User, channel: ChannelRef, clip: VoiceClip
    ) -> dict[str, Any]:
        """send_voice_message with a clip from devstack.standin.voice.speak()."""
        return await self.send_voice_message(
            user, channel, clip.ogg, clip.duration_secs, waveform=clip.waveform
        )

    async def _post(
        self,
        user: User,
        channel: Channel,
        content: str,
        attachments: list[dict[str, Any]],
        *,
        flags: int,
        extra: dict[str, Any],
    ) -> dict[str, Any]:
        message = self.world.new_message(
            channel, user, content=content, attachments=attachments, flags=flags, extra=extra
        )
        await self.gateway.dispatch("MESSAGE_CREATE", self.world.gateway_message(message))
        return message

    def _check_can_post(self, user: User, channel: Channel) -> None:
        if channel.type == DM:
            if channel.member_ids != [user.id]:
                raise ValueError(f"{user.username} is not in DM channel {channel.id}")
        elif user.member_roles is None:
            raise ValueError(f"{user.username} is not a member of the guild")
        elif channel.type == PRIVATE_THREAD and user.id not in channel.member_ids:
            raise ValueError(f"{user.username} is not a member of private thread {channel.name!r}")

    async def slash_command(
        self,
        user: User,
        name: str,
        *,
        subcommand: str | None = None,
        group: str | None = None,
        options: Mapping[str, Any] | None = None,
        channel: ChannelRef | None = None,
    ) -> Interaction:
        """`user` runs /name [group] [subcommand] with options, typed by the command the bot
        registered (users/members, channels, roles as objects or ids; attachments as (filename,
        bytes, content type)); the bot gets INTERACTION_CREATE."""
        target = self.channel(channel) if channel is not None else self.study_channel
        self._check_can_post(user, target)
        command, guild_command = find_command(self.world, name, in_guild=target.type != DM)
        check_can_use(self.world, command, user, target)
        data = command_data(
            self.world,
            command,
            guild_command=guild_command,
            group=group,
            subcommand=subcommand,
            options=options or {},
            upload=lambda stored: self.world.attachment_payload(self.base_url, target.id, stored),
        )
        return await self.interact(APPLICATION_COMMAND, user, target, data)

    async def autocomplete(
        self,
        user: User,
        name: str,
        focused: str,
        *,
        subcommand: str | None = None,
        group: str | None = None,
        options: Mapping[str, Any] | None = None,
        channel: ChannelRef | None = None,
    ) -> Interaction:
        """`user` is typing `options[focused]` in /name's option `focused` (which must have
        autocomplete); the bot answers with choices (callback type 8: response.data["choices"])."""
        target = self.channel(channel) if channel is not None else self.study_channel
        self._check_can_post(user, target)
        command, guild_command = find_command(self.world, name, in_guild=target.type != DM)
        check_can_use(self.world, command, user, target)
        data = command_data(
            self.world,
            command,
            guild_command=guild_command,
            group=group,
            subcommand=subcommand,
            options=options or {},
            upload=lambda stored: self.world.attachment_payload(self.base_url, target.id, stored),
            focused=focused,
        )
        return await self.interact(APPLICATION_COMMAND_AUTOCOMPLETE, user, target, data)

    async def click(
        self, user: User, message: Mapping[str, Any] | str, custom_id: str
    ) -> Interaction:
        """`user` clicks the button `custom_id` on a message (object or id)."""
        stored = self._component_message(user, message)
        component = _find_component(stored, custom_id)
        if component["type"] != BUTTON:
            raise ValueError(f"component {custom_id!r} is type {component['type']}, not a button")
        if component.get("disabled"):
            raise ValueError(f"button {custom_id!r} is disabled")
        data = {"custom_id": custom_id, "component_type": BUTTON}
        return await self.interact(MESSAGE_COMPONENT, user, self._channel_of(stored), data, stored)

    async def select(
        self, user: User, message: Mapping[str, Any] | str, custom_id: str, values: list[str]
    ) -> Interaction:
        """`user` picks `values` in the select menu `custom_id` on a message."""
        stored = self._component_message(user, message)
        component = _find_component(stored, custom_id)
        allowed = [option["value"] for option in component.get("options", [])]
        if allowed and not set(values) <= set(allowed):
            raise ValueError(f"values {values} not among the select's options {allowed}")
        data = {"custom_id": custom_id, "component_type": component["type"], "values": values}
        return await self.interact(MESSAGE_COMPONENT, user, self._channel_of(stored), data, stored)

    async def submit_modal(
        self,
        user: User,
        source: Interaction,
        values: Mapping[str, str],
        *,
        custom_id: str | None = None,
    ) -> Interaction:
        """`user` submits the modal the bot answered `source` with, typing `values` (text input
        custom_id -> text)."""
        modal = source.modal
        if modal is None:
            raise ValueError(f"interaction {source.id} was not answered with a modal")
        if custom_id is not None and custom_id != modal["custom_id"]:
            raise ValueError(f"the modal's custom_id is {modal['custom_id']!r}, not {custom_id!r}")
        data = {
            "custom_id": modal["custom_id"],
            "components": modal_submit_components(modal, values),
        }
        message = None
        if source.message_id is not None:
            message = self.world.find_message(source.message_id)[1]
        # discord.py registers a modal only after Discord has answered its send_modal call, so
        # a submit within milliseconds can beat the registration. No person types that fast.
        await asyncio.sleep(MODAL_TYPING_S)
        return await self.interact(MODAL_SUBMIT, user, source.channel, data, message)

    def _component_message(self, user: User, message: Mapping[str, Any] | str) -> dict[str, Any]:
        message_id = message if isinstance(message, str) else message["id"]
        channel, stored = self.world.find_message(message_id)
        self._check_can_post(user, channel)
        if int(stored.get("flags") or 0) & EPHEMERAL:
            owner = stored.get("interaction_metadata", {}).get("user", {}).get("id")
            if owner != user.id:
                raise ValueError(f"{user.username} cannot see ephemeral message {message_id}")
        return stored

    def _channel_of(self, message: Mapping[str, Any]) -> Channel:
        return self.world.channels[message["channel_id"]]

    async def interact(
        self,
        kind: int,
        user: User,
        channel: Channel,
        data: dict[str, Any],
        message: dict[str, Any] | None = None,
    ) -> Interaction:
        """Inject an interaction of type `kind` with `data` as given, past the checks that
        slash_command/click/select/submit_modal make: what a modified client could send (for
        tests of the bot's own validation). `message` is the message a component sits on."""
        payload = interaction_payload(
            self.world, kind=kind, user=user, channel=channel, data=data, message=message
        )
        loop = asyncio.get_running_loop()
        interaction = Interaction(
            id=payload["id"],
            token=payload["token"],
            type=kind,
            user=user,
            channel=channel,
            payload=payload,
            created=loop.time(),
            callback=loop.create_future(),
            message_id=message["id"] if message is not None else None,
        )
        self.interactions[interaction.id] = interaction
        await self.gateway.dispatch("INTERACTION_CREATE", payload)
        return interaction

    # The first e2e helpers called it by this name; kept so they keep working.
    _interact = interact

    # -- waiting --------------------------------------------------------------------------------

    async def wait_for_response(
        self, interaction: Interaction, *, timeout: float = 5.0
    ) -> Response:
        """Wait for the bot's callback to `interaction`; the callback body plus the original
        response message and followups as they stand when it returns."""
        try:
            body = await asyncio.wait_for(asyncio.shield(interaction.callback), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"the bot did not answer interaction {interaction.id} "
                f"({interaction.payload['data']}) within {timeout} s"
            ) from None
        return self._response(interaction, body)

    async def wait_for_followups(
        self, interaction: Interaction, count: int = 1, *, timeout: float = 5.0
    ) -> Response:
        """Wait until the bot has sent `count` followups to `interaction`."""
        await self.wait_for(
            lambda: len(interaction.followup_ids) >= count,
            timeout=timeout,
            what=f"{count} followups to interaction {interaction.id}",
        )
        return self._response(interaction, interaction.callback.result())

    def _response(self, interaction: Interaction, body: dict[str, Any]) -> Response:
        original = None
        if interaction.original_message_id is not None:
            original = self.world.find_message(interaction.original_message_id)[1]
        followups = [self.world.find_message(mid)[1] for mid in interaction.followup_ids]
        return Response(body["type"], body.get("data"), original, followups)

    async def wait_for(
        self, predicate: Callable[[], T], *, timeout: float = 5.0, what: str | None = None
    ) -> T:
        """Poll `predicate` (every 10 ms) until it returns something truthy, and return that."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if loop.time() >= deadline:
                raise TimeoutError(f"timed out after {timeout} s waiting for {what or predicate}")
            await asyncio.sleep(0.01)


def _find_component(message: Mapping[str, Any], custom_id: str) -> dict[str, Any]:
    found: list[str] = []

    def walk(components: list[dict[str, Any]]) -> dict[str, Any] | None:
        for component in components:
            if "custom_id" in component:
                found.append(component["custom_id"])
                if component["custom_id"] == custom_id:
                    return component
            for key in ("components", "accessory", "component"):
                child = component.get(key)
                children = [child] if isinstance(child, dict) else child or []
                hit = walk(children)
                if hit is not None:
                    return hit
        return None

    hit = walk(message.get("components") or [])
    if hit is None:
        raise ValueError(f"message {message['id']} has no component {custom_id!r}; it has {found}")
    return hit


class StandInThread:
    """A StandIn running on its own event loop in a daemon thread, for synchronous callers.

    with StandInThread() as thread:
        alice = thread.run(thread.standin.add_member("alice"))
    """

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="standin", daemon=True)
        self._standin: StandIn | None = None

    @property
    def standin(self) -> StandIn:
        if self._standin is None:
            raise RuntimeError("the stand-in thread is not started")
        return self._standin

    def start(self) -> StandIn:
        self._thread.start()

        async def make() -> StandIn:
            return await StandIn(**self._options).start()

        self._standin = self.run(make())
        return self._standin

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        """Run a coroutine on the stand-in's loop and return its result."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)

    def call(self, fn: Callable[[], T], timeout: float | None = 30.0) -> T:
        """Run a plain function on the stand-in's loop (safe reads of its state)."""

        async def wrapped() -> T:
            return fn()

        return self.run(wrapped(), timeout)

    def stop(self) -> None:
        if self._standin is not None:
            self.run(self._standin.stop())
            self._standin = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> StandInThread:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
