"""Real Ogg/Opus voice messages from text, as Discord's clients record them.

espeak-ng speaks the text to WAV; PyAV resamples it to 48 kHz mono and encodes it with libopus in
an Ogg container (what Discord voice messages are). `duration_secs` and the 256-byte amplitude
`waveform` are computed from the audio, like the metadata Discord attaches to voice messages.
Clips are cached by text and voice, since synthesis is the slow part.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

SAMPLE_RATE = 48_000
WAVEFORM_BYTES = 256
# Bump when the encoding changes, so stale cached clips are not reused.
_CACHE_VERSION = "1"


@dataclass(frozen=True)
class VoiceClip:
    """One voice message: the Ogg/Opus bytes and the metadata its attachment carries."""

    ogg: bytes
    duration_secs: float
    waveform: bytes  # WAVEFORM_BYTES amplitudes, 0..255 (base64 in the attachment)


def default_cache_dir() -> Path:
    """$PARLEY_STANDIN_CACHE, else parley-standin-voice under the system temp dir."""
    configured = os.environ.get("PARLEY_STANDIN_CACHE")
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / "parley-standin-voice"


def speak(text: str, *, voice: str = "en-us", cache_dir: Path | None = None) -> VoiceClip:
    """A voice message saying `text` (cached under `cache_dir`)."""
    if not text.strip():
        raise ValueError("cannot speak an empty text")
    directory = cache_dir or default_cache_dir()
    key = hashlib.sha256(f"{_CACHE_VERSION}\0{voice}\0{text}".encode()).hexdigest()[:32]
    cached = directory / f"{key}.ogg"
    if cached.exists():
        return clip_from_ogg(cached.read_bytes())
    clip = encode_voice_message(synthesize_wav(text, voice=voice))
    directory.mkdir(parents=True, exist_ok=True)
    # Write then rename, so a concurrent reader never sees half a file.
    partial = cached.with_suffix(f".{os.getpid()}.part")
    partial.write_bytes(clip.ogg)
    partial.replace(cached)
    return clip


def synthesize_wav(text: str, *, voice: str = "en-us") -> bytes:
    """WAV bytes of espeak-ng speaking `text`."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    result = subprocess.run(
        [espeak, "-v", voice, "--stdout", text], capture_output=True, check=False, timeout=60
    )
    if result.returncode != 0 or not result.stdout.startswith(b"RIFF"):
        raise RuntimeError(
            f"espeak-ng failed for voice {voice!r} (exit {result.returncode}): "
            f"{result.stderr.decode(errors='replace').strip()}"
        )
    return result.stdout


def decode_mono(data: bytes, *, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode any audio PyAV reads to float32 mono samples at `sample_rate`."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    chunks: list[np.ndarray] = []
    with av.open(io.BytesIO(data), mode="r") as container:
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
    for out in resampler.resample(None):
        chunks.append(out.to_ndarray().reshape(-1))
    if not chunks:
        raise ValueError("the audio decoded to no samples")
    return np.concatenate(chunks).astype(np.float32)


def encode_voice_message(audio: bytes) -> VoiceClip:
    """Re-encode any audio as a 48 kHz mono Ogg/Opus voice message."""
    samples = decode_mono(audio)
    out = io.BytesIO()
    with av.open(out, mode="w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=SAMPLE_RATE, layout="mono")
        stream.bit_rate = 32_000
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    # Measure the clip as encoded (Opus adds pre-skip and padding), as a reader would.
    return clip_from_ogg(out.getvalue())


def clip_from_ogg(ogg: bytes) -> VoiceClip:
    """The metadata of an existing Ogg/Opus clip."""
    samples = decode_mono(ogg)
    return VoiceClip(ogg, len(samples) / SAMPLE_RATE, waveform(samples))


def waveform(samples: np.ndarray, *, points: int = WAVEFORM_BYTES) -> bytes:
    """Peak amplitude of `points` equal slices of the clip, scaled so the loudest is 255."""
    if samples.size == 0:
        raise ValueError("cannot draw the waveform of an empty clip")
    slices = np.array_split(np.abs(samples), min(points, samples.size))
    peaks = np.array([s.max() for s in slices], dtype=np.float64)
    loudest = peaks.max()
    if loudest > 0:
        peaks = peaks / loudest * 255
    return bytes(np.round(peaks).astype(np.uint8).tolist())
