"""The study's voice: speaks text replies in reply modes `speech` and `both` (the `[tts]` table).

One voice per study, loaded once per worker process like a model, so both sides of every
battle are spoken by the same voice: the voice must not decide the vote. Whatever a voice (or a
model that speaks for itself) produces goes through `spoken_reply`: decoded, loudness-normalised
like the participant's clip, and written into a fresh Ogg/Opus file with no tags, so neither the
loudness nor a file's metadata can tell the sides apart or name a model.

Backends:
- `openai_speech`: `POST {base_url}/audio/speech` with `model`, `voice`, `input`,
  `response_format` (OpenAI, and the self-hosted TTS servers that speak the same API).
- `espeak_ng`: the local `espeak-ng` program (the demo and tests; no network, no weights).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Protocol

from contract.audio import SAMPLE_RATE, SPEECH_FORMAT, AudioError, encode_ogg_opus, load
from contract.modelsfile import TTS_BACKENDS, ModelSpec, TtsSpec
from workers.backends.api_settings import api_key
from workers.backends.base import BackendError
from workers.backends.http import ApiClient, RetryPolicy
from workers.backends.spec_settings import SpecSettings

# OpenAI's /audio/speech takes at most 4096 characters of input.
MAX_INPUT_CHARS = 4096
# Longer than any reply a participant would sit through; decoding stops a runaway stream.
MAX_SPOKEN_SECONDS = 600.0
OPENAI_FORMATS = ("opus", "mp3", "aac", "flac", "wav", "pcm")
_MARKUP = re.compile(r"[*_`#>|~]+")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


@dataclass(frozen=True)
class SpokenReply:
    data: bytes  # Ogg/Opus, no tags
    seconds: float
    format: str = SPEECH_FORMAT


class Voice(Protocol):
    tts: TtsSpec

    def load(self) -> None: ...

    def warmup(self) -> None: ...

    def synthesize(self, text: str) -> bytes:
        """Audio of `text` in any container PyAV reads."""
        ...

    def close(self) -> None: ...


def speakable(text: str) -> str:
    """The reply as it should be read aloud: markdown marks and link targets dropped."""
    text = _LINK.sub(r"\1", text)
    text = _MARKUP.sub(" ", text)
    return re.sub(r"\s+", " ", text).strip()[:MAX_INPUT_CHARS]


def spoken_reply(audio: bytes) -> SpokenReply:
    """Any audio a voice or a speaking model produced, as the participant will hear it."""
    try:
        samples = load(audio, MAX_SPOKEN_SECONDS)
    except AudioError as exc:
        # Not the participant's recording: say whose audio it was, not "please record again".
        raise BackendError(f"the spoken reply cannot be decoded ({exc.reason})") from None
    return SpokenReply(data=encode_ogg_opus(samples), seconds=len(samples) / SAMPLE_RATE)


def speak(voice: Voice, text: str) -> SpokenReply:
    words = speakable(text)
    if not words:
        raise BackendError("the reply has nothing to speak (empty after removing markup)")
    return spoken_reply(voice.synthesize(words))


def _settings(tts: TtsSpec) -> SpecSettings:
    # The [tts] table reads like a model's settings table; errors then name "tts".
    return SpecSettings(
        ModelSpec(id="tts", display_name="tts", backend=tts.backend, settings=tts.settings),
        TTS_BACKENDS[tts.backend],
    )


class OpenAiSpeech:
    """`POST {base_url}/audio/speech`; the answer body is the audio itself."""

    def __init__(self, tts: TtsSpec) -> None:
        self.tts = tts
        s = _settings(tts)
        self.base_url: str = s.text("base_url", "https://api.openai.com/v1").rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"[tts]: base_url must be an http(s) URL, got {self.base_url!r}")
        self.model: str = s.text("model")
        self.voice: str = s.text("voice")
        # "" means a local server that takes no key.
        env = tts.settings.get("api_key_env", "OPENAI_API_KEY")
        if not isinstance(env, str):
            raise ValueError(f"[tts]: api_key_env must be a string, got {env!r}")
        self.api_key_env: str | None = env or None
        self.format: str = s.choice("format", OPENAI_FORMATS, "opus")
        if self.format == "pcm":
            # Raw PCM has no header to decode it by; every other format is self-describing.
            raise ValueError("[tts]: format 'pcm' is headerless; use opus, mp3, aac, flac or wav")
        self.speed: float | None = s.number("speed", None, minimum=0.25, maximum=4.0)
        self.instructions: str | None = s.text("instructions", None)
        self.timeout_s: float = s.number("timeout_s", 60.0, minimum=0.001)
        self.policy = RetryPolicy(
            retries=s.integer("retries", 2), backoff_s=s.number("backoff_s", 0.5)
        )
        self._key: str | None = None
        self._client: ApiClient | None = None

    def __repr__(self) -> str:
        return f"OpenAiSpeech(model={self.model!r}, voice={self.voice!r})"

    def load(self) -> None:
        if self.api_key_env is not None:
            self._key = api_key(
                ModelSpec(id="tts", display_name="tts", backend=self.tts.backend),
                self.api_key_env,
            )
        self._client = ApiClient(
            name=f"[tts] {self.tts.backend}",
            timeout_s=self.timeout_s,
            policy=self.policy,
            secrets=(self._key,) if self._key else (),
        )

    def warmup(self) -> None:
        # One short phrase proves the key, the model and the voice before the first battle.
        spoken_reply(self.synthesize("Ready."))

    def synthesize(self, text: str) -> bytes:
        if self._client is None:
            raise BackendError("[tts] is not loaded (call load() first)")
        body: dict[str, object] = {
            "model": self.model,
            "voice": self.voice,
            "input": text,
            "response_format": self.format,
        }
        if self.speed is not None:
            body["speed"] = self.speed
        if self.instructions is not None:
            body["instructions"] = self.instructions
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        data, content_type = self._client.run(
            self._client.post_bytes(f"{self.base_url}/audio/speech", body, headers)
        )
        if content_type.startswith(("application/json", "text/")) or not data:
            raise BackendError(
                f"[tts] {self.base_url}/audio/speech answered {content_type or 'no type'} "
                f"({len(data)} bytes), not audio"
            )
        return data

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class EspeakNg:
    """The local `espeak-ng` program, WAV on stdout."""

    def __init__(self, tts: TtsSpec) -> None:
        self.tts = tts
        s = _settings(tts)
        self.voice: str = s.text("voice", "en-us")
        self.speed: int = s.integer("speed", 175, minimum=80)
        self.pitch: int = s.integer("pitch", 50)
        self._program: str | None = None

    def __repr__(self) -> str:
        return f"EspeakNg(voice={self.voice!r})"

    def load(self) -> None:
        self._program = shutil.which("espeak-ng")
        if self._program is None:
            raise BackendError(
                "[tts] backend 'espeak_ng' needs the espeak-ng program on PATH "
                "(apt-get install espeak-ng)"
            )

    def warmup(self) -> None:
        spoken_reply(self.synthesize("Ready."))

    def synthesize(self, text: str) -> bytes:
        if self._program is None:
            raise BackendError("[tts] is not loaded (call load() first)")
        command = [self._program, "-v", self.voice, "-s", str(self.speed), "-p", str(self.pitch)]
        # The text goes in on stdin, never as an argument espeak-ng could read as an option.
        done = subprocess.run(
            [*command, "--stdin", "--stdout"],
            input=text.encode("utf-8"),
            capture_output=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0 or not done.stdout:
            raise BackendError(
                f"[tts] espeak-ng failed ({done.returncode}): "
                f"{done.stderr.decode('utf-8', 'replace').strip()[:300]}"
            )
        return done.stdout

    def close(self) -> None:
        self._program = None


VOICES: dict[str, type[OpenAiSpeech] | type[EspeakNg]] = {
    "openai_speech": OpenAiSpeech,
    "espeak_ng": EspeakNg,
}


def build_voice(tts: TtsSpec) -> Voice:
    try:
        cls = VOICES[tts.backend]
    except KeyError:
        raise ValueError(
            f"[tts]: unknown backend {tts.backend!r}; known: {', '.join(VOICES)}"
        ) from None
    return cls(tts)


def load_voice(tts: TtsSpec, *, warmup: bool = True) -> tuple[Voice, float]:
    """Build, load and (optionally) warm up the study's voice; returns it and the seconds taken."""
    started = time.perf_counter()
    voice = build_voice(tts)
    voice.load()
    if warmup:
        voice.warmup()
    return voice, time.perf_counter() - started
