"""The models file's optional keys (static_name, aliases, [identity]): parsed, looked up, and
refused when malformed."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.modelsfile import ModelsFileError, load_models_file


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_static_name_is_optional_and_looked_up_by_id(tmp_path: Path) -> None:
    models = load_models_file(
        _write(
            tmp_path,
            '[models.qwen]\nbackend = "hf_audio_lm"\nstatic_name = "Qwen2-Audio-Instruct"\n'
            '[models.other]\nbackend = "gemini"\n',
        )
    )
    assert models.get("qwen").static_name == "Qwen2-Audio-Instruct"
    assert models.static_name("qwen") == "Qwen2-Audio-Instruct"
    assert models.static_name("other") is None
    assert models.static_name("missing") is None


@pytest.mark.parametrize("value", ['""', "3", "[]"])
def test_static_name_must_be_a_non_empty_string(tmp_path: Path, value: str) -> None:
    path = _write(tmp_path, f'[models.qwen]\nbackend = "gemini"\nstatic_name = {value}\n')
    with pytest.raises(ModelsFileError, match=r"\[models\.qwen\]: static_name"):
        load_models_file(path)


def test_unknown_keys_name_static_name_among_the_allowed(tmp_path: Path) -> None:
    path = _write(tmp_path, '[models.qwen]\nbackend = "gemini"\nstatic = "x"\n')
    with pytest.raises(ModelsFileError, match="static_name"):
        load_models_file(path)


def test_aliases_and_identity_words_are_parsed(tmp_path: Path) -> None:
    models = load_models_file(
        _write(
            tmp_path,
            '[identity]\nextra_words = ["Alibaba Cloud", " Tongyi "]\n'
            '[models.qwen]\nbackend = "hf_audio_lm"\ndisplay_name = "Qwen2 Audio"\n'
            'aliases = ["Qwen", "Alibaba"]\n'
            '[models.other]\nbackend = "gemini"\n',
        )
    )
    assert models.get("qwen").aliases == ("Qwen", "Alibaba")
    assert models.get("other").aliases == ()
    assert models.identity_words == ("Alibaba Cloud", "Tongyi"), "stripped"


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ('[models.m]\nbackend = "gemini"\naliases = "Gemini"\n', "[models.m].aliases"),
        ('[models.m]\nbackend = "gemini"\naliases = ["Gemini", ""]\n', "[models.m].aliases"),
        ('[identity]\nextra_words = [1]\n[models.m]\nbackend = "gemini"\n', "extra_words"),
        ('identity = "x"\n[models.m]\nbackend = "gemini"\n', "[identity] must be a table"),
        ('[identity]\nwords = ["x"]\n[models.m]\nbackend = "gemini"\n', "unknown key(s)"),
    ],
)
def test_malformed_aliases_and_identity_are_refused(tmp_path: Path, body: str, named: str) -> None:
    with pytest.raises(ModelsFileError) as info:
        load_models_file(_write(tmp_path, body))
    assert named in str(info.value)
