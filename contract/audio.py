"""Audio in: probe, decode and loudness-normalise what participants send, and encode WAV for APIs.

The bot imports this module too (to probe a voice message before it starts a battle), so it needs
PyAV and numpy only, never torch.

Everything a model sees is 16 kHz mono float32 in [-1, 1], normalised to `TARGET_DBFS` RMS with the
gain capped so that no sample goes above `PEAK_DBFS` (a plain RMS normalisation with a peak guard:
enough to even out quiet and loud microphones, without pyloudnorm's K-weighting).

Every refusal is an `AudioError` whose `reason` is one of `REASONS` and whose message is polite
enough to show a participant as is.
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass
from typing import Literal

import av
import numpy as np

SAMPLE_RATE = 16_000
TARGET_DBFS = -20.0
PEAK_DBFS = -1.0
# Below this RMS a clip is treated as silence (a muted microphone gives about -90 dBFS).
SILENCE_DBFS = -55.0
# Shorter than this there is nothing to answer.
MIN_SECONDS = 0.1

AudioReason = Literal["not_audio", "corrupt", "empty", "silent", "too_long"]
REASONS: tuple[AudioReason, ...] = ("not_audio", "corrupt", "empty", "silent", "too_long")


class AudioError(ValueError):
    """The clip cannot be used. `reason` is a stable code; the message can be shown to a person."""

    def __init__(self, reason: AudioReason, message: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown audio error reason {reason!r}; known: {', '.join(REASONS)}")
        super().__init__(message)
        self.reason: AudioReason = reason

    def __reduce__(self) -> tuple[type[AudioError], tuple[AudioReason, str]]:
        # Keeps the reason when the error crosses a process boundary (RQ pickles exceptions).
        return (type(self), (self.reason, str(self)))


@dataclass(frozen=True)
class AudioInfo:
    duration_s: float | None  # None when neither the container nor the packets tell
    codec: str
    container: str
    sample_rate: int
    channels: int


# File signatures of the formats Parley accepts: a file that starts like one of them but does not
# open is damaged (e.g. cut off), not "not audio".
_MAGIC = (b"OggS", b"ID3", b"RIFF", b"\x1aE\xdf\xa3", b"fLaC")


def _looks_like_audio(data: bytes) -> bool:
    if data.startswith(_MAGIC) or data[4:8] == b"ftyp":
        return True
    # MPEG audio frame sync (raw mp3 without an ID3 tag).
    return len(data) > 1 and data[0] == 0xFF and (data[1] & 0xE0) == 0xE0


def _open(data: bytes) -> av.container.InputContainer:
    if not data:
        raise AudioError("empty", "The recording is empty. Please record a message and try again.")
    try:
        return av.open(io.BytesIO(data), mode="r")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        if _looks_like_audio(data):
            raise AudioError(
                "corrupt", "The recording seems damaged and cannot be read. Please record again."
            ) from None
        raise AudioError(
            "not_audio",
            "That file does not look like audio. Please send a voice message or an audio file "
            f"(ogg, mp3, m4a, wav, webm). ({type(exc).__name__})",
        ) from None


def _audio_stream(container: av.container.InputContainer) -> av.audio.stream.AudioStream:
    if not container.streams.audio:
        raise AudioError(
            "not_audio",
            f"That file ({container.format.name}) has no audio in it. Please send a voice message.",
        )
    return container.streams.audio[0]


def _too_long(seconds: float | None, max_seconds: float) -> AudioError:
    """`seconds` is the clip's real length where known; None when decoding stopped at the limit
    (the rest was never read, so its length is unknown)."""
    length = (
        f"is {seconds:.0f} s long" if seconds is not None else f"is longer than {max_seconds:.0f} s"
    )
    return AudioError(
        "too_long",
        f"The recording {length}; the limit is {max_seconds:.0f} s. Please send a shorter message.",
    )


def _known_duration(
    container: av.container.InputContainer, stream: av.audio.stream.AudioStream
) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def probe(data: bytes) -> AudioInfo:
    """What the clip is and how long, without decoding it (header, else packet timestamps)."""
    with _open(data) as container:
        stream = _audio_stream(container)
        duration = _known_duration(container, stream)
        if duration is None:
            # Browser webm (MediaRecorder) has no duration in its header: sum the packet durations,
            # which only demuxes (cheap), never decodes.
            total = 0
            try:
                for packet in container.demux(stream):
                    if packet.duration is not None:
                        total += packet.duration
            except av.FFmpegError:
                raise AudioError(
                    "corrupt",
                    "The recording seems damaged and cannot be read. Please record again.",
                ) from None
            if total and stream.time_base is not None:
                duration = float(total * stream.time_base)
        ctx = stream.codec_context
        return AudioInfo(
            duration_s=duration,
            codec=ctx.name,
            container=container.format.name,
            sample_rate=int(ctx.sample_rate or 0),
            channels=int(ctx.layout.nb_channels if ctx.layout is not None else 0),
        )


def decode(data: bytes, max_seconds: float) -> np.ndarray:
    """Decode to 16 kHz mono float32 (not normalised). Refuses clips over `max_seconds`."""
    if max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive, got {max_seconds}")
    max_samples = int(max_seconds * SAMPLE_RATE) + SAMPLE_RATE // 10  # container rounding slack
    with _open(data) as container:
        stream = _audio_stream(container)
        header_seconds = _known_duration(container, stream)
        # Refuse early on the header's word, before spending time decoding a long file.
        if header_seconds is not None and header_seconds > max_seconds + 0.5:
            raise _too_long(header_seconds, max_seconds)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        chunks: list[np.ndarray] = []
        n = 0
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    chunks.append(chunk)
                    n += chunk.size
                if n > max_samples:
                    raise _too_long(None, max_seconds)
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except av.FFmpegError:
            raise AudioError(
                "corrupt", "The recording seems damaged and cannot be read. Please record again."
            ) from None
    audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    if audio.size > max_samples:
        raise _too_long(None, max_seconds)
    if audio.size < MIN_SECONDS * SAMPLE_RATE:
        raise AudioError("empty", "The recording is empty. Please record a message and try again.")
    return audio


def dbfs(audio: np.ndarray) -> float:
    """RMS level in dB relative to full scale; -inf for digital silence."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
    return 20.0 * np.log10(rms) if rms > 0 else float("-inf")


def normalise(
    audio: np.ndarray, target_dbfs: float = TARGET_DBFS, peak_dbfs: float = PEAK_DBFS
) -> np.ndarray:
    """Scale to `target_dbfs` RMS, but never so far that a peak passes `peak_dbfs`.

    Refuses silence (below `SILENCE_DBFS`): amplifying it would only feed noise to the models.
    """
    level = dbfs(audio)
    if level < SILENCE_DBFS:
        raise AudioError(
            "silent",
            "The recording is silent. Please check your microphone and try again.",
        )
    peak = float(np.max(np.abs(audio)))
    gain = min(10 ** ((target_dbfs - level) / 20), 10 ** (peak_dbfs / 20) / peak)
    return (audio * gain).astype(np.float32)


def load(data: bytes, max_seconds: float) -> np.ndarray:
    """Decode and normalise: what a backend gets."""
    return normalise(decode(data, max_seconds))


def encode_wav(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """16-bit PCM mono WAV, the format every audio API accepts."""
    if audio.ndim != 1:
        raise ValueError(f"encode_wav wants mono 1-D audio, got shape {audio.shape}")
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


# Where an audio stream is copied to when its file also holds video or other streams.
_AUDIO_CONTAINERS = {
    "opus": ("ogg", "ogg"),
    "vorbis": ("ogg", "ogg"),
    "flac": ("flac", "flac"),
    "mp3": ("mp3", "mp3"),
    "aac": ("ipod", "m4a"),
    "alac": ("ipod", "m4a"),
}


def audio_only(data: bytes, suffix: str) -> tuple[bytes, str]:
    """The clip with only its first audio stream, judged by the content, not the file name.

    A participant's `.webm` or `.mp4` may carry a video track (a camera, a screen) that the study
    must not keep. A file whose only stream is audio comes back as it is, with `suffix`;
    otherwise the audio stream is copied (not re-encoded) into an audio-only container and the
    matching suffix is returned. Raises `AudioError` like `probe`.
    """
    with _open(data) as container:
        stream = _audio_stream(container)
        if len(container.streams) == 1:
            return data, suffix
        fmt, new_suffix = _AUDIO_CONTAINERS.get(stream.codec_context.name, ("matroska", "mka"))
        buffer = io.BytesIO()
        try:
            with av.open(buffer, "w", format=fmt) as out:
                copied = out.add_stream_from_template(stream)
                for packet in container.demux(stream):
                    if packet.dts is None:
                        continue  # the demuxer's flush packet
                    packet.stream = copied
                    out.mux(packet)
        except (av.FFmpegError, ValueError):
            raise AudioError(
                "corrupt", "The recording seems damaged and cannot be read. Please record again."
            ) from None
    return buffer.getvalue(), new_suffix


SPEECH_FORMAT = "ogg"  # the container of every spoken reply a participant hears
_OPUS_RATE = 48_000


def encode_ogg_opus(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """Mono Ogg/Opus, what Discord plays inline; a fresh container, so it carries no tags
    (title, artist, encoder notes) from whatever produced the audio."""
    if audio.ndim != 1:
        raise ValueError(f"encode_ogg_opus wants mono 1-D audio, got shape {audio.shape}")
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2")
    buffer = io.BytesIO()
    # bitexact: no encoder-version tag either.
    with av.open(buffer, "w", format="ogg", options={"fflags": "+bitexact"}) as out:
        stream = out.add_stream("libopus", rate=_OPUS_RATE)
        stream.layout = "mono"
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=_OPUS_RATE)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = sample_rate
        for converted in [*resampler.resample(frame), *resampler.resample(None)]:
            out.mux(stream.encode(converted))
        out.mux(stream.encode(None))
    return buffer.getvalue()
