"""Real test clips: speech from espeak-ng, re-encoded with PyAV into what participants send."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import av
import numpy as np

# container format, codec, sample rate (None: keep the source's)
FORMATS: dict[str, tuple[str, str, int | None]] = {
    "ogg": ("ogg", "libopus", 48_000),  # a Discord voice message
    "mp3": ("mp3", "libmp3lame", None),
    "m4a": ("ipod", "aac", None),
    "webm": ("webm", "libopus", 48_000),
}


def speak(text: str, out: Path) -> bytes:
    subprocess.run(["espeak-ng", "-w", str(out), text], check=True, capture_output=True)
    return out.read_bytes()


def encode(
    source: bytes,
    container: str,
    codec: str,
    rate: int | None = None,
    options: dict[str, str] | None = None,
) -> bytes:
    """Re-encode any audio file to `container`/`codec`, mono, with muxer `options`."""
    buffer = io.BytesIO()
    with (
        av.open(io.BytesIO(source), mode="r") as src,
        av.open(buffer, "w", format=container, options=options or {}) as out,
    ):
        stream_in = src.streams.audio[0]
        stream = out.add_stream(codec, rate=rate or stream_in.rate)
        if not isinstance(stream, av.AudioStream):
            raise ValueError(f"codec {codec!r} is not an audio codec")
        stream.layout = "mono"
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=stream.rate)
        for frame in src.decode(stream_in):
            frame.pts = None
            for converted in resampler.resample(frame):
                out.mux(stream.encode(converted))
        for converted in resampler.resample(None):
            out.mux(stream.encode(converted))
        out.mux(stream.encode(None))
    return buffer.getvalue()


def pcm_wav(samples: np.ndarray, rate: int = 16_000) -> bytes:
    """A WAV file from float samples (for silence and synthetic signals)."""
    from contract.audio import encode_wav

    return encode_wav(samples.astype(np.float32), rate)


def with_video(source: bytes, *, frames: int = 20) -> bytes:
    """An mp4 holding a small black video track and the source's audio as AAC: what a phone's
    screen or camera recording looks like when a participant sends it instead of a voice note."""
    buffer = io.BytesIO()
    with av.open(io.BytesIO(source), mode="r") as src, av.open(buffer, "w", format="mp4") as out:
        audio_in = src.streams.audio[0]
        video = out.add_stream("mpeg4", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = out.add_stream("aac", rate=audio_in.rate)
        audio.layout = "mono"
        resampler = av.AudioResampler(format=audio.format.name, layout="mono", rate=audio.rate)
        for frame in src.decode(audio_in):
            frame.pts = None
            for converted in resampler.resample(frame):
                out.mux(audio.encode(converted))
        black = np.zeros((48, 64, 3), np.uint8)
        for i in range(frames):
            image = av.VideoFrame.from_ndarray(black, format="rgb24")
            image.pts = i
            out.mux(video.encode(image))
        out.mux(video.encode(None))
        out.mux(audio.encode(None))
    return buffer.getvalue()


def _ogg_crc(page: bytes) -> int:
    crc = 0
    for byte in page:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def corrupt_ogg_packets(ogg: bytes) -> bytes:
    """The Ogg with every audio page between the first and the last turned to noise, each page
    still well formed (its CRC recomputed): the header and the last page (hence the duration)
    read fine, and only decoding the packets finds the damage."""
    starts = [i for i in range(len(ogg) - 3) if ogg.startswith(b"OggS", i)]
    if len(starts) < 4:
        raise ValueError(f"want an Ogg with >= 4 pages to damage, got {len(starts)}")
    ends = [*starts[1:], len(ogg)]
    out = bytearray()
    for n, (start, end) in enumerate(zip(starts, ends, strict=True)):
        page = bytearray(ogg[start:end])
        if 2 <= n < len(starts) - 1:
            segments = page[26]
            body = 27 + segments
            page[body:] = bytes((i * 37 + 11) % 256 for i in range(len(page) - body))
            page[22:26] = b"\0\0\0\0"
            page[22:26] = _ogg_crc(bytes(page)).to_bytes(4, "little")
        out += page
    return bytes(out)
