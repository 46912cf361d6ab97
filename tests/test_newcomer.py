"""A newcomer's path: the Procfile runs without an active venv, the README and docs say what a
study host needs, and docs/interfaces.md names every stable interface the code has."""

from __future__ import annotations

import importlib.util
import re
import shlex
import tomllib
from pathlib import Path

import pytest

from bot.core.quality import FAST_VOTE, IDENTITY_LEAK
from bot.core.study_config import LIMIT_RANGES
from bot.export import BATTLE_COLUMNS, PARTICIPANT_COLUMNS
from contract.settings import Settings

REPO = Path(__file__).resolve().parents[1]
VENV_PYTHON = ".venv/bin/python"
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def procfile_lines() -> list[tuple[str, list[str]]]:
    lines = []
    for raw in (REPO / "Procfile").read_text("utf-8").splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        name, sep, command = raw.partition(":")
        assert sep, f"Procfile line without 'name:': {raw!r}"
        lines.append((name.strip(), shlex.split(command)))
    return lines


def test_procfile_lines_run_the_venvs_python_on_modules_that_exist() -> None:
    lines = procfile_lines()
    assert "bot" in dict(lines)
    study_models = tomllib.loads((REPO / "examples/models.study.toml").read_text("utf-8"))
    for name, words in lines:
        while words and ENV_ASSIGNMENT.match(words[0]):
            words = words[1:]
        # The venv's interpreter: `honcho start` works without an active venv.
        assert words[0] == VENV_PYTHON, f"{name}: runs {words[0]!r}, not {VENV_PYTHON}"
        assert words[1] == "-m", f"{name}: {words}"
        module = words[2]
        assert importlib.util.find_spec(module) is not None, f"{name}: no module {module!r}"
        assert (REPO / module.replace(".", "/") / "__main__.py").exists(), f"{name}: {module}"
        if "--serve" in words:
            served = words[words.index("--serve") + 1].split(",")
            unknown = [m for m in served if m not in study_models["models"]]
            assert not unknown, f"{name}: models not in examples/models.study.toml: {unknown}"


def test_the_readme_walks_a_study_host_through_the_venv_and_a_test_clip() -> None:
    readme = (REPO / "README.md").read_text("utf-8")
    assert "make install" in readme
    assert "source .venv/bin/activate" in readme
    assert ".venv/bin/python" in readme
    assert re.search(r"espeak-ng -w \S+\.wav .* && ffmpeg .*-c:a libopus", readme)
    assert re.search(r"^install:", (REPO / "Makefile").read_text("utf-8"), re.MULTILINE)


def _docs() -> dict[str, str]:
    files = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    return {str(path.relative_to(REPO)): path.read_text("utf-8") for path in files}


def test_the_docs_stand_alone_and_use_todays_commands() -> None:
    for name, text in _docs().items():
        assert "DESIGN.md" not in text, f"{name} refers to a DESIGN.md outside the repository"
        assert "huggingface-cli login" not in text.replace(
            "the old `huggingface-cli login` no longer exists", ""
        ), f"{name}: `hf auth login`"
    walk_through = (REPO / "docs/running-a-study.md").read_text("utf-8")
    assert "hf auth login" in walk_through
    assert "gated" in walk_through
    assert "export LD_LIBRARY_PATH=" in walk_through


@pytest.mark.parametrize("model", ["diva-llama-3-8b", "typhoon-audio-8b"])
def test_unverified_adapters_say_so_in_the_models_file(model: str) -> None:
    text = (REPO / "examples/models.study.toml").read_text("utf-8")
    section = text.split(f"[models.{model}.settings]", 1)[1].split("\n[", 1)[0]
    assert "UNVERIFIED" in section, f"{model}: not marked unverified"


def test_interfaces_doc_names_every_setting_column_limit_and_flag() -> None:
    doc = (REPO / "docs/interfaces.md").read_text("utf-8")
    env_names = [
        str(field.validation_alias)
        for field in Settings.model_fields.values()
        if field.validation_alias is not None
    ]
    assert "PARLEY_METRICS_PORT" in env_names
    names = [*env_names, *BATTLE_COLUMNS, *PARTICIPANT_COLUMNS, *LIMIT_RANGES]
    missing = [n for n in names if f"`{n}`" not in doc]
    assert not missing, f"docs/interfaces.md does not name: {missing}"
    for flag in (FAST_VOTE, IDENTITY_LEAK):
        assert f"`{flag}`" in doc
    for word in ("static_name", "aliases", "[identity]", "[tts]", "[asr]", "active", "mode"):
        assert word in doc, word
