"""`python -m workers.try --models FILE --model ID AUDIO [--json]`: one model, one clip.

Loads the model through the same registry and loading code as a worker (no Redis), decodes the
clip as a job would, and prints the reply (streaming partial text to stderr), or with --json one
JSON object: model, display_name, backend, reply, transcript (null for backends without ASR),
audio (probe), timings (seconds: load, decode_audio, total, first_token where known, and the
backend's own). Exit status: 0 ok, 2 bad arguments / models file / model id / settings,
3 unusable audio, 4 the model failed.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import time
from pathlib import Path

from contract.audio import AudioError, load, probe
from contract.modelsfile import ModelsFileError, load_models_file
from workers.backends.base import BackendError
from workers.runtime import load_runtime


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m workers.try", description=__doc__)
    parser.add_argument("--models", required=True, help="models file (TOML)")
    parser.add_argument("--model", required=True, help="model id in the models file")
    parser.add_argument("audio", help="audio file (ogg, mp3, m4a, wav, webm, ...)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="longest clip accepted")
    parser.add_argument("--warmup", action="store_true", help="warm the model up before timing")
    return parser.parse_args(argv)


def fail(code: int, message: str) -> int:
    print(f"python -m workers.try: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        data = Path(args.audio).read_bytes()
    except OSError as exc:
        return fail(2, f"cannot read {args.audio}: {exc.strerror}")
    try:
        models_file = load_models_file(args.models)
        spec = models_file.get(args.model)
    except ModelsFileError as exc:
        return fail(2, str(exc))
    try:
        info = probe(data)
        started = time.perf_counter()
        audio = load(data, args.max_seconds)
        decode_s = time.perf_counter() - started
    except AudioError as exc:
        return fail(3, f"{args.audio}: unusable audio ({exc.reason}): {exc}")
    # With --json, stdout carries exactly one JSON object: whatever a library prints while
    # loading or generating goes to stderr instead.
    quiet = contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext()
    with quiet:
        try:
            loaded = load_runtime(models_file, [spec.id], warmup=args.warmup).get(spec.id)
        except ValueError as exc:
            return fail(2, str(exc))
        except BackendError as exc:
            return fail(4, f"loading {spec.id!r} failed: {exc}")

        def show_partial(text: str) -> None:
            if not args.json:
                print(f"\r… {text[-70:]}", end="", file=sys.stderr, flush=True)

        try:
            started = time.perf_counter()
            answer = loaded.backend.answer(audio, [], show_partial)
            total = time.perf_counter() - started
        except BackendError as exc:
            return fail(4, f"model {spec.id!r} failed: {exc}")
        finally:
            close = getattr(loaded.backend, "close", None)
            if close is not None:
                close()
    timings = {key: value for key, value in answer.timings.items() if key != "total"}
    timings.update(load=loaded.load_s, decode_audio=decode_s, total=total)
    if args.warmup:
        timings["warmup"] = loaded.warmup_s
    if args.json:
        print(
            json.dumps(
                {
                    "model": spec.id,
                    "display_name": spec.display_name,
                    "backend": spec.backend,
                    "reply": answer.reply,
                    "transcript": answer.transcript,
                    "audio": dataclasses.asdict(info),
                    "timings": timings,
                },
                ensure_ascii=False,
            )
        )
    else:
        print("", file=sys.stderr)
        if answer.transcript is not None:
            print(f"transcript: {answer.transcript}")
        print(f"reply: {answer.reply}")
        print("timings: " + ", ".join(f"{k}={v:.3f}" for k, v in sorted(timings.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
