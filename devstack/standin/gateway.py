"""The stand-in's websocket gateway (https://discord.com/developers/docs/events/gateway).

It speaks gateway v10 with JSON payloads and, when the client asks for `compress=zlib-stream` (as
discord.py does), one zlib stream per connection flushed with Z_SYNC_FLUSH after every payload,
like Discord. Sessions outlive connections: every dispatched event is numbered and kept, so a
client that RESUMEs after a dropped connection gets every event it missed, in order, then RESUMED.
Events are filtered by the session's intents, and message content is blanked without the
MESSAGE_CONTENT intent, as Discord does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from devstack.standin.state import World

_log = logging.getLogger(__name__)

# Opcodes.
DISPATCH = 0
HEARTBEAT = 1
IDENTIFY = 2
PRESENCE_UPDATE = 3
VOICE_STATE_UPDATE = 4
RESUME = 6
RECONNECT = 7
REQUEST_GUILD_MEMBERS = 8
INVALID_SESSION = 9
HELLO = 10
HEARTBEAT_ACK = 11

# Intents (https://discord.com/developers/docs/events/gateway#gateway-intents).
GUILDS = 1 << 0
GUILD_MEMBERS = 1 << 1
GUILD_MESSAGES = 1 << 9
DIRECT_MESSAGES = 1 << 12
MESSAGE_CONTENT = 1 << 15

# Close codes.
UNKNOWN_ERROR = 4000
UNKNOWN_OPCODE = 4001
DECODE_ERROR = 4002
NOT_AUTHENTICATED = 4003
AUTHENTICATION_FAILED = 4004
ALREADY_AUTHENTICATED = 4005

_GUILD_EVENTS = {
    "GUILD_ROLE_CREATE",
    "GUILD_ROLE_UPDATE",
    "THREAD_UPDATE",
    "CHANNEL_PINS_UPDATE",
    "GUILD_CREATE",
    "GUILD_UPDATE",
    "CHANNEL_CREATE",
    "CHANNEL_UPDATE",
    "THREAD_CREATE",
}
_MEMBER_EVENTS = {
    "GUILD_MEMBER_ADD",
    "GUILD_MEMBER_UPDATE",
    "GUILD_MEMBER_REMOVE",
    "THREAD_MEMBERS_UPDATE",
}
_MESSAGE_EVENTS = {"MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE"}


def required_intent(event: str, data: dict[str, Any]) -> int | None:
    """The intent a session needs to receive `event`, or None when every session gets it."""
    if event in _GUILD_EVENTS:
        return GUILDS
    if event in _MEMBER_EVENTS:
        return GUILD_MEMBERS
    if event in _MESSAGE_EVENTS:
        return GUILD_MESSAGES if "guild_id" in data else DIRECT_MESSAGES
    return None


def without_content(data: dict[str, Any], bot_id: str) -> dict[str, Any]:
    """A message event as a session without MESSAGE_CONTENT sees it: guild messages that are not
    the bot's own and do not mention it lose content, embeds, attachments, components and polls."""
    if "guild_id" not in data:
        return data
    if data.get("author", {}).get("id") == bot_id:
        return data
    if any(user.get("id") == bot_id for user in data.get("mentions", [])):
        return data
    blank = {**data, "content": "", "embeds": [], "attachments": [], "components": []}
    blank.pop("poll", None)
    return blank


@dataclass
class Session:
    """One gateway session: its numbered events survive dropped connections for RESUME."""

    id: str
    intents: int
    events: list[dict[str, Any]] = field(default_factory=list)  # payloads; seq = index + 1
    connection: Connection | None = None
    # Held while sending, so that a RESUME's replay and new dispatches keep their order.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def seq(self) -> int:
        return len(self.events)


class Connection:
    """One websocket: JSON text frames, or one zlib stream when the client asked for it."""

    def __init__(
        self, ws: web.WebSocketResponse, transport: asyncio.Transport | None, *, zlib_stream: bool
    ) -> None:
        self.ws = ws
        self.transport = transport
        self._zlib = zlib.compressobj() if zlib_stream else None
        self._send_lock = asyncio.Lock()

    @property
    def closed(self) -> bool:
        return self.ws.closed

    async def send(self, payload: dict[str, Any]) -> None:
        text = json.dumps(payload, separators=(",", ":"))
        async with self._send_lock:
            if self._zlib is None:
                await self.ws.send_str(text)
            else:
                data = self._zlib.compress(text.encode()) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
                await self.ws.send_bytes(data)


class Gateway:
    """The gateway endpoint plus the stand-in's controls over it (dispatch, drop, reconnect)."""

    def __init__(
        self,
        world: World,
        *,
        token: str,
        resume_url: Callable[[], str],
        heartbeat_interval_ms: int = 41_250,
    ) -> None:
        self.world = world
        self.token = token
        self._resume_url = resume_url
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.sessions: dict[str, Session] = {}
        self.received: list[dict[str, Any]] = []  # every payload clients sent, in order
        self.connections: list[dict[str, str]] = []  # the query of every websocket opened
        self.identifies = 0
        self.resumes = 0
        self._changed = asyncio.Condition()

    # -- controls -------------------------------------------------------------------------------

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send `event` to every session entitled to it (kept for replay when disconnected)."""
        for session in list(self.sessions.values()):
            need = required_intent(event, data)
            if need is not None and not session.intents & need:
                continue
            payload_data = data
            if event in _MESSAGE_EVENTS and not session.intents & MESSAGE_CONTENT:
                payload_data = without_content(data, self.world.bot.id)
            async with session.lock:
                payload = {"op": DISPATCH, "t": event, "s": session.seq + 1, "d": payload_data}
                session.events.append(payload)
                await self._send_live(session, payload)

    async def drop(self, *, code: int = UNKNOWN_ERROR, abrupt: bool = False) -> int:
        """Close every live connection (abrupt: cut the TCP stream without a close frame); the
        sessions stay resumable. Returns how many connections were dropped."""
        dropped = 0
        for session in self.sessions.values():
            connection = session.connection
            if connection is None or connection.closed:
                continue
            session.connection = None
            dropped += 1
            if abrupt:
                if connection.transport is None:
                    raise RuntimeError("cannot abort a websocket without a transport")
                connection.transport.abort()
            else:
                await connection.ws.close(code=code, message=b"stand-in dropped the connection")
        return dropped

    async def send_op(self, op: int, data: Any = None) -> int:
        """Send a non-dispatch opcode (e.g. 7 RECONNECT) to every live connection."""
        sent = 0
        for session in self.sessions.values():
            if session.connection is not None and not session.connection.closed:
                await session.connection.send({"op": op, "d": data, "s": None, "t": None})
                sent += 1
        return sent

    def live_sessions(self) -> list[Session]:
        return [
            s
            for s in self.sessions.values()
            if s.connection is not None and not s.connection.closed
        ]

    async def wait_connected(
        self, *, identifies: int = 1, resumes: int = 0, timeout: float
    ) -> None:
        """Wait until at least `identifies` IDENTIFYs and `resumes` RESUMEs have been answered."""
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(
                    lambda: self.identifies >= identifies and self.resumes >= resumes
                ),
                timeout,
            )

    # -- the websocket --------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        version = request.query.get("v")
        encoding = request.query.get("encoding", "json")
        if version != "10" or encoding != "json":
            raise web.HTTPBadRequest(
                text=f"stand-in speaks v=10 encoding=json, not {request.query_string!r}"
            )
        self.connections.append(dict(request.query))
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        connection = Connection(
            ws, request.transport, zlib_stream=request.query.get("compress") == "zlib-stream"
        )
        await connection.send(
            {
                "op": HELLO,
                "d": {"heartbeat_interval": self.heartbeat_interval_ms},
                "s": None,
                "t": None,
            }
        )
        session: Session | None = None
        try:
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    await ws.close(code=DECODE_ERROR, message=b"expected JSON text frames")
                    break
                try:
                    payload = json.loads(message.data)
                except json.JSONDecodeError:
                    await ws.close(code=DECODE_ERROR, message=b"invalid JSON")
                    break
                self.received.append(payload)
                session = await self._on_payload(connection, session, payload)
        finally:
            if session is not None and session.connection is connection:
                session.connection = None
        return ws

    async def _on_payload(
        self, connection: Connection, session: Session | None, payload: dict[str, Any]
    ) -> Session | None:
        op = payload.get("op")
        # The ops read below carry an object; HEARTBEAT's "d" (a sequence number) is not read.
        raw = payload.get("d")
        data: dict[str, Any] = raw if isinstance(raw, dict) else {}
        if op == HEARTBEAT:
            await connection.send({"op": HEARTBEAT_ACK, "d": None, "s": None, "t": None})
        elif op == IDENTIFY:
            if session is not None:
                await connection.ws.close(code=ALREADY_AUTHENTICATED)
                return session
            if data.get("token") != self.token:
                await connection.ws.close(
                    code=AUTHENTICATION_FAILED, message=b"Authentication failed."
                )
                return None
            session = await self._identify(connection, int(data.get("intents", 0)))
        elif op == RESUME:
            session = await self._resume(connection, data)
        elif session is None:
            await connection.ws.close(code=NOT_AUTHENTICATED, message=b"Not authenticated.")
        elif op == REQUEST_GUILD_MEMBERS:
            await self._member_chunk(session, data)
        elif op in (PRESENCE_UPDATE, VOICE_STATE_UPDATE):
            pass  # accepted; the stand-in has no presences or voice
        else:
            await connection.ws.close(code=UNKNOWN_OPCODE, message=f"Unknown opcode {op}.".encode())
        return session

    async def _identify(self, connection: Connection, intents: int) -> Session:
        session = Session(id=secrets.token_hex(16), intents=intents)
        self.sessions[session.id] = session
        world = self.world
        ready = {
            "v": 10,
            "user": {**world.bot.payload(), "verified": True, "mfa_enabled": False, "email": None},
            "guilds": [{"id": world.guild_id, "unavailable": True}],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self._resume_url(),
            "shard": [0, 1],
            "application": {"id": world.application_id, "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
        }
        async with session.lock:
            session.connection = connection
            for event, data in (("READY", ready), ("GUILD_CREATE", world.guild_create_payload())):
                if event == "GUILD_CREATE" and not intents & GUILDS:
                    continue
                payload = {"op": DISPATCH, "t": event, "s": session.seq + 1, "d": data}
                session.events.append(payload)
                await connection.send(payload)
        async with self._changed:
            self.identifies += 1
            self._changed.notify_all()
        return session

    async def _resume(self, connection: Connection, data: dict[str, Any]) -> Session | None:
        session = self.sessions.get(data.get("session_id", ""))
        if session is None or data.get("token") != self.token:
            # Not resumable: the client must IDENTIFY again.
            await connection.send({"op": INVALID_SESSION, "d": False, "s": None, "t": None})
            return None
        last_seen = int(data.get("seq") or 0)
        async with session.lock:
            session.connection = connection
            for payload in session.events[last_seen:]:
                await connection.send(payload)
            resumed = {"op": DISPATCH, "t": "RESUMED", "s": session.seq + 1, "d": {}}
            session.events.append(resumed)
            await connection.send(resumed)
        async with self._changed:
            self.resumes += 1
            self._changed.notify_all()
        return session

    async def _member_chunk(self, session: Session, data: dict[str, Any]) -> None:
        query = (data.get("query") or "").lower()
        wanted = {str(user_id) for user_id in data.get("user_ids") or []}
        members = [
            user.member_payload()
            for user in self.world.members()
            if (not wanted or user.id in wanted) and user.username.lower().startswith(query)
        ]
        limit = int(data.get("limit") or 0)
        if limit:
            members = members[:limit]
        chunk = {
            "guild_id": self.world.guild_id,
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        async with session.lock:
            payload = {"op": DISPATCH, "t": "GUILD_MEMBERS_CHUNK", "s": session.seq + 1, "d": chunk}
            session.events.append(payload)
            await self._send_live(session, payload)

    async def _send_live(self, session: Session, payload: dict[str, Any]) -> None:
        connection = session.connection
        if connection is None or connection.closed:
            return  # kept in session.events; a RESUME replays it
        try:
            await connection.send(payload)
        except ConnectionResetError:
            # The client went away mid-send; the event is kept for its RESUME.
            _log.info("gateway connection lost while sending %s", payload.get("t"))
            session.connection = None
