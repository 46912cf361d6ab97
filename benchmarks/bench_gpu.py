"""Decode speed of the local models: ms/token and time to first token, per model.

    python benchmarks/bench_gpu.py [--models FILE] [--serve id,id] [--runs N] [--max-new-tokens N]

Defaults to examples/models.demo.toml (tiny models, runs anywhere); point it at
examples/models.study.toml on a GPU host. Each model is loaded and warmed up once (on CUDA the
warm-up pays for torch.compile), then answers the same synthesized sentence `--runs` times.
Reference on one H100, 8B model in bf16: ~32-37 ms/token eager, ~17 ms/token with the static
cache compiled; the memory-bandwidth floor is ~5.5 ms/token (16 GB of weights / ~3 TB/s).

ms/token is the decode rate after the first token: (total - first_token) / (tokens - 1).
API backends (openai_audio, gemini, ...) are skipped: their speed is not this host's.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from contract.modelsfile import ModelSpec, load_models_file
from workers.backends.registry import build_backend

ROOT = Path(__file__).resolve().parents[1]

LOCAL_BACKENDS = ("asr_pipeline", "hf_audio_lm")
SENTENCE = "Hello! Could you tell me a short story about a robot who learns to sing?"


def synthesized_speech() -> np.ndarray:
    """The benchmark sentence spoken by espeak-ng, as 16 kHz mono float32."""
    import av

    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is needed for the benchmark clip; run `make system-deps`")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "clip.wav"
        subprocess.run(["espeak-ng", "-w", str(wav), SENTENCE], check=True, capture_output=True)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=16_000)
        chunks: list[np.ndarray] = []
        with av.open(str(wav)) as container:
            for frame in container.decode(audio=0):
                chunks.extend(o.to_ndarray().reshape(-1) for o in resampler.resample(frame))
            chunks.extend(o.to_ndarray().reshape(-1) for o in resampler.resample(None))
    return np.concatenate(chunks).astype(np.float32)


def bench_model(spec: ModelSpec, audio: np.ndarray, runs: int) -> dict[str, object]:
    backend = build_backend(spec)
    started = time.perf_counter()
    backend.load()
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    backend.warmup()
    warmup_s = time.perf_counter() - started
    ttft: list[float] = []
    per_token: list[float] = []
    tokens: list[float] = []
    for _ in range(runs):
        timings = backend.answer(audio, []).timings
        n = timings.get("tokens", 0.0)
        tokens.append(n)
        if "first_token" in timings:
            ttft.append(timings["first_token"])
            if n > 1:
                per_token.append((timings["total"] - timings["first_token"]) / (n - 1))
    generator = getattr(backend, "_llm", None) or getattr(
        getattr(backend, "_adapter", None), "generator", None
    )
    options = getattr(backend, "options", None)
    return {
        "model": spec.id,
        "device": getattr(options, "device", "?"),
        "dtype": str(getattr(options, "dtype", "?")).removeprefix("torch."),
        "compiled": getattr(generator, "compile", False),
        "load_s": load_s,
        "warmup_s": warmup_s,
        "ttft_ms": 1000 * statistics.median(ttft) if ttft else float("nan"),
        "ms_per_token": 1000 * statistics.median(per_token) if per_token else float("nan"),
        "tokens": statistics.median(tokens) if tokens else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=str(ROOT / "examples" / "models.demo.toml"))
    parser.add_argument("--serve", help="comma-separated model ids (default: every local model)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--max-new-tokens", type=int, help="override max_new_tokens (longer = steadier ms/token)"
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, got {args.runs}")

    import torch

    models = load_models_file(args.models)
    wanted = args.serve.split(",") if args.serve else list(models.models)
    specs = [models.get(model_id) for model_id in wanted]
    audio = synthesized_speech()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device (CPU)"
    print(f"# bench_gpu: {args.models}; {gpu}; torch {torch.__version__}; runs={args.runs}")
    print(
        f"{'model':<28} {'device':<7} {'dtype':<9} {'compiled':<8} {'load_s':>7} "
        f"{'warmup_s':>8} {'ttft_ms':>8} {'ms/token':>9} {'tokens':>6}"
    )
    for spec in specs:
        if spec.backend not in LOCAL_BACKENDS:
            print(f"{spec.id:<28} skipped: {spec.backend} is a remote API")
            continue
        if args.max_new_tokens is not None:
            spec = dataclasses.replace(
                spec, settings={**spec.settings, "max_new_tokens": args.max_new_tokens}
            )
        row = bench_model(spec, audio, args.runs)
        print(
            f"{row['model']:<28} {row['device']:<7} {row['dtype']:<9} {row['compiled']!s:<8} "
            f"{row['load_s']:>7.2f} {row['warmup_s']:>8.2f} {row['ttft_ms']:>8.1f} "
            f"{row['ms_per_token']:>9.2f} {row['tokens']:>6.0f}"
        )
        del row
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
