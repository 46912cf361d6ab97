"""The stand-in's REST API under /api/v10 (https://discord.com/developers/docs/reference).

Every request is recorded as a `RestCall`. Unknown routes answer Discord's 404 JSON
(`{"message": "404: Not Found", "code": 0}`) so tests notice them; injected faults (`Fault`) answer
429 with Retry-After, X-RateLimit-* and `Via` headers (without `Via` discord.py takes a 429 for a
Cloudflare ban) or a 5xx. JSON goes out with Content-Type exactly `application/json`: discord.py
parses nothing else.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web

from devstack.standin.gateway import Gateway
from devstack.standin.interactions import (
    APPLICATION_COMMAND,
    APPLICATION_COMMAND_AUTOCOMPLETE,
    AUTOCOMPLETE_RESULT,
    CHANNEL_MESSAGE_WITH_SOURCE,
    DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE,
    DEFERRED_UPDATE_MESSAGE,
    MODAL,
    MODAL_SUBMIT,
    UPDATE_MESSAGE,
    Interaction,
)
from devstack.standin.mentions import MentionsError, resolve
from devstack.standin.state import (
    EPHEMERAL,
    GUILD_TEXT,
    LOADING,
    PRIVATE_THREAD,
    PUBLIC_THREAD,
    Channel,
    StoredFile,
    User,
    World,
    now_iso,
)

JSON = "application/json"


class DiscordError(Exception):
    """An error answered as Discord's JSON error body."""

    def __init__(
        self, status: int, code: int, message: str, errors: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.body: dict[str, Any] = {"message": message, "code": code}
        if errors is not None:
            self.body["errors"] = errors


@dataclass
class RestCall:
    """One request the bot made and what the stand-in answered."""

    method: str
    path: str  # below /api/v10, e.g. /channels/123/messages
    route: str | None  # the matched route template, e.g. /channels/{channel_id}/messages
    params: dict[str, str]
    query: dict[str, str]
    json: Any
    files: list[StoredFile]
    headers: dict[str, str]
    at: float
    status: int = 0
    response: Any = None
    fault: bool = False  # answered by an injected fault


@dataclass
class Fault:
    """Answer the next `times` requests matching `method` and `pattern` with `status`."""

    method: str
    pattern: str  # a route template, or a glob over the path (e.g. /channels/*/messages)
    status: int
    times: int
    retry_after: float = 0.2
    is_global: bool = False
    hits: int = 0

    def matches(self, method: str, path: str, route: str | None) -> bool:
        if self.hits >= self.times or self.method not in ("*", method):
            return False
        return self.pattern == route or fnmatch.fnmatchcase(path, self.pattern)


Handler = Callable[["RestCall"], Awaitable[Any]]


@dataclass
class _Route:
    method: str
    template: str
    regex: re.Pattern[str]
    handler: Handler


def _compile(template: str) -> re.Pattern[str]:
    # {name} matches one path segment; "@original"/"@me" stay literal.
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return re.compile(f"^{pattern}$")


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """JSON with Content-Type exactly `application/json` (no charset), as discord.py requires."""
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        headers={"Content-Type": JSON, **(headers or {})},
    )


class Rest:
    """Routes, recording, faults and the handlers that act on the World and the Gateway."""

    def __init__(
        self,
        world: World,
        gateway: Gateway,
        *,
        token: str,
        base_url: Callable[[], str],
        interactions: dict[str, Interaction],
        callback_deadline_s: float | None,
    ) -> None:
        self.world = world
        self.gateway = gateway
        self.token = token
        self._base_url = base_url
        self.interactions = interactions  # by id
        self.callback_deadline_s = callback_deadline_s
        self.calls: list[RestCall] = []
        self.faults: list[Fault] = []
        self._routes: list[_Route] = []
        self._register_routes()

    # -- plumbing -------------------------------------------------------------------------------

    def route(self, method: str, template: str, handler: Handler) -> None:
        self._routes.append(_Route(method, template, _compile(template), handler))

    def _match(self, method: str, path: str) -> tuple[_Route | None, dict[str, str], bool]:
        """(route, params, path_known): path_known is True when only the method is wrong."""
        path_known = False
        for route in self._routes:
            found = route.regex.match(path)
            if found is None:
                continue
            path_known = True
            if route.method == method:
                return route, found.groupdict(), True
        return None, {}, path_known

    async def handle(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        route, params, path_known = self._match(request.method, path)
        body, files = await _read_body(request)
        call = RestCall(
            method=request.method,
            path=path,
            route=route.template if route else None,
            params=params,
            query=dict(request.query),
            json=body,
            files=files,
            headers={k: v for k, v in request.headers.items() if k.lower().startswith("x-")},
            at=time.time(),
        )
        self.calls.append(call)
        return await self._answer(request, call, route, path_known)

    async def _answer(
        self, request: web.Request, call: RestCall, route: _Route | None, path_known: bool
    ) -> web.Response:
        for fault in self.faults:
            if fault.matches(call.method, call.path, call.route):
                fault.hits += 1
                call.fault = True
                return self._fault_response(call, fault)
        if route is None:
            call.status = 405 if path_known else 404
            call.response = (
                {"message": "405: Method Not Allowed", "code": 0}
                if path_known
                else {"message": "404: Not Found", "code": 0}
            )
            return json_response(call.response, call.status)
        needs_auth = not call.path.startswith(("/interactions/", "/webhooks/"))
        if needs_auth and request.headers.get("Authorization") != f"Bot {self.token}":
            call.status, call.response = 401, {"message": "401: Unauthorized", "code": 0}
            return json_response(call.response, 401)
        try:
            result = await route.handler(call)
        except DiscordError as error:
            call.status, call.response = error.status, error.body
            return json_response(error.body, error.status)
        if result is None:
            call.status = 204
            return web.Response(status=204)
        call.status, call.response = 200, result
        return json_response(result)

    def _fault_response(self, call: RestCall, fault: Fault) -> web.Response:
        call.status = fault.status
        if fault.status == 429:
            call.response = {
                "message": "You are being rate limited.",
                "retry_after": fault.retry_after,
                "global": fault.is_global,
                "code": 0,
            }
            headers = {
                "Retry-After": f"{fault.retry_after:.3f}",
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": f"{time.time() + fault.retry_after:.3f}",
                "X-RateLimit-Reset-After": f"{fault.retry_after:.3f}",
                "X-RateLimit-Bucket": "standin-" + (call.route or call.path).replace("/", "-"),
                "X-RateLimit-Scope": "global" if fault.is_global else "user",
                "Via": "1.1 google",
            }
            if fault.is_global:
                headers["X-RateLimit-Global"] = "true"
            return json_response(call.response, 429, headers)
        reason = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
        call.response = {
            "message": f"{fault.status}: {reason.get(fault.status, 'Error')}",
            "code": 0,
        }
        return json_response(call.response, fault.status)

    # -- routes ---------------------------------------------------------------------------------

    def _register_routes(self) -> None:
        r = self.route
        r("GET", "/gateway", self.get_gateway)
        r("GET", "/gateway/bot", self.get_gateway_bot)
        r("GET", "/users/@me", self.get_me)
        r("GET", "/users/{user_id}", self.get_user)
        r("POST", "/users/@me/channels", self.open_dm)
        r("GET", "/applications/@me", self.get_application)
        r("GET", "/oauth2/applications/@me", self.get_application)
        for scope in ("/applications/{app_id}", "/applications/{app_id}/guilds/{guild_id}"):
            r("GET", scope + "/commands", self.get_commands)
            r("PUT", scope + "/commands", self.put_commands)
            r("POST", scope + "/commands", self.post_command)
        r("POST", "/interactions/{interaction_id}/{token}/callback", self.interaction_callback)
        r("POST", "/webhooks/{app_id}/{token}", self.post_followup)
        for verb, handler in (
            ("GET", self.get_webhook_message),
            ("PATCH", self.patch_webhook_message),
            ("DELETE", self.delete_webhook_message),
        ):
            r(verb, "/webhooks/{app_id}/{token}/messages/{message_id}", handler)
        r("GET", "/channels/{channel_id}", self.get_channel)
        r("PATCH", "/channels/{channel_id}", self.patch_channel)
        r("GET", "/channels/{channel_id}/messages", self.list_messages)
        r("POST", "/channels/{channel_id}/messages", self.post_message)
        r("GET", "/channels/{channel_id}/messages/{message_id}", self.get_message)
        r("PATCH", "/channels/{channel_id}/messages/{message_id}", self.patch_message)
        r("DELETE", "/channels/{channel_id}/messages/{message_id}", self.delete_message)
        r("POST", "/channels/{channel_id}/typing", self.typing)
        for pins in ("/channels/{channel_id}/pins", "/channels/{channel_id}/messages/pins"):
            r("GET", pins, self.get_pins)
            r("PUT", pins + "/{message_id}", self.pin)
            r("DELETE", pins + "/{message_id}", self.unpin)
        r("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", self.react)
        r("POST", "/channels/{channel_id}/threads", self.create_thread)
        r("POST", "/channels/{channel_id}/messages/{message_id}/threads", self.create_thread)
        r("PUT", "/channels/{channel_id}/thread-members/{user_id}", self.add_thread_member)
        r("DELETE", "/channels/{channel_id}/thread-members/{user_id}", self.remove_thread_member)
        r("GET", "/channels/{channel_id}/thread-members", self.get_thread_members)
        r("GET", "/channels/{channel_id}/thread-members/{user_id}", self.get_thread_member)
        r("GET", "/guilds/{guild_id}", self.get_guild)
        r("GET", "/guilds/{guild_id}/roles", self.get_roles)
        r("GET", "/guilds/{guild_id}/channels", self.get_guild_channels)
        r("GET", "/guilds/{guild_id}/members", self.list_members)
        r("GET", "/guilds/{guild_id}/members/{user_id}", self.get_member)

    # -- lookups --------------------------------------------------------------------------------

    def _channel(self, channel_id: str) -> Channel:
        channel = self.world.channels.get(channel_id)
        if channel is None:
            raise DiscordError(404, 10003, "Unknown Channel")
        return channel

    def _message(self, channel: Channel, message_id: str) -> dict[str, Any]:
        message = self.world.messages.get(channel.id, {}).get(message_id)
        # Ephemeral messages exist only for their user: the channel routes cannot see them.
        if message is None or int(message.get("flags") or 0) & EPHEMERAL:
            raise DiscordError(404, 10008, "Unknown Message")
        return message

    def _guild(self, guild_id: str) -> None:
        if guild_id != self.world.guild_id:
            raise DiscordError(404, 10004, "Unknown Guild")

    def _interaction_by_token(self, call: RestCall) -> Interaction:
        if call.params["app_id"] != self.world.application_id:
            raise DiscordError(404, 10015, "Unknown Webhook")
        for interaction in self.interactions.values():
            if interaction.token == call.params["token"]:
                return interaction
        raise DiscordError(401, 50027, "Invalid Webhook Token")

    # -- users, application, gateway ------------------------------------------------------------

    async def get_gateway(self, call: RestCall) -> dict[str, Any]:
        return {"url": self.gateway_url()}

    async def get_gateway_bot(self, call: RestCall) -> dict[str, Any]:
        return {
            "url": self.gateway_url(),
            "shards": 1,
            "session_start_limit": {
                "total": 1000,
                "remaining": 999,
                "reset_after": 14_400_000,
                "max_concurrency": 1,
            },
        }

    def gateway_url(self) -> str:
        return self._base_url().replace("http://", "ws://", 1) + "/gateway"

    async def get_me(self, call: RestCall) -> dict[str, Any]:
        return {**self.world.bot.payload(), "verified": True, "mfa_enabled": False}

    async def get_user(self, call: RestCall) -> dict[str, Any]:
        user = self.world.users.get(call.params["user_id"])
        if user is None:
            raise DiscordError(404, 10013, "Unknown User")
        return user.payload()

    async def open_dm(self, call: RestCall) -> dict[str, Any]:
        user = self.world.users.get(str((call.json or {}).get("recipient_id")))
        if user is None:
            raise DiscordError(400, 50035, "Invalid Form Body", {"recipient_id": "unknown user"})
        return self.world.dm_channel(user).payload

    async def get_application(self, call: RestCall) -> dict[str, Any]:
        world = self.world
        return {
            "id": world.application_id,
            "name": world.bot.username,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "bot_public": False,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": 0,
            "owner": world.owner.payload(),
            "team": None,
            "bot": world.bot.payload(),
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "tags": [],
            "install_params": None,
            "integration_types_config": {"0": {}},
            "approximate_guild_count": 1,
        }

    # -- application commands -------------------------------------------------------------------

    def _command_scope(self, call: RestCall) -> str | None:
        if call.params["app_id"] != self.world.application_id:
            raise DiscordError(403, 50001, "Missing Access")
        guild_id = call.params.get("guild_id")
        if guild_id is not None:
            self._guild(guild_id)
        return guild_id

    def _stored_command(
        self, body: dict[str, Any], guild_id: str | None, old: dict[str, Any] | None
    ) -> dict[str, Any]:
        if not isinstance(body, dict) or not body.get("name"):
            raise DiscordError(400, 50035, "Invalid Form Body", {"name": "required"})
        command = {
            "type": 1,
            "description": "",
            "options": [],
            "default_member_permissions": None,
            "nsfw": False,
            **body,
            "id": old["id"] if old else self.world.snowflakes.next(),
            "application_id": self.world.application_id,
            "version": self.world.snowflakes.next(),
        }
        if guild_id is not None:
            command["guild_id"] = guild_id
        return command

    async def get_commands(self, call: RestCall) -> list[dict[str, Any]]:
        return list(self.world.commands.get(self._command_scope(call), {}).values())

    async def put_commands(self, call: RestCall) -> list[dict[str, Any]]:
        guild_id = self._command_scope(call)
        old = self.world.commands.get(guild_id, {})
        fresh = {}
        for body in call.json or []:
            command = self._stored_command(body, guild_id, _same_name(old, body))
            fresh[command["name"]] = command
        self.world.commands[guild_id] = fresh
        return list(fresh.values())

    async def post_command(self, call: RestCall) -> dict[str, Any]:
        guild_id = self._command_scope(call)
        scope = self.world.commands.setdefault(guild_id, {})
        command = self._stored_command(call.json, guild_id, _same_name(scope, call.json))
        scope[command["name"]] = command
        return command

    # -- interactions ---------------------------------------------------------------------------

    async def interaction_callback(self, call: RestCall) -> dict[str, Any]:
        interaction = self.interactions.get(call.params["interaction_id"])
        if interaction is None or interaction.token != call.params["token"]:
            raise DiscordError(404, 10062, "Unknown interaction")
        if interaction.responded:
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        loop_time = _loop_time()
        if (
            self.callback_deadline_s is not None
            and loop_time - interaction.created > self.callback_deadline_s
        ):
            # Discord gives the bot 3 s for the initial response; after that the token is dead.
            raise DiscordError(404, 10062, "Unknown interaction")
        body = call.json or {}
        kind = body.get("type")
        data = body.get("data") or {}
        message: dict[str, Any] | None = None
        loading = False
        if kind == CHANNEL_MESSAGE_WITH_SOURCE:
            message = await self._create_response_message(interaction, data, call.files)
        elif kind == DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE:
            loading = True
            flags = LOADING | (int(data.get("flags") or 0) & EPHEMERAL)
            message = await self._create_response_message(interaction, {"flags": flags}, [])
        elif kind in (DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE):
            if interaction.message_id is None:
                raise DiscordError(400, 40004, "Interaction has no message to update")
            interaction.original_message_id = interaction.message_id
            if kind == UPDATE_MESSAGE:
                channel, target = self.world.find_message(interaction.message_id)
                message = await self._edit_message(channel, target, data, call.files)
        elif kind == AUTOCOMPLETE_RESULT:
            if interaction.type != APPLICATION_COMMAND_AUTOCOMPLETE:
                raise DiscordError(400, 50035, "Invalid Form Body", {"type": "not autocomplete"})
            if len(data.get("choices") or []) > 25:
                raise DiscordError(400, 50035, "Invalid Form Body", {"choices": "25 or fewer"})
        elif interaction.type == APPLICATION_COMMAND_AUTOCOMPLETE:
            raise DiscordError(400, 50035, "Invalid Form Body", {"type": "autocomplete needs 8"})
        elif kind == MODAL:
            if interaction.type == MODAL_SUBMIT:
                raise DiscordError(400, 50035, "Invalid Form Body", {"type": "modal after modal"})
            if not data.get("custom_id") or not data.get("components"):
                raise DiscordError(400, 50035, "Invalid Form Body", {"data": "modal needs fields"})
        else:
            raise DiscordError(400, 50035, "Invalid Form Body", {"type": f"bad type {kind!r}"})
        interaction.callback.set_result(body)
        resource: dict[str, Any] = {"type": kind}
        if message is not None:
            resource["message"] = message
        return {
            "interaction": {
                "id": interaction.id,
                "type": interaction.type,
                "activity_instance_id": None,
                "response_message_id": message["id"] if message else None,
                "response_message_loading": loading,
                "response_message_ephemeral": bool(
                    message and int(message.get("flags") or 0) & EPHEMERAL
                ),
            },
            "resource": resource,
        }

    async def _create_response_message(
        self,
        interaction: Interaction,
        data: dict[str, Any],
        files: list[StoredFile],
        *,
        followup: bool = False,
    ) -> dict[str, Any]:
        flags = int(data.get("flags") or 0)
        extra: dict[str, Any] = {
            "webhook_id": self.world.application_id,
            "application_id": self.world.application_id,
            "interaction_metadata": {
                "id": interaction.id,
                "type": interaction.type,
                "user": interaction.user.payload(),
                "authorizing_integration_owners": interaction.payload.get(
                    "authorizing_integration_owners", {}
                ),
            },
        }
        # Message types: 20 CHAT_INPUT_COMMAND for a command's response, else 0 DEFAULT.
        message_type = 20 if interaction.type == APPLICATION_COMMAND and not followup else 0
        message = self._new_message(
            interaction.channel, data, files, message_type=message_type, flags=flags, extra=extra
        )
        if followup:
            interaction.followup_ids.append(message["id"])
        else:
            interaction.original_message_id = message["id"]
        if not flags & EPHEMERAL:
            await self.gateway.dispatch("MESSAGE_CREATE", self.world.gateway_message(message))
        return message

    def _original(
        self, interaction: Interaction, message_id: str
    ) -> tuple[Channel, dict[str, Any]]:
        if message_id == "@original":
            if interaction.original_message_id is None:
                raise DiscordError(404, 10008, "Unknown Message")
            message_id = interaction.original_message_id
        elif message_id not in interaction.followup_ids and message_id != (
            interaction.original_message_id
        ):
            raise DiscordError(404, 10008, "Unknown Message")
        return self.world.find_message(message_id)

    async def post_followup(self, call: RestCall) -> dict[str, Any] | None:
        interaction = self._interaction_by_token(call)
        if not interaction.responded:
            raise DiscordError(404, 10015, "Unknown Webhook")
        loading = self._loading_original(interaction)
        if loading is not None:
            # The first followup after a deferred ("thinking") response replaces the loading
            # message, keeping the ephemerality chosen when deferring; it is then both the
            # original response and the first followup.
            channel, original = loading
            body = {k: v for k, v in (call.json or {}).items() if k != "flags"}
            body["flags"] = int(original["flags"]) & EPHEMERAL
            message = await self._edit_message(channel, original, body, call.files)
            interaction.followup_ids.append(message["id"])
        else:
            message = await self._create_response_message(
                interaction, call.json or {}, call.files, followup=True
            )
        return message if call.query.get("wait", "").lower() in ("true", "1") else None

    def _loading_original(self, interaction: Interaction) -> tuple[Channel, dict[str, Any]] | None:
        if interaction.original_message_id is None:
            return None
        channel, message = self.world.find_message(interaction.original_message_id)
        return (channel, message) if int(message.get("flags") or 0) & LOADING else None

    async def get_webhook_message(self, call: RestCall) -> dict[str, Any]:
        interaction = self._interaction_by_token(call)
        return self._original(interaction, call.params["message_id"])[1]

    async def patch_webhook_message(self, call: RestCall) -> dict[str, Any]:
        interaction = self._interaction_by_token(call)
        channel, message = self._original(interaction, call.params["message_id"])
        data = dict(call.json or {})
        if int(message.get("flags") or 0) & LOADING:
            # Editing a deferred ("thinking") response turns it into a real message.
            data["flags"] = int(message["flags"]) & ~LOADING | int(data.get("flags") or 0)
        return await self._edit_message(channel, message, data, call.files)

    async def delete_webhook_message(self, call: RestCall) -> None:
        interaction = self._interaction_by_token(call)
        channel, message = self._original(interaction, call.params["message_id"])
        await self._delete(channel, message)

    # -- channels and messages ------------------------------------------------------------------

    async def get_channel(self, call: RestCall) -> dict[str, Any]:
        return self._channel(call.params["channel_id"]).payload

    async def patch_channel(self, call: RestCall) -> dict[str, Any]:
        channel = self._channel(call.params["channel_id"])
        body = call.json or {}
        for key in ("name", "topic", "rate_limit_per_user", "locked", "archived", "invitable"):
            if key not in body:
                continue
            if key in ("locked", "archived", "invitable"):
                if "thread_metadata" not in channel.payload:
                    raise DiscordError(400, 50024, "Cannot execute action on this channel type")
                channel.payload["thread_metadata"][key] = body[key]
            else:
                channel.payload[key] = body[key]
        is_thread = channel.type in (PUBLIC_THREAD, PRIVATE_THREAD)
        await self.gateway.dispatch(
            "THREAD_UPDATE" if is_thread else "CHANNEL_UPDATE", channel.payload
        )
        return channel.payload

    async def list_messages(self, call: RestCall) -> list[dict[str, Any]]:
        channel = self._channel(call.params["channel_id"])
        messages = [
            m
            for m in self.world.messages.get(channel.id, {}).values()
            if not int(m.get("flags") or 0) & EPHEMERAL
        ]
        before, after = call.query.get("before"), call.query.get("after")
        if before:
            messages = [m for m in messages if int(m["id"]) < int(before)]
        if after:
            messages = [m for m in messages if int(m["id"]) > int(after)]
        limit = int(call.query.get("limit", 50))
        return list(reversed(messages))[:limit]  # newest first, like Discord

    def _new_message(
        self,
        channel: Channel,
        body: dict[str, Any],
        files: list[StoredFile],
        *,
        message_type: int = 0,
        flags: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        _check_message_body(body, files, creating=True)
        attachments = [
            self.world.attachment_payload(self._base_url(), channel.id, stored) for stored in files
        ]
        reference = body.get("message_reference")
        if reference:
            extra = {**(extra or {}), **self._reference(channel, reference)}
        referenced = (extra or {}).get("referenced_message")
        extra = {
            **(extra or {}),
            **self._mentions(body.get("content") or "", body, referenced),
        }
        message = self.world.new_message(
            channel,
            self.world.bot,
            content=body.get("content") or "",
            embeds=body.get("embeds"),
            components=body.get("components"),
            attachments=attachments,
            flags=int(body.get("flags") or 0) if flags is None else flags,
            message_type=message_type,
            extra=extra,
        )
        self._record_pings(message)
        return message

    def _mentions(
        self, content: str, body: dict[str, Any], referenced: dict[str, Any] | None
    ) -> dict[str, Any]:
        """The `mentions`, `mention_roles` and `mention_everyone` of a message the bot sends or
        edits, by the request's `allowed_mentions`."""
        replied_to = referenced["author"]["id"] if referenced else None
        try:
            pinged = resolve(content, body.get("allowed_mentions"), replied_to=replied_to)
        except MentionsError as exc:
            raise DiscordError(
                400, 50035, "Invalid Form Body", {"allowed_mentions": str(exc)}
            ) from None
        return {
            "mentions": [
                self.world.users[i].payload() for i in pinged.users if i in self.world.users
            ],
            "mention_roles": list(pinged.roles),
            "mention_everyone": pinged.everyone,
        }

    def _record_pings(self, message: dict[str, Any]) -> None:
        self.world.pings.extend((message["id"], user["id"]) for user in message["mentions"])

    def _reference(self, channel: Channel, reference: dict[str, Any]) -> dict[str, Any]:
        """`message_reference` as Discord returns it (string ids, channel and guild filled in)
        plus `referenced_message` for replies."""
        message_id = str(reference.get("message_id"))
        channel_id = str(reference.get("channel_id") or channel.id)
        normalized: dict[str, Any] = {
            "type": int(reference.get("type") or 0),
            "message_id": message_id,
            "channel_id": channel_id,
        }
        if channel.guild_id is not None:
            normalized["guild_id"] = channel.guild_id
        referenced = self.world.messages.get(channel_id, {}).get(message_id)
        if referenced is None and reference.get("fail_if_not_exists", True):
            raise DiscordError(
                400, 50035, "Invalid Form Body", {"message_reference": "Unknown message"}
            )
        extra: dict[str, Any] = {"message_reference": normalized}
        if referenced is not None:
            extra["referenced_message"] = {
                k: v for k, v in referenced.items() if k != "referenced_message"
            }
            extra["type"] = 19  # REPLY
        return extra

    async def post_message(self, call: RestCall) -> dict[str, Any]:
        channel = self._channel(call.params["channel_id"])
        message = self._new_message(channel, call.json or {}, call.files)
        await self.gateway.dispatch("MESSAGE_CREATE", self.world.gateway_message(message))
        return message

    async def get_message(self, call: RestCall) -> dict[str, Any]:
        channel = self._channel(call.params["channel_id"])
        return self._message(channel, call.params["message_id"])

    async def patch_message(self, call: RestCall) -> dict[str, Any]:
        channel = self._channel(call.params["channel_id"])
        message = self._message(channel, call.params["message_id"])
        if message["author"]["id"] != self.world.bot.id:
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        return await self._edit_message(channel, message, call.json or {}, call.files)

    async def _edit_message(
        self,
        channel: Channel,
        message: dict[str, Any],
        body: dict[str, Any],
        files: list[StoredFile],
    ) -> dict[str, Any]:
        _check_message_body(body, files, creating=False)
        for key in ("content", "embeds", "components", "flags"):
            if key in body and body[key] is not None:
                message[key] = body[key]
        if body.get("content") is not None:
            # An edit's content is parsed again, by the edit's own allowed_mentions.
            message.update(self._mentions(body["content"], body, message.get("referenced_message")))
            self._record_pings(message)
        if "attachments" in body or files:
            # `attachments` lists the existing attachments to keep (by id); new files add to them.
            keep = {str(a.get("id")) for a in body.get("attachments") or []}
            kept = [a for a in message["attachments"] if a["id"] in keep]
            if "attachments" not in body:
                kept = list(message["attachments"])
            new = [
                self.world.attachment_payload(self._base_url(), channel.id, stored)
                for stored in files
            ]
            message["attachments"] = kept + new
        message["edited_timestamp"] = now_iso()
        if not int(message.get("flags") or 0) & EPHEMERAL:
            await self.gateway.dispatch("MESSAGE_UPDATE", self.world.gateway_message(message))
        return message

    async def delete_message(self, call: RestCall) -> None:
        channel = self._channel(call.params["channel_id"])
        await self._delete(channel, self._message(channel, call.params["message_id"]))

    async def _delete(self, channel: Channel, message: dict[str, Any]) -> None:
        del self.world.messages[channel.id][message["id"]]
        event = {"id": message["id"], "channel_id": channel.id}
        if channel.guild_id is not None:
            event["guild_id"] = channel.guild_id
        if not int(message.get("flags") or 0) & EPHEMERAL:
            await self.gateway.dispatch("MESSAGE_DELETE", event)

    async def typing(self, call: RestCall) -> None:
        self._channel(call.params["channel_id"])

    async def get_pins(self, call: RestCall) -> Any:
        channel = self._channel(call.params["channel_id"])
        pinned = [self._message(channel, mid) for mid in self.world.pins.get(channel.id, [])]
        if "/messages/pins" in call.path:
            return {
                "items": [{"pinned_at": now_iso(), "message": m} for m in pinned],
                "has_more": False,
            }
        return pinned

    async def pin(self, call: RestCall) -> None:
        channel = self._channel(call.params["channel_id"])
        message = self._message(channel, call.params["message_id"])
        pins = self.world.pins.setdefault(channel.id, [])
        if message["id"] not in pins:
            pins.insert(0, message["id"])
        message["pinned"] = True
        event = {"channel_id": channel.id, "last_pin_timestamp": now_iso()}
        if channel.guild_id is not None:
            event["guild_id"] = channel.guild_id
        await self.gateway.dispatch("CHANNEL_PINS_UPDATE", event)

    async def unpin(self, call: RestCall) -> None:
        channel = self._channel(call.params["channel_id"])
        message = self._message(channel, call.params["message_id"])
        pins = self.world.pins.setdefault(channel.id, [])
        if message["id"] in pins:
            pins.remove(message["id"])
        message["pinned"] = False

    async def react(self, call: RestCall) -> None:
        channel = self._channel(call.params["channel_id"])
        self._message(channel, call.params["message_id"])

    # -- threads --------------------------------------------------------------------------------

    async def create_thread(self, call: RestCall) -> dict[str, Any]:
        parent = self._channel(call.params["channel_id"])
        if parent.type != GUILD_TEXT:
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        body = call.json or {}
        name = body.get("name")
        if not name or len(name) > 100:
            raise DiscordError(400, 50035, "Invalid Form Body", {"name": f"bad name {name!r}"})
        from_message = "message_id" in call.params
        if from_message:
            self._message(parent, call.params["message_id"])
        kind = PUBLIC_THREAD if from_message else int(body.get("type") or PRIVATE_THREAD)
        thread = self.world.add_thread(parent, name, self.world.bot, kind=kind)
        if "invitable" in body:
            thread.payload["thread_metadata"]["invitable"] = bool(body["invitable"])
        if body.get("auto_archive_duration"):
            thread.payload["thread_metadata"]["auto_archive_duration"] = int(
                body["auto_archive_duration"]
            )
        await self.gateway.dispatch("THREAD_CREATE", {**thread.payload, "newly_created": True})
        return thread.payload

    async def add_thread_member(self, call: RestCall) -> None:
        thread = self._channel(call.params["channel_id"])
        if thread.type not in (PUBLIC_THREAD, PRIVATE_THREAD):
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        user = self._thread_user(call.params["user_id"])
        if user.id not in thread.member_ids:
            thread.member_ids.append(user.id)
            thread.payload["member_count"] = len(thread.member_ids)
            await self.gateway.dispatch(
                "THREAD_MEMBERS_UPDATE",
                {
                    "id": thread.id,
                    "guild_id": thread.guild_id,
                    "member_count": len(thread.member_ids),
                    "added_members": [
                        {
                            "id": thread.id,
                            "user_id": user.id,
                            "join_timestamp": now_iso(),
                            "flags": 0,
                            "member": user.member_payload(),
                        }
                    ],
                },
            )

    async def remove_thread_member(self, call: RestCall) -> None:
        thread = self._channel(call.params["channel_id"])
        user_id = self._thread_user(call.params["user_id"]).id
        if user_id in thread.member_ids:
            thread.member_ids.remove(user_id)
            thread.payload["member_count"] = len(thread.member_ids)

    def _thread_user(self, user_id: str) -> User:
        user = self.world.bot if user_id == "@me" else self.world.users.get(user_id)
        if user is None or user.member_roles is None:
            raise DiscordError(404, 10007, "Unknown Member")
        return user

    def _thread_member(self, thread: Channel, user_id: str) -> dict[str, Any]:
        return {
            "id": thread.id,
            "user_id": user_id,
            "join_timestamp": thread.payload.get("thread_metadata", {}).get(
                "create_timestamp", now_iso()
            ),
            "flags": 0,
        }

    async def get_thread_members(self, call: RestCall) -> list[dict[str, Any]]:
        thread = self._channel(call.params["channel_id"])
        return [self._thread_member(thread, user_id) for user_id in thread.member_ids]

    async def get_thread_member(self, call: RestCall) -> dict[str, Any]:
        thread = self._channel(call.params["channel_id"])
        user = self._thread_user(call.params["user_id"])
        if user.id not in thread.member_ids:
            raise DiscordError(404, 10007, "Unknown Member")
        return self._thread_member(thread, user.id)

    # -- guild ----------------------------------------------------------------------------------

    async def get_guild(self, call: RestCall) -> dict[str, Any]:
        self._guild(call.params["guild_id"])
        members = self.world.members()
        return {
            **self.world.guild_payload(),
            "approximate_member_count": len(members),
            "approximate_presence_count": 0,
        }

    async def get_roles(self, call: RestCall) -> list[dict[str, Any]]:
        self._guild(call.params["guild_id"])
        return list(self.world.roles.values())

    async def get_guild_channels(self, call: RestCall) -> list[dict[str, Any]]:
        self._guild(call.params["guild_id"])
        return [c.payload for c in self.world.channels.values() if c.type == GUILD_TEXT]

    async def list_members(self, call: RestCall) -> list[dict[str, Any]]:
        self._guild(call.params["guild_id"])
        members = sorted(self.world.members(), key=lambda user: int(user.id))
        after = int(call.query.get("after", 0))
        limit = int(call.query.get("limit", 1))
        return [u.member_payload() for u in members if int(u.id) > after][:limit]

    async def get_member(self, call: RestCall) -> dict[str, Any]:
        self._guild(call.params["guild_id"])
        user = self.world.users.get(call.params["user_id"])
        if user is None or user.member_roles is None:
            raise DiscordError(404, 10007, "Unknown Member")
        return user.member_payload()


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


def _same_name(commands: dict[str, dict[str, Any]], body: Any) -> dict[str, Any] | None:
    """The stored command named as the command `body` (any JSON) describes, if there is one."""
    name = body.get("name") if isinstance(body, dict) else None
    return commands.get(name) if isinstance(name, str) else None


def _check_message_body(body: dict[str, Any], files: list[StoredFile], *, creating: bool) -> None:
    """Discord's own checks on a message body (the ones that catch real bot bugs)."""
    content = body.get("content")
    if content is not None and len(content) > 2000:
        raise DiscordError(
            400, 50035, "Invalid Form Body", {"content": "Must be 2000 or fewer in length."}
        )
    if len(body.get("embeds") or []) > 10:
        raise DiscordError(400, 50035, "Invalid Form Body", {"embeds": "Must be 10 or fewer."})
    if len(body.get("components") or []) > 5:
        raise DiscordError(400, 50035, "Invalid Form Body", {"components": "Must be 5 or fewer."})
    for embed in body.get("embeds") or []:
        if len(embed.get("description") or "") > 4096:
            raise DiscordError(400, 50035, "Invalid Form Body", {"embeds": "description > 4096"})
    if (
        creating
        and not (
            content or body.get("embeds") or body.get("components") or files or body.get("poll")
        )
        and not int(body.get("flags") or 0) & LOADING
    ):
        raise DiscordError(400, 50006, "Cannot send an empty message")


async def _read_body(request: web.Request) -> tuple[Any, list[StoredFile]]:
    """The JSON body and uploaded files of a request (JSON, or multipart with payload_json)."""
    if not request.can_read_body:
        return None, []
    content_type = request.content_type
    if content_type == "multipart/form-data":
        body: Any = None
        files: list[StoredFile] = []
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                raise ValueError(f"a nested multipart body is not supported: {part!r}")
            if part.name == "payload_json":
                body = json.loads(await part.text())
            elif part.filename is not None:
                files.append(
                    StoredFile(
                        part.filename,
                        part.headers.get("Content-Type", "application/octet-stream"),
                        bytes(await part.read()),
                    )
                )
        return body, files
    raw = await request.read()
    if not raw:
        return None, []
    try:
        return json.loads(raw), []
    except json.JSONDecodeError as error:
        raise web.HTTPBadRequest(text=f"body is not JSON: {error}") from error
