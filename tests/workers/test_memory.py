"""The worker's start-up memory check: estimates from real checkpoint files, and the refusal."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from contract.modelsfile import load_models_file
from workers.__main__ import main as workers_main
from workers.memory import (
    GiB,
    MemoryFitError,
    Need,
    check_fit,
    safetensors_params,
    weights_bytes,
)
from workers.runtime import load_runtime


def _checkpoint(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    save_file(
        {
            "embed.weight": np.zeros((100, 8), dtype=np.float32),
            "layer.weight": np.zeros((8, 8), dtype=np.float16),
            "position_ids": np.zeros((1, 16), dtype=np.int64),
        },
        str(directory / "model.safetensors"),
    )
    return directory


def _header_only_checkpoint(directory: Path, params: int) -> Path:
    """A checkpoint whose safetensors header declares `params` bf16 parameters: the estimate
    reads headers only, so a 70B model's header is enough to stand for the model."""
    directory.mkdir(parents=True, exist_ok=True)
    header = json.dumps(
        {"w": {"dtype": "BF16", "shape": [params], "data_offsets": [0, 2 * params]}}
    ).encode()
    (directory / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)
    return directory


def test_safetensors_params_counts_per_dtype(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path / "ckpt")
    assert safetensors_params(ckpt / "model.safetensors") == {"F32": 800, "F16": 64, "I64": 16}


def test_weights_bytes_follow_the_load_dtype(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path / "ckpt")
    # As stored: 800·4 + 64·2 + 16·8. In bf16 the float tensors halve; integers keep their size.
    assert weights_bytes(ckpt, None) == 3200 + 128 + 128
    assert weights_bytes(ckpt, 2) == 1600 + 128 + 128
    assert weights_bytes(ckpt, 4) == 3200 + 256 + 128
    (tmp_path / "ct2").mkdir()
    (tmp_path / "ct2" / "model.bin").write_bytes(b"\0" * 1234)
    assert weights_bytes(tmp_path / "ct2", 2) == 1234
    assert weights_bytes(tmp_path, 2) is None


def test_check_fit_sums_per_device_and_names_every_model() -> None:
    needs = [
        Need("qwen", "Qwen/Qwen2-Audio-7B-Instruct", "cuda:0", 17 * GiB),
        Need("llama", "meta-llama/Meta-Llama-3-8B-Instruct", "cuda:0", 16 * GiB),
        Need("llama", "deepdml/faster-whisper-large-v3-turbo-ct2", "cuda:1", 2 * GiB),
    ]
    totals = check_fit(needs, {"cuda:0": 80 * GiB, "cuda:1": 24 * GiB})
    assert totals == {"cuda:0": 33 * GiB, "cuda:1": 2 * GiB}
    with pytest.raises(MemoryFitError) as caught:
        check_fit(needs, {"cuda:0": 24 * GiB, "cuda:1": 24 * GiB})
    message = str(caught.value)
    assert "cuda:0" in message
    assert "33.0 GiB" in message
    assert "24.0 GiB free" in message
    assert "qwen (Qwen/Qwen2-Audio-7B-Instruct): 17.0 GiB" in message
    assert "--serve" in message
    # Headroom: weights that fill the card exactly leave no room for activations.
    with pytest.raises(MemoryFitError):
        check_fit([needs[0]], {"cuda:0": 18 * GiB})


def test_unknown_sizes_are_loaded_unchecked(caplog: pytest.LogCaptureFixture) -> None:
    totals = check_fit([Need("x", "org/not-downloaded", "cuda:0", None)], {"cuda:0": 1})
    assert totals == {"cuda:0": 0}
    assert "cannot estimate" in caplog.text
    assert "hf download" in caplog.text


def _huge_models_file(tmp_path: Path) -> Path:
    # 100 G parameters in float32 on the CPU: 373 GiB, more than any test machine has.
    ckpt = _header_only_checkpoint(tmp_path / "huge", 100_000_000_000)
    path = tmp_path / "models.toml"
    path.write_text(
        "[models.huge]\n"
        'backend = "hf_audio_lm"\n'
        "[models.huge.settings]\n"
        f'model = "{ckpt}"\n'
        'device = "cpu"\n'
        'dtype = "float32"\n'
    )
    return path


def test_load_runtime_refuses_before_loading(tmp_path: Path) -> None:
    models = load_models_file(_huge_models_file(tmp_path))
    with pytest.raises(MemoryFitError, match=r"huge \(.*huge\): 372\.5 GiB"):
        load_runtime(models, None, warmup=False)


def test_worker_exits_with_the_message(
    tmp_path: Path, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = workers_main(["--models", str(_huge_models_file(tmp_path)), "--redis-url", redis_url])
    assert code == 2
    err = capsys.readouterr().err
    assert "python -m workers: the models for cpu do not fit" in err
