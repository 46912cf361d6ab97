"""Local aiohttp servers that speak the OpenAI chat completions, OpenAI speech (`/audio/speech`)
and Gemini generateContent APIs.

The OpenAI side also answers what vLLM's OpenAI-compatible server adds for the ASR pipeline's
remote stages: text-only chat completions (the LLM stage) and `POST /v1/audio/transcriptions`
(multipart, as OpenAI and vLLM take it; the ASR stage). `answer_delay_s` gives every generation
and transcription a fixed latency, served concurrently (the concurrency test's 1 s server).

They check requests the way the real services document them (auth header, audio part shape,
base64 WAV) and answer in the documented formats, errors included. A test steers a server with a
`script`: behaviours consumed one per generation request (an HTTP error with a JSON body and
headers, or a delay), after which requests succeed again. Per-model behaviour
(`slow_models`, `broken_models`) serves the worker round trip, where the test process cannot
reach into the worker.

The server runs on its own event loop in a thread, so the synchronous backends under test can
call it from the test's thread (or from a worker subprocess).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading
import wave
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

from devstack.redis_servers import free_port


@dataclass
class Behaviour:
    status: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    # For a streamed answer: after the first two events (role, first text), send an error
    # event ("error"), an event that is not JSON ("garbage") or drop the connection ("cut").
    stream_fault: str | None = None


GARBAGE_EVENT = "my secret reply: the patient's name is Ada {not json"


def openai_error(message: str, type_: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def gemini_error(code: int, message: str, status: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


def wav_seconds(b64: str) -> float:
    """Decode the base64 WAV a backend sent; fails the request if it is not one."""
    with wave.open(io.BytesIO(base64.b64decode(b64, validate=True)), "rb") as clip:
        if clip.getnchannels() != 1 or clip.getframerate() != 16_000:
            raise ValueError(
                f"want 16 kHz mono, got {clip.getnchannels()} ch {clip.getframerate()}"
            )
        return clip.getnframes() / clip.getframerate()


SPEECH_FORMATS = {
    # response_format: (container, codec, Content-Type)
    "opus": ("ogg", "libopus", "audio/ogg"),
    "mp3": ("mp3", "libmp3lame", "audio/mpeg"),
    "wav": ("wav", "pcm_s16le", "audio/wav"),
    "flac": ("flac", "flac", "audio/flac"),
}
SPEECH_RATE = 24_000


def voice_pitch(voice: str) -> float:
    """The fake voice's tone in Hz: fixed per voice name, 200–600 Hz."""
    return 200.0 + sum(voice.encode()) * 37 % 400


def speech_request_problem(body: object, models: tuple[str, ...]) -> str | None:
    if not isinstance(body, dict):
        return "The body must be a JSON object."
    for name in ("model", "voice", "input"):
        if not isinstance(body.get(name), str) or not body[name].strip():
            return f"'{name}' is a required non-empty string."
    if body["model"] not in models:
        return f"The model '{body['model']}' does not exist."
    if len(body["input"]) > 4096:
        return "'input' is longer than 4096 characters."
    if body.get("response_format", "mp3") not in SPEECH_FORMATS:
        return f"Unsupported response_format {body.get('response_format')!r}."
    body.setdefault("response_format", "mp3")
    return None


def speech_pcm16(text: str, voice: str) -> bytes:
    """The fake voice as raw 16-bit little-endian mono PCM at SPEECH_RATE: a tone at the voice's
    pitch, 0.25 s per word with short gaps (what OpenAI streams as `pcm16` audio deltas)."""
    import numpy as np

    beat = np.arange(int(0.2 * SPEECH_RATE)) / SPEECH_RATE
    word = 0.4 * np.sin(2 * np.pi * voice_pitch(voice) * beat)
    gap = np.zeros(int(0.05 * SPEECH_RATE))
    samples = np.concatenate([np.concatenate([word, gap]) for _ in text.split()] or [gap])
    return bytes((samples * 32767).astype("<i2").tobytes())


def fake_speech(text: str, voice: str, response_format: str) -> tuple[bytes, str]:
    """`speech_pcm16` in the asked container format."""
    import av
    import numpy as np

    container, codec, content_type = SPEECH_FORMATS[response_format]
    pcm = np.frombuffer(speech_pcm16(text, voice), dtype="<i2").reshape(1, -1)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        out.metadata["title"] = f"voice {voice}"  # what a real server might put there
        stream = out.add_stream(codec, rate=48_000 if codec == "libopus" else SPEECH_RATE)
        if not isinstance(stream, av.AudioStream):
            raise TypeError(f"codec {codec!r} made a {type(stream).__name__}, not an audio stream")
        stream.layout = "mono"
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=stream.rate)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = SPEECH_RATE
        for converted in [*resampler.resample(frame), *resampler.resample(None)]:
            out.mux(stream.encode(converted))
        out.mux(stream.encode(None))
    return buffer.getvalue(), content_type


class FakeApiServer:
    """Both APIs on one port: OpenAI under /v1, Gemini under /v1beta."""

    def __init__(
        self,
        *,
        api_key: str | None = "sk-test-secret-key-123",
        models: tuple[str, ...] = ("gpt-4o-audio-preview", "gemini-2.5-flash"),
        words_per_chunk: int = 1,
        chunk_delay_s: float = 0.0,
        answer_delay_s: float = 0.0,
    ) -> None:
        self.api_key = api_key
        self.models = list(models)
        self.words_per_chunk = words_per_chunk
        self.chunk_delay_s = chunk_delay_s
        self.answer_delay_s = answer_delay_s
        self.script: list[Behaviour] = []
        self.slow_models: dict[str, float] = {}
        self.broken_models: set[str] = set()
        # Served model -> the fault its every streamed answer breaks with (a `Behaviour`
        # stream_fault: "error", "garbage", "cut"), until removed; a scripted step's fault wins.
        self.stream_faults: dict[str, str] = {}
        # Served model -> the reply it gives instead of `reply_for` (hostile markdown, a model
        # naming itself, ...).
        self.replies: dict[str, str] = {}
        self.requests: list[dict[str, Any]] = []  # {"path", "headers", "json"}
        # The JSON bodies of /v1/audio/speech requests (kept apart from generation requests).
        self.speech_requests: list[dict[str, Any]] = []
        # The bodies of chat requests that asked for the reply as audio (`modalities` audio).
        self.audio_out_requests: list[dict[str, Any]] = []
        self.speech_models = ("gpt-4o-mini-tts", "tts-1")
        self._stream_fault: str | None = None
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def openai_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def gemini_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1beta"

    # --- life ---------------------------------------------------------------------------------

    def start(self) -> FakeApiServer:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/v1/models", self._openai_models)
        app.router.add_post("/v1/chat/completions", self._openai_chat)
        app.router.add_post("/v1/audio/transcriptions", self._openai_transcribe)
        app.router.add_post("/v1/audio/speech", self._openai_speech)
        app.router.add_get("/v1beta/models/{name}", self._gemini_model)
        app.router.add_post("/v1beta/models/{name}", self._gemini_generate)
        self._thread.start()
        self._call(self._start(app))
        return self

    async def _start(self, app: web.Application) -> None:
        # Cancel handlers whose client went away (a timed-out request), and do not wait for
        # sleeping handlers at shutdown.
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.2)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def stop(self) -> None:
        if self._runner is not None:
            self._call(self._runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    # --- helpers ------------------------------------------------------------------------------

    def generation_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["json"] is not None]

    async def _record(self, request: web.Request) -> object:
        """The request's body (any JSON value, a form as a dict, or None), recorded."""
        body: object
        if request.content_type == "multipart/form-data":
            body = await self._form(request)
        else:
            body = await request.json() if request.can_read_body else None
        self.requests.append(
            {"path": request.path_qs, "headers": dict(request.headers), "json": body}
        )
        return body

    async def _scripted(self, error: Any) -> web.Response | None:
        if not self.script:
            if self.answer_delay_s:
                await asyncio.sleep(self.answer_delay_s)
            return None
        step = self.script.pop(0)
        self._stream_fault = step.stream_fault
        if step.delay_s:
            await asyncio.sleep(step.delay_s)
        if step.status == 200 and step.body is None:
            return None
        return web.json_response(
            step.body if step.body is not None else error(step.status),
            status=step.status,
            headers=step.headers,
        )

    async def _per_model(self, model: str, error: web.Response) -> web.Response | None:
        if model in self.slow_models:
            await asyncio.sleep(self.slow_models[model])
        if model in self.broken_models:
            return error
        return None

    @staticmethod
    def reply_for(seconds: float, history_turns: int) -> str:
        return f"I heard {seconds:.1f} seconds of audio after {history_turns} earlier turns."

    @staticmethod
    def reply_to_text(text: str, history_turns: int) -> str:
        return f"You said: {text} ({history_turns} earlier turns)."

    @staticmethod
    def transcript_for(seconds: float) -> str:
        return f"a spoken question of {seconds:.1f} seconds"

    @staticmethod
    async def _form(request: web.Request) -> dict[str, Any]:
        """A multipart body as {field: text}, files as {field: {"filename", "content_type",
        "data" (base64)}}, so it can be recorded like a JSON body."""
        form: dict[str, Any] = {}
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            data = await part.read()
            if part.filename is not None:
                form[part.name] = {
                    "filename": part.filename,
                    "content_type": part.headers.get("Content-Type"),
                    "data": base64.b64encode(data).decode("ascii"),
                }
            else:
                form[part.name] = data.decode("utf-8")
        return form

    def _chunks(self, text: str) -> list[str]:
        words = text.split(" ")
        n = self.words_per_chunk
        return [
            " ".join(words[i : i + n]) + (" " if i + n < len(words) else "")
            for i in range(0, len(words), n)
        ]

    async def _sse(
        self, request: web.Request, events: list[dict[str, Any]], done: bool, *, model: str
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        fault, self._stream_fault = self._stream_fault, None
        fault = fault or self.stream_faults.get(model)
        for i, event in enumerate(events):
            if i == 2 and fault == "error":
                error = {"error": {"message": "The server had an error", "type": "server_error"}}
                await response.write(f"data: {json.dumps(error)}\n\n".encode())
                break
            if i == 2 and fault == "garbage":
                # A broken event whose text is reply content (must never reach an error text).
                await response.write(f"data: {GARBAGE_EVENT}\n\n".encode())
                break
            if i == 2 and fault == "cut" and request.transport is not None:
                request.transport.close()
                return response
            await response.write(f"data: {json.dumps(event)}\n\n".encode())
            if self.chunk_delay_s:
                await asyncio.sleep(self.chunk_delay_s)
        if done:
            await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    # --- OpenAI -------------------------------------------------------------------------------

    def _openai_auth(self, request: web.Request) -> web.Response | None:
        if self.api_key is None:
            return None
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            given = request.headers.get("Authorization", "")[-4:]
            return web.json_response(
                openai_error(
                    f"Incorrect API key provided: sk-...{given}.",
                    "invalid_request_error",
                    "invalid_api_key",
                ),
                status=401,
            )
        return None

    async def _openai_models(self, request: web.Request) -> web.Response:
        await self._record(request)
        if (denied := self._openai_auth(request)) is not None:
            return denied
        return web.json_response(
            {
                "object": "list",
                "data": [{"id": m, "object": "model", "owned_by": "test"} for m in self.models],
            }
        )

    async def _openai_speech(self, request: web.Request) -> web.Response:
        """OpenAI's speech API: JSON in, the audio itself out. The "voice" is a tone whose pitch
        is derived from the voice name (a test can hear which voice spoke), one beat per word,
        with a title tag that names the voice (so a test sees that no tag survives)."""
        if (denied := self._openai_auth(request)) is not None:
            return denied
        try:
            body = await request.json()
        except ValueError:
            return web.json_response(
                openai_error("We could not parse the JSON body.", "invalid_request_error"),
                status=400,
            )
        problem = speech_request_problem(body, self.speech_models)
        if problem is not None:
            return web.json_response(openai_error(problem, "invalid_request_error"), status=400)
        self.speech_requests.append(body)
        audio, content_type = fake_speech(body["input"], body["voice"], body["response_format"])
        return web.Response(body=audio, content_type=content_type)

    async def _openai_gate(self, request: web.Request) -> web.Response | None:
        """What every OpenAI route answers first: a bad key, or the next scripted error."""
        if (denied := self._openai_auth(request)) is not None:
            return denied
        return await self._scripted(
            lambda status: openai_error(f"scripted error {status}", "server_error")
        )

    async def _openai_model_problem(self, model: str) -> web.Response | None:
        """OpenAI's answer for a model it does not serve, or one scripted to be broken."""
        if model not in self.models:
            return web.json_response(
                openai_error(
                    f"The model `{model}` does not exist",
                    "invalid_request_error",
                    "model_not_found",
                ),
                status=404,
            )
        return await self._per_model(
            model,
            web.json_response(
                openai_error("The model crashed.", "invalid_request_error"), status=400
            ),
        )

    async def _openai_chat(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        if (refused := await self._openai_gate(request)) is not None:
            return refused
        try:
            if not isinstance(body, dict):
                raise TypeError(f"the body must be a JSON object, got {type(body).__name__}")
            model = body["model"]
            messages = body["messages"]
            last = messages[-1]["content"]
            # A text turn (the ASR pipeline's LLM stage) has string content.
            audio_part: dict[str, Any] = (
                {"type": "text", "text": last} if isinstance(last, str) else last[0]
            )
            seconds = 0.0
            if audio_part["type"] == "text":
                pass
            elif audio_part["type"] == "input_audio":
                if audio_part["input_audio"]["format"] != "wav":
                    raise ValueError("format must be wav")
                seconds = wav_seconds(audio_part["input_audio"]["data"])
            elif audio_part["type"] == "audio_url":
                url = audio_part["audio_url"]["url"]
                prefix = "data:audio/wav;base64,"
                if not url.startswith(prefix):
                    raise ValueError("audio_url must be a data URL")
                seconds = wav_seconds(url.removeprefix(prefix))
            else:
                raise ValueError(f"unsupported content part {audio_part['type']!r}")
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            return web.json_response(
                openai_error(f"Invalid request: {exc}", "invalid_request_error"), status=400
            )
        refused = await self._openai_model_problem(model)
        if refused is not None:
            return refused
        history = sum(1 for m in messages if m["role"] in ("user", "assistant")) - 1
        if audio_part["type"] == "text":
            text = self.replies.get(model) or self.reply_to_text(audio_part["text"], history)
        else:
            text = self.replies.get(model) or self.reply_for(seconds, history)
        if "audio" in (body.get("modalities") or ()):
            return await self._openai_chat_audio_out(request, body, model, text)
        if not body.get("stream"):
            return web.json_response(
                {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {
                        "prompt_tokens": 10,
                        "completion_tokens": len(text.split()),
                        "total_tokens": 20,
                    },
                }
            )
        events: list[dict[str, Any]] = [
            {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": ""},
                        "finish_reason": None,
                    }
                ],
            }
        ]
        for piece in self._chunks(text):
            events.append(
                {
                    "id": "chatcmpl-1",
                    "object": "chat.completion.chunk",
                    "model": model,
                    "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
                }
            )
        events.append(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "model": model,
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            }
        )
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(
                {
                    "id": "chatcmpl-1",
                    "object": "chat.completion.chunk",
                    "model": model,
                    "choices": [],
                    "usage": {
                        "prompt_tokens": 10,
                        "completion_tokens": len(text.split()),
                        "total_tokens": 20,
                    },
                }
            )
        return await self._sse(request, events, done=True, model=model)

    async def _openai_chat_audio_out(
        self, request: web.Request, body: dict[str, Any], model: str, text: str
    ) -> web.StreamResponse:
        """Chat completions with `modalities: ["text", "audio"]`: the reply spoken by the fake
        voice. Whole (`message.audio.data`, base64 in `audio.format`) or streamed
        (`delta.audio.transcript` pieces and base64 `delta.audio.data` of pcm16 at 24 kHz, the
        only streaming format OpenAI allows); the text is the audio's transcript."""
        audio = body.get("audio")
        if not isinstance(audio, dict) or not isinstance(audio.get("voice"), str):
            return web.json_response(
                openai_error("audio.voice is required with audio output", "invalid_request_error"),
                status=400,
            )
        fmt = audio.get("format")
        allowed = ("pcm16",) if body.get("stream") else ("wav", "mp3", "flac", "opus", "pcm16")
        if not isinstance(fmt, str) or fmt not in allowed:
            return web.json_response(
                openai_error(f"audio.format must be one of {allowed}", "invalid_request_error"),
                status=400,
            )
        self.audio_out_requests.append(body)
        voice = audio["voice"]
        if not body.get("stream"):
            data = speech_pcm16(text, voice) if fmt == "pcm16" else fake_speech(text, voice, fmt)[0]
            message = {
                "role": "assistant",
                "content": None,
                "audio": {
                    "id": "audio_1",
                    "data": base64.b64encode(data).decode("ascii"),
                    "expires_at": 0,
                    "transcript": text,
                },
            }
            return web.json_response(
                {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "model": model,
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    "usage": {"completion_tokens": len(text.split())},
                }
            )

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        pcm = speech_pcm16(text, voice)
        step = max(2, len(pcm) // 4 // 2 * 2)  # a few audio deltas, whole samples each
        events = [chunk({"role": "assistant", "content": None, "audio": {"id": "audio_1"}})]
        events += [chunk({"audio": {"transcript": piece}}) for piece in self._chunks(text)]
        events += [
            chunk({"audio": {"data": base64.b64encode(pcm[i : i + step]).decode("ascii")}})
            for i in range(0, len(pcm), step)
        ]
        events.append(chunk({}, "stop"))
        return await self._sse(request, events, done=True, model=model)

    async def _openai_transcribe(self, request: web.Request) -> web.Response:
        """OpenAI's (and vLLM's) transcription endpoint: multipart `file`, `model`, optional
        `language`, `response_format` json (the default) or text."""
        form = await self._record(request)
        if (refused := await self._openai_gate(request)) is not None:
            return refused
        try:
            if not isinstance(form, dict):
                raise TypeError(f"the body must be a multipart form, got {type(form).__name__}")
            model = form["model"]
            upload = form["file"]
            if not isinstance(upload, dict):
                raise ValueError("file must be a file part")
            seconds = wav_seconds(upload["data"])
            response_format = form.get("response_format", "json")
            if response_format not in ("json", "text"):
                raise ValueError(f"unsupported response_format {response_format!r}")
        except (KeyError, TypeError, ValueError, wave.Error) as exc:
            return web.json_response(
                openai_error(f"Invalid request: {exc}", "invalid_request_error"), status=400
            )
        refused = await self._openai_model_problem(model)
        if refused is not None:
            return refused
        text = self.transcript_for(seconds)
        if response_format == "text":
            return web.Response(text=text)
        return web.json_response({"text": text})

    # --- Gemini -------------------------------------------------------------------------------

    def _gemini_auth(self, request: web.Request) -> web.Response | None:
        if self.api_key is not None and request.headers.get("x-goog-api-key") != self.api_key:
            return web.json_response(
                gemini_error(
                    400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT"
                ),
                status=400,
            )
        return None

    async def _gemini_model(self, request: web.Request) -> web.Response:
        await self._record(request)
        if (denied := self._gemini_auth(request)) is not None:
            return denied
        name = request.match_info["name"]
        if name not in self.models:
            return web.json_response(
                gemini_error(404, f"models/{name} is not found", "NOT_FOUND"), status=404
            )
        return web.json_response({"name": f"models/{name}", "displayName": name})

    async def _gemini_generate(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        if (denied := self._gemini_auth(request)) is not None:
            return denied
        name, _, method = request.match_info["name"].partition(":")
        if method not in ("generateContent", "streamGenerateContent"):
            return web.json_response(
                gemini_error(404, f"no method {method}", "NOT_FOUND"), status=404
            )
        if method == "streamGenerateContent" and request.query.get("alt") != "sse":
            return web.json_response(
                gemini_error(400, "this fake only streams alt=sse", "INVALID_ARGUMENT"), status=400
            )
        scripted = await self._scripted(
            lambda status: gemini_error(status, f"scripted {status}", "UNAVAILABLE")
        )
        if scripted is not None:
            return scripted
        try:
            if not isinstance(body, dict):
                raise TypeError(f"the body must be a JSON object, got {type(body).__name__}")
            contents = body["contents"]
            inline = contents[-1]["parts"][0]["inline_data"]
            if inline["mime_type"] != "audio/wav":
                raise ValueError("mime_type must be audio/wav")
            seconds = wav_seconds(inline["data"])
            if contents[-1]["role"] != "user":
                raise ValueError("last turn must be the user's")
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            return web.json_response(
                gemini_error(400, f"Invalid JSON payload: {exc}", "INVALID_ARGUMENT"), status=400
            )
        if name == "blocked-model":
            return web.json_response({"promptFeedback": {"blockReason": "SAFETY"}})
        text = self.replies.get(name) or self.reply_for(seconds, len(contents) - 1)
        usage = {
            "promptTokenCount": 10,
            "candidatesTokenCount": len(text.split()),
            "totalTokenCount": 20,
        }

        def response(piece: str, finish: str | None) -> dict[str, Any]:
            candidate: dict[str, Any] = {
                "content": {"parts": [{"text": piece}], "role": "model"},
                "index": 0,
            }
            if finish:
                candidate["finishReason"] = finish
            return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": name}

        if method == "generateContent":
            return web.json_response(response(text, "STOP"))
        chunks = self._chunks(text)
        events = [
            response(p, "STOP" if i == len(chunks) - 1 else None) for i, p in enumerate(chunks)
        ]
        return await self._sse(request, events, done=False, model=name)
