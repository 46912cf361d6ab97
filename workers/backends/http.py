"""The HTTP client every API backend shares: timeouts, retries with backoff, SSE, no leaked keys.

Backends are synchronous (the RQ job calls `answer`), so each `ApiClient` owns a private asyncio
event loop, running in a thread of its own, and each call waits for its coroutine there. One loop
and one `ClientSession` per backend instance keep connections (TLS) alive between jobs, and
several jobs of a concurrent worker (`--concurrency N`) share them: their requests run side by
side on the loop, and a batching server (vLLM) sees them at once.

Retries: 429 and 5xx answers, timeouts and connection errors are retried with exponential backoff
(a `Retry-After` header, in seconds or as an HTTP date, wins, capped by `max_retry_after_s`). Any
other 4xx is permanent. A stream is only retried before its first event: after that the
participant may already have seen partial text.

Keys: request headers are never logged or put into an error message, and every message is
scrubbed of the secrets the client was given, in case a server echoes them back.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import json
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp

from workers.backends.base import BackendError

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
_MAX_ERROR_CHARS = 300
# How long a caller waits for its request in one go (see ApiClient.run), and at most for a
# cancelled request to wind down.
_WAIT_SLICE_S = 0.05
_CANCEL_GRACE_S = 2.0


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 2  # extra attempts after the first
    backoff_s: float = 0.5  # first wait; doubles each attempt
    max_backoff_s: float = 8.0
    max_retry_after_s: float = 30.0

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")
        if self.backoff_s < 0 or self.max_backoff_s < 0 or self.max_retry_after_s < 0:
            raise ValueError(f"backoff times must be >= 0, got {self}")

    def delay(self, attempt: int, retry_after: str | None) -> float:
        """Seconds to wait before attempt `attempt + 1` (attempt counts from 0)."""
        advised = parse_retry_after(retry_after)
        if advised is not None:
            return min(advised, self.max_retry_after_s)
        return min(self.backoff_s * 2.0**attempt, self.max_backoff_s)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def retry_delay_in_body(body: bytes) -> str | None:
    """Gemini puts its advice in the error body, not a header: a `google.rpc.RetryInfo` detail
    with `"retryDelay": "13s"`. Returned as seconds text, like a Retry-After value."""
    try:
        error = json.loads(body).get("error") or {}
        details = error.get("details") or []
    except (ValueError, AttributeError):
        return None
    for detail in details:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("RetryInfo"):
            delay = str(detail.get("retryDelay", "")).strip()
            if delay.endswith("s"):
                return delay[:-1]
    return None


class _Retry(Exception):
    """Internal: this attempt failed in a way worth another try."""

    def __init__(self, message: str, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def error_detail(body: bytes) -> str:
    """The useful part of an API error body: OpenAI and Gemini both use {"error": {"message"}}."""
    text = body.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:_MAX_ERROR_CHARS]
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message", "")).strip()
        # Gemini: status ("INVALID_ARGUMENT"); OpenAI: type and code ("invalid_api_key").
        kinds = [str(error[k]) for k in ("status", "type", "code") if isinstance(error.get(k), str)]
        return (f"{message} ({', '.join(kinds)})" if kinds else message)[:_MAX_ERROR_CHARS]
    if isinstance(error, str):
        return error[:_MAX_ERROR_CHARS]
    return text.strip()[:_MAX_ERROR_CHARS]


class ApiClient:
    """JSON POSTs and SSE streams on a private event loop, for one backend instance."""

    def __init__(
        self,
        *,
        name: str,
        timeout_s: float,
        policy: RetryPolicy,
        secrets: tuple[str, ...] = (),
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"{name}: timeout_s must be positive, got {timeout_s}")
        self.name = name
        self.timeout_s = timeout_s
        self.policy = policy
        self._secrets = tuple(s for s in secrets if s)
        self._loop = asyncio.new_event_loop()
        self._session: aiohttp.ClientSession | None = None
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"parley-http-{name}", daemon=True
        )
        self._thread.start()

    def __repr__(self) -> str:
        return f"ApiClient(name={self.name!r}, timeout_s={self.timeout_s})"

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the client's loop and wait for it; safe from any number of threads."""
        if self._loop.is_closed():
            coro.close()
            raise BackendError(f"{self.name}: client is closed")
        finished = threading.Event()

        async def guarded() -> T:
            try:
                return await coro
            finally:
                finished.set()

        future = asyncio.run_coroutine_threadsafe(guarded(), self._loop)
        try:
            # In short waits: a job timeout arrives as an exception raised in this thread (by a
            # signal handler in the main thread, asynchronously in a slot thread), and both are
            # delivered between bytecodes, not inside one long blocking wait.
            while True:
                try:
                    return future.result(timeout=_WAIT_SLICE_S)
                except concurrent.futures.TimeoutError:
                    continue
        except BaseException:
            # Cancel the request now, so it stops talking to the server (and calling back
            # into a job that has ended).
            if not future.done():
                future.cancel()
                finished.wait(_CANCEL_GRACE_S)
            raise

    def close(self) -> None:
        if self._loop.is_closed():
            return
        if self._loop.is_running():
            if self._session is not None:
                asyncio.run_coroutine_threadsafe(self._session.close(), self._loop).result(10)
                self._session = None
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop.close()

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _fail(self, message: str, *, transient: bool) -> BackendError:
        return BackendError(self.scrub(f"{self.name}: {message}"), transient=transient)

    def _session_for_loop(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(raise_for_status=False)
        return self._session

    async def _attempts(self, attempt_once: Callable[[], Coroutine[Any, Any, T]]) -> T:
        last = ""
        for attempt in range(self.policy.retries + 1):
            try:
                return await attempt_once()
            except _Retry as exc:
                last = str(exc)
                if attempt == self.policy.retries:
                    break
                wait = self.policy.delay(attempt, exc.retry_after)
                log.warning(
                    "%s: %s; retry %d/%d in %.1f s",
                    self.name,
                    self.scrub(last),
                    attempt + 1,
                    self.policy.retries,
                    wait,
                )
                await asyncio.sleep(wait)
        raise self._fail(
            f"{last} (gave up after {self.policy.retries + 1} attempts)", transient=True
        )

    async def _check(self, response: aiohttp.ClientResponse) -> None:
        if response.status < 400:
            return
        body = await response.read()
        message = f"HTTP {response.status}: {error_detail(body)}"
        if response.status in RETRY_STATUSES or response.status >= 500:
            advised = response.headers.get("Retry-After") or retry_delay_in_body(body)
            raise _Retry(message, advised)
        raise self._fail(message, transient=False)

    async def get_json(self, url: str, headers: Mapping[str, str]) -> dict[str, Any]:
        return await self._request("GET", url, None, headers)

    async def post_json(
        self, url: str, payload: dict[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        return await self._request("POST", url, payload, headers)

    async def post_multipart(
        self,
        url: str,
        fields: Mapping[str, str],
        files: Mapping[str, tuple[str, bytes, str]],
        headers: Mapping[str, str],
    ) -> dict[str, Any]:
        """POST a multipart/form-data body (`files`: field -> (filename, bytes, content type)),
        as OpenAI's `/audio/transcriptions` takes it; the JSON answer."""

        def form() -> aiohttp.FormData:
            # A FormData is consumed by one request: each attempt builds its own.
            data = aiohttp.FormData()
            for name, value in fields.items():
                data.add_field(name, value)
            for name, (filename, content, content_type) in files.items():
                data.add_field(name, content, filename=filename, content_type=content_type)
            return data

        return await self._request("POST", url, None, headers, form=form)

    async def _request(
        self,
        method: str,
        url: str,
        payload: dict[str, Any] | None,
        headers: Mapping[str, str],
        *,
        form: Callable[[], aiohttp.FormData] | None = None,
    ) -> dict[str, Any]:
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)

        async def once() -> dict[str, Any]:
            body_args: dict[str, Any] = {"data": form()} if form is not None else {"json": payload}
            try:
                async with self._session_for_loop().request(
                    method, url, headers=dict(headers), timeout=timeout, **body_args
                ) as response:
                    await self._check(response)
                    body = await response.read()
            except TimeoutError:
                raise _Retry(f"no answer within {self.timeout_s:g} s") from None
            except aiohttp.ClientError as exc:
                raise _Retry(f"connection failed: {type(exc).__name__}: {exc}") from None
            try:
                data = json.loads(body)
            except ValueError:
                # Never the body itself: it may hold the reply, and error texts reach logs,
                # RQ's failure records and the result stream, which a withdrawal cannot scrub.
                raise self._fail(
                    f"answer is not JSON ({len(body)} bytes)", transient=False
                ) from None
            if not isinstance(data, dict):
                raise self._fail(
                    f"answer is not a JSON object: {type(data).__name__}", transient=False
                )
            return data

        return await self._attempts(once)

    async def post_bytes(
        self, url: str, payload: dict[str, Any], headers: Mapping[str, str]
    ) -> tuple[bytes, str]:
        """POST JSON, get a binary body back (audio): (body, its Content-Type)."""
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)

        async def once() -> tuple[bytes, str]:
            try:
                async with self._session_for_loop().post(
                    url, json=payload, headers=dict(headers), timeout=timeout
                ) as response:
                    await self._check(response)
                    return await response.read(), response.headers.get("Content-Type", "")
            except TimeoutError:
                raise _Retry(f"no answer within {self.timeout_s:g} s") from None
            except aiohttp.ClientError as exc:
                raise _Retry(f"connection failed: {type(exc).__name__}: {exc}") from None

        return await self._attempts(once)

    async def post_sse(
        self,
        url: str,
        payload: dict[str, Any],
        headers: Mapping[str, str],
        on_event: Callable[[dict[str, Any]], None],
    ) -> None:
        """POST and feed each `data:` JSON event of the Server-Sent Events reply to `on_event`.

        The per-read timeout is `timeout_s` (a long answer may stream for longer than that as a
        whole; the RQ job timeout bounds the total). `data: [DONE]` ends the stream.
        """
        timeout = aiohttp.ClientTimeout(
            total=None, connect=self.timeout_s, sock_read=self.timeout_s
        )

        async def once() -> None:
            started = False
            try:
                async with self._session_for_loop().post(
                    url, json=payload, headers=dict(headers), timeout=timeout
                ) as response:
                    await self._check(response)
                    data_lines: list[str] = []
                    async for raw in response.content:
                        line = raw.decode("utf-8").rstrip("\r\n")
                        if line.startswith("data:"):
                            data_lines.append(line[5:].removeprefix(" "))
                            continue
                        if line or not data_lines:
                            continue  # event:, id:, retry:, comments; or a stray blank line
                        data = "\n".join(data_lines)
                        data_lines = []
                        if data == "[DONE]":
                            return
                        started = True
                        on_event(self._event(data))
                    if data_lines and data_lines != ["[DONE]"]:
                        started = True
                        on_event(self._event("\n".join(data_lines)))
            except TimeoutError:
                message = f"no data within {self.timeout_s:g} s"
                if started:
                    raise self._fail(message + " (mid-stream)", transient=True) from None
                raise _Retry(message) from None
            except aiohttp.ClientError as exc:
                message = f"connection failed: {type(exc).__name__}: {exc}"
                if started:
                    raise self._fail(message + " (mid-stream)", transient=True) from None
                raise _Retry(message) from None

        await self._attempts(once)

    def _event(self, data: str) -> dict[str, Any]:
        try:
            event = json.loads(data)
        except ValueError:
            # The event's length only: its text is (part of) the reply.
            raise self._fail(
                f"stream event is not JSON ({len(data)} characters)", transient=False
            ) from None
        if not isinstance(event, dict):
            raise self._fail(
                f"stream event is not a JSON object but {type(event).__name__}", transient=False
            )
        if "error" in event:
            # Both OpenAI and Gemini report errors that happen mid-stream as an error event.
            raise self._fail(f"error in stream: {error_detail(data.encode())}", transient=False)
        return event
