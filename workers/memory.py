"""Will the weights fit? A worker's start-up check, before it loads anything.

A worker that loads models one after another finds out that the last one does not fit only after
minutes of loading (or never: the host swaps, or CUDA fails mid-study). So `load_runtime` first
estimates the weights of every model it is asked to serve and refuses, naming each model and its
size, when their sum does not fit the memory the worker sees on each device: free CUDA memory
(`torch.cuda.mem_get_info`) for a GPU, available system memory for the CPU.

Estimates come from the checkpoint files: safetensors headers give each tensor's shape, so the
parameter count times the size of the dtype the backend loads in (bf16 on CUDA, float32 on the
CPU, or the model's `dtype` setting); other weight files (a CTranslate2 `model.bin`, a pickled
`pytorch_model.bin`) count at their size on disk. A hub id is looked up in the local Hugging Face
cache only, never on the network: a model not downloaded yet cannot be estimated, which is logged,
and the worker loads it anyway. API models need no memory here.
"""

from __future__ import annotations

import json
import logging
import math
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract.modelsfile import ModelSpec
from workers.localmodels import resolve_model_ref

log = logging.getLogger(__name__)

# Room left for what is not weights: activations, the KV cache, the CUDA context, allocator slack.
HEADROOM = 0.10
SAFETENSORS_DTYPE_BYTES = {
    "F64": 8, "I64": 8, "U64": 8,
    "F32": 4, "I32": 4, "U32": 4,
    "F16": 2, "BF16": 2, "I16": 2, "U16": 2,
    "F8_E4M3": 1, "F8_E5M2": 1, "I8": 1, "U8": 1, "BOOL": 1,
}  # fmt: skip
OTHER_WEIGHT_FILES = ("model.bin", "pytorch_model.bin", "*.pt", "pytorch_model-*.bin")
INDEX_FILES = ("model.safetensors.index.json", "model.safetensors", "model.bin", "config.json")
GiB = 1024**3


class MemoryFitError(ValueError):
    """The models a worker was asked to serve do not fit the memory it sees."""


@dataclass(frozen=True)
class Need:
    """The weights of one part of one model (a pipeline has two) on one device."""

    model_id: str
    ref: str
    device: str  # "cpu" or "cuda:N"
    nbytes: int | None  # None: could not be estimated


def gib(nbytes: float) -> str:
    return f"{nbytes / GiB:.1f} GiB"


def safetensors_params(path: Path) -> dict[str, int]:
    """Parameter count per safetensors dtype name, read from the file's JSON header only."""
    with path.open("rb") as fh:
        (length,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(length))
    counts: dict[str, int] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        counts[entry["dtype"]] = counts.get(entry["dtype"], 0) + math.prod(entry["shape"])
    return counts


def weights_bytes(directory: Path, itemsize: int | None) -> int | None:
    """Bytes the checkpoint in `directory` takes once loaded with `itemsize` bytes per parameter
    (None: as stored). None when the directory holds no weight file this module knows."""
    shards = sorted(directory.glob("*.safetensors"))
    if shards:
        total = 0
        for shard in shards:
            for dtype, count in safetensors_params(shard).items():
                stored = SAFETENSORS_DTYPE_BYTES.get(dtype, 4)
                # Integer tensors (position ids, quantised blocks) keep their size.
                floating = dtype.startswith(("F", "BF"))
                total += count * (itemsize if itemsize and floating else stored)
        return total
    files = {p for pattern in OTHER_WEIGHT_FILES for p in directory.glob(pattern)}
    if files:
        return sum(p.stat().st_size for p in files)
    return None


def cached_snapshot(repo_id: str) -> Path | None:
    """The local Hugging Face cache directory of `repo_id`, if it was downloaded (no network)."""
    from huggingface_hub import try_to_load_from_cache

    for filename in INDEX_FILES:
        found = try_to_load_from_cache(repo_id, filename)
        if isinstance(found, str):
            return Path(found).parent
    return None


def estimate(ref: str, itemsize: int | None) -> int | None:
    """Weights of a model reference (see workers.localmodels), or None when unknown."""
    path, is_local = resolve_model_ref(ref)
    directory = Path(path) if is_local else cached_snapshot(path)
    if directory is None:
        return None
    return weights_bytes(directory, itemsize)


def backend_needs(spec: ModelSpec, backend: Any) -> list[Need]:
    """What a built (not loaded) backend will put on which device; [] for API models.

    Goes by the backend name, not isinstance: an API-only worker must not import torch here.
    """
    if spec.backend == "asr_pipeline":
        options = backend.options
        itemsize = options.dtype.itemsize
        if backend.asr_engine == "faster_whisper":
            # CTranslate2 weights count at their size on disk.
            asr_ref, asr_itemsize = backend.asr_model, None
        else:
            asr_ref = backend.asr_hf_model or backend.asr_model
            # Whisper takes the LLM's dtype only when both share a device (see asr_pipeline).
            asr_itemsize = itemsize if backend.asr_device == options.device else None
        return [
            _need(spec.id, asr_ref, backend.asr_device, asr_itemsize),
            _need(spec.id, backend.llm_model, options.device, itemsize),
        ]
    if spec.backend == "hf_audio_lm":
        options = backend.options
        return [_need(spec.id, backend.model_ref, options.device, options.dtype.itemsize)]
    return []


def _need(model_id: str, ref: str, device: str, itemsize: int | None) -> Need:
    return Need(model_id, ref, _device(device), estimate(ref, itemsize))


def _device(device: str) -> str:
    """`cuda` -> `cuda:<current index>`, so two spellings of one GPU add up together."""
    if device == "cuda":
        import torch

        return f"cuda:{torch.cuda.current_device()}"
    return device


def available_bytes(device: str) -> int | None:
    """Memory free for new weights on `device`; None where it cannot be known (mps)."""
    if device.startswith("cuda"):
        import torch

        index = int(device.partition(":")[2] or 0)
        free, _total = torch.cuda.mem_get_info(index)
        return int(free)
    if device == "cpu":
        return system_available_bytes()
    return None


def system_available_bytes() -> int:
    """MemAvailable from /proc/meminfo (what can be allocated without swapping), else free pages."""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_fit(
    needs: Sequence[Need], available: dict[str, int | None] | None = None
) -> dict[str, int]:
    """Refuse (MemoryFitError) when the estimated weights on a device exceed what it has free,
    less HEADROOM. Returns the estimated bytes per device. `available` overrides the probe."""
    per_device: dict[str, list[Need]] = {}
    for need in needs:
        per_device.setdefault(need.device, []).append(need)
    totals: dict[str, int] = {}
    for device, group in per_device.items():
        for need in group:
            if need.nbytes is None:
                log.warning(
                    "model %s: cannot estimate the weights of %r (not a local checkpoint and not "
                    "in the Hugging Face cache yet); loading it unchecked. Download it first "
                    "(hf download %s) to have it checked.",
                    need.model_id,
                    need.ref,
                    need.ref,
                )
        total = sum(n.nbytes or 0 for n in group)
        totals[device] = total
        free = available[device] if available and device in available else available_bytes(device)
        if free is None or total == 0:
            continue
        usable = free * (1 - HEADROOM)
        log.info("%s: weights %s of %s free", device, gib(total), gib(free))
        if total > usable:
            parts = ", ".join(
                f"{n.model_id} ({n.ref}): {'unknown' if n.nbytes is None else gib(n.nbytes)}"
                for n in group
            )
            raise MemoryFitError(
                f"the models for {device} do not fit: their weights need {gib(total)} but "
                f"{device} has {gib(free)} free ({gib(usable)} after {HEADROOM:.0%} headroom for "
                f"activations and the KV cache). Weights: {parts}. Serve fewer models in this "
                "worker (--serve ID; one worker per model per GPU, docs/running-a-study.md), use "
                "a larger card, or a smaller dtype."
            )
    return totals


def check_models_fit(specs: Iterable[ModelSpec], backends: Iterable[Any]) -> dict[str, int]:
    """Estimate every model's weights and refuse if they do not fit (see `check_fit`)."""
    needs = [
        need
        for spec, backend in zip(specs, backends, strict=True)
        for need in backend_needs(spec, backend)
    ]
    return check_fit(needs)
