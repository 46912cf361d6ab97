"""Decode speed of the local models: ms/token and time to first token, per model.

    python benchmarks/bench_gpu.py [--models FILE] [--serve id,id] [--runs N] [--max-new-tokens N]

Defaults to examples/models.demo.toml (tiny models, runs anywhere); point it at
examples/models.study.toml on a GPU host. Each model is loaded and warmed up once (on CUDA the
warm-up pays for torch.compile), then answers the same synthesized sentence `--runs` times.
Reference on one H100, 8B model in bf16: ~32-37 ms/token eager, ~17 ms/token with the static
cache compiled; the memory-bandwidth floor is ~5.5 ms/token (16 GB of weights / ~3 TB/s).

ms/token is the decode rate after the first token: (total - first_token) / (tokens - 1).
API backends (openai_audio, gemini, ...) are skipped: their speed is not this host's.

    python benchmarks/bench_gpu.py --synthetic llama-8b [--new-tokens 256] [--eager]

measures the in-process fast path itself on a Llama-shaped model with random weights of the
real shape (Meta-Llama-3-8B: 32 layers, 4096 wide, 8 KV heads, 128256 vocabulary; no download),
through the same generation settings the backends use (`textgen.StreamingGenerator`: static
cache of `max_cache_len`, `torch.compile` with `reduce-overhead`), batch 1, greedy, a fixed
number of new tokens. `--synthetic llama-tiny` is the same on a tiny shape (runs on a CPU).
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
from typing import NotRequired, TypedDict

import numpy as np

from contract.modelsfile import ModelSpec, load_models_file
from workers.backends.registry import build_backend

ROOT = Path(__file__).resolve().parents[1]

LOCAL_BACKENDS = ("asr_pipeline", "hf_audio_lm")
HEADER = (
    f"{'model':<28} {'device':<7} {'dtype':<9} {'compiled':<8} {'load_s':>7} "
    f"{'warmup_s':>8} {'ttft_ms':>8} {'ms/token':>9} {'tokens':>6}"
)
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


class LlamaShape(TypedDict):
    """The LlamaConfig arguments that size a synthetic model."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab_size: int
    max_position_embeddings: int
    rope_theta: NotRequired[float]


# Meta-Llama-3-8B's shape; the tiny one exercises the same code on a CPU.
SHAPES: dict[str, LlamaShape] = {
    "llama-8b": {
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 128256,
        "max_position_embeddings": 8192,
        "rope_theta": 500000.0,
    },
    "llama-tiny": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 1024,
        "max_position_embeddings": 2048,
    },
}


class _Clock:
    """A generate() streamer that only notes when each step's tokens arrive."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.prompt_seen = False

    def put(self, value: object) -> None:
        if not self.prompt_seen:  # the first put is the prompt
            self.prompt_seen = True
            return
        self.times.append(time.perf_counter())

    def end(self) -> None:
        pass


def bench_synthetic(
    shape: str,
    *,
    device: str,
    compiled: bool,
    new_tokens: int = 256,
    prompt_tokens: int = 64,
    runs: int = 3,
    max_cache_len: int = 4096,
) -> dict[str, object]:
    """ms/token and time to first token of the in-process fast path on a random-weight model."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from workers.backends.textgen import GENERATION_DEFAULTS, GenerationOptions, StreamingGenerator

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    # rope_theta is transformers 4's argument; transformers 5 still takes it (into rope_parameters).
    config = LlamaConfig(**SHAPES[shape], bos_token_id=0, eos_token_id=None, pad_token_id=0)  # type: ignore[misc]  # transformers 5 types LlamaConfig's fields without rope_theta, which it accepts
    started = time.perf_counter()
    with torch.device(device):
        model = LlamaForCausalLM(config).to(dtype).eval()  # type: ignore[arg-type]  # PreTrainedModel.to is @functools.wraps'd; typeshed's _Wrapped does not bind self
    build_s = time.perf_counter() - started
    options = GenerationOptions(
        device=device,
        dtype=dtype,
        system_prompt="",
        max_new_tokens=new_tokens,
        temperature=0.0,
        top_p=1.0,
        static_cache=True,
        compile=compiled,
        compile_backend=GENERATION_DEFAULTS["compile_backend"],
        compile_mode=GENERATION_DEFAULTS["compile_mode"],
        max_cache_len=max_cache_len,
        trust_remote_code=False,
    )
    # The backends' own generation settings (static cache, compile config), minus the text
    # streaming, which needs a tokenizer of this vocabulary.
    kwargs = StreamingGenerator(model, None, options, label=shape)._generate_kwargs(
        prompt_tokens, compiled
    )
    kwargs["min_new_tokens"] = new_tokens
    generator = torch.Generator(device="cpu").manual_seed(0)
    input_ids = torch.randint(1, config.vocab_size, (1, prompt_tokens), generator=generator)
    input_ids = input_ids.to(device)

    def once() -> tuple[float, float]:
        clock = _Clock()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        begun = time.perf_counter()
        with torch.inference_mode():
            model.generate(input_ids=input_ids, streamer=clock, **kwargs)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        ended = time.perf_counter()
        if len(clock.times) != new_tokens:
            raise RuntimeError(f"generated {len(clock.times)} tokens, wanted {new_tokens}")
        return clock.times[0] - begun, (ended - clock.times[0]) / (new_tokens - 1)

    started = time.perf_counter()
    once()  # warm-up: pays for compilation and CUDA graph capture
    once()
    warmup_s = time.perf_counter() - started
    measured = [once() for _ in range(runs)]
    return {
        "model": f"synthetic {shape}",
        "device": device,
        "dtype": str(dtype).removeprefix("torch."),
        "compiled": compiled,
        "load_s": build_s,
        "warmup_s": warmup_s,
        "ttft_ms": 1000 * statistics.median(m[0] for m in measured),
        "ms_per_token": 1000 * statistics.median(m[1] for m in measured),
        "tokens": float(new_tokens),
    }


def bench_asr(ref: str, audio: np.ndarray, *, device: str, runs: int = 5) -> dict[str, float]:
    """Seconds to transcribe `audio` with faster-whisper (the pipeline's ASR engine and settings:
    beam 1, VAD on), median of `runs` after one warm-up."""
    from faster_whisper import WhisperModel

    from workers.localmodels import resolve_model_ref

    path, is_local = resolve_model_ref(ref)
    compute_type = "float16" if device == "cuda" else "int8"
    started = time.perf_counter()
    model = WhisperModel(path, device=device, compute_type=compute_type, local_files_only=is_local)
    load_s = time.perf_counter() - started

    def once() -> float:
        begun = time.perf_counter()
        segments, _ = model.transcribe(
            audio, beam_size=1, vad_filter=True, condition_on_previous_text=False
        )
        list(segments)
        return time.perf_counter() - begun

    once()
    seconds = statistics.median(once() for _ in range(runs))
    return {"load_s": load_s, "audio_s": len(audio) / 16_000, "transcribe_s": seconds}


def ten_seconds(audio: np.ndarray) -> np.ndarray:
    """The benchmark sentence repeated (with short pauses) to exactly 10 s."""
    pause = np.zeros(8_000, dtype=np.float32)
    pieces = [audio, pause] * (1 + 160_000 // (len(audio) + len(pause)))
    return np.concatenate(pieces)[:160_000]


def print_row(row: dict[str, object]) -> None:
    print(
        f"{row['model']:<28} {row['device']:<7} {row['dtype']:<9} {row['compiled']!s:<8} "
        f"{row['load_s']:>7.2f} {row['warmup_s']:>8.2f} {row['ttft_ms']:>8.1f} "
        f"{row['ms_per_token']:>9.2f} {row['tokens']:>6.0f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=str(ROOT / "examples" / "models.demo.toml"))
    parser.add_argument("--serve", help="comma-separated model ids (default: every local model)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--max-new-tokens", type=int, help="override max_new_tokens (longer = steadier ms/token)"
    )
    parser.add_argument(
        "--asr",
        metavar="MODEL",
        help="time faster-whisper MODEL (hub id, path or package:) on a 10 s clip",
    )
    parser.add_argument("--synthetic", choices=sorted(SHAPES), help="a random-weight model")
    parser.add_argument("--new-tokens", type=int, default=256, help="with --synthetic")
    parser.add_argument("--eager", action="store_true", help="with --synthetic: no compile")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, got {args.runs}")

    import torch

    if args.asr:
        device = "cuda" if torch.cuda.is_available() else "cpu"
        asr = bench_asr(args.asr, ten_seconds(synthesized_speech()), device=device, runs=args.runs)
        print(
            f"# bench_gpu --asr {args.asr} on {device}: load {asr['load_s']:.2f} s, "
            f"{asr['audio_s']:.0f} s clip transcribed in {1000 * asr['transcribe_s']:.0f} ms "
            f"(median of {args.runs})"
        )
        return 0
    if args.synthetic:
        device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cpu" and args.synthetic != "llama-tiny":
            parser.error(f"--synthetic {args.synthetic} needs a CUDA device; try llama-tiny")
        gpu = torch.cuda.get_device_name(0) if device == "cuda" else "no CUDA device (CPU)"
        import transformers

        print(
            f"# bench_gpu --synthetic {args.synthetic}; {gpu}; torch {torch.__version__}; "
            f"transformers {transformers.__version__}; runs={args.runs}"
        )
        print(HEADER)
        print_row(
            bench_synthetic(
                args.synthetic,
                device=device,
                compiled=not args.eager and device == "cuda",
                new_tokens=args.new_tokens,
                runs=args.runs,
            )
        )
        return 0

    models = load_models_file(args.models)
    wanted = args.serve.split(",") if args.serve else list(models.models)
    specs = [models.get(model_id) for model_id in wanted]
    audio = synthesized_speech()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device (CPU)"
    print(f"# bench_gpu: {args.models}; {gpu}; torch {torch.__version__}; runs={args.runs}")
    print(HEADER)
    for spec in specs:
        if spec.backend not in LOCAL_BACKENDS:
            print(f"{spec.id:<28} skipped: {spec.backend} is a remote API")
            continue
        if args.max_new_tokens is not None:
            spec = dataclasses.replace(
                spec, settings={**spec.settings, "max_new_tokens": args.max_new_tokens}
            )
        row = bench_model(spec, audio, args.runs)
        print_row(row)
        del row
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
