"""`python -m workers.try`: one model, one clip, through the same registry and loading code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.fake_apis import FakeApiServer
from tests.workers.conftest import write_models

REPO = Path(__file__).resolve().parents[2]


def run_try(
    *args: str, env: dict[str, str] | None = None, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workers.try", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def models(tmp_path: Path, fake_api: FakeApiServer) -> Path:
    return write_models(
        tmp_path / "models.toml",
        f"""
[models.gpt]
display_name = "GPT-4o audio"
backend = "openai_audio"
[models.gpt.settings]
model = "gpt-4o-audio-preview"
base_url = "{fake_api.openai_url}"

[models.gem]
backend = "gemini"
[models.gem.settings]
model = "gemini-2.5-flash"
base_url = "{fake_api.gemini_url}"
""",
    )


@pytest.fixture
def clip(tmp_path: Path, speech_clips: dict[str, bytes]) -> Path:
    path = tmp_path / "question.ogg"
    path.write_bytes(speech_clips["ogg"])
    return path


def test_json_output(models: Path, clip: Path, fake_api: FakeApiServer) -> None:
    key = {"OPENAI_API_KEY": fake_api.api_key or "", "GEMINI_API_KEY": fake_api.api_key or ""}
    for model_id in ("gpt", "gem"):
        done = run_try("--models", str(models), "--model", model_id, str(clip), "--json", env=key)
        assert done.returncode == 0, done.stderr
        (line,) = done.stdout.strip().splitlines()  # exactly one JSON object
        out = json.loads(line)
        assert out["model"] == model_id
        assert out["reply"] == FakeApiServer.reply_for(2.4, 0)
        assert out["transcript"] is None
        assert out["audio"]["codec"] == "opus"
        timings = out["timings"]
        assert {"load", "total", "first_token", "decode_audio"} <= set(timings)
        assert 0 < timings["first_token"] <= timings["total"]


def test_plain_output(models: Path, clip: Path, fake_api: FakeApiServer) -> None:
    done = run_try(
        "--models", str(models), "--model", "gpt", str(clip),
        env={"OPENAI_API_KEY": fake_api.api_key or ""},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"reply: {FakeApiServer.reply_for(2.4, 0)}" in done.stdout


def test_key_in_dot_env_is_seen(
    models: Path, clip: Path, fake_api: FakeApiServer, tmp_path: Path
) -> None:
    """The key in .env of the working directory, as every setting, with none exported."""
    workdir = tmp_path / "study"
    workdir.mkdir()
    (workdir / ".env").write_text(f"OPENAI_API_KEY={fake_api.api_key}\n", "utf-8")
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    done = subprocess.run(
        [sys.executable, "-m", "workers.try", "--models", str(models), "--model", "gpt",
         str(clip), "--json"],
        cwd=workdir, env={**env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["reply"] == FakeApiServer.reply_for(2.4, 0)


def test_unknown_model_lists_known_ids(models: Path, clip: Path) -> None:
    done = run_try("--models", str(models), "--model", "gpt5", str(clip), "--json")
    assert done.returncode == 2
    assert done.stdout == ""
    assert "unknown model id 'gpt5'" in done.stderr
    assert "known: gpt, gem" in done.stderr


def test_bad_audio_gives_the_reason(models: Path, tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("not audio at all\n" * 20)
    done = run_try("--models", str(models), "--model", "gpt", str(junk), "--json")
    assert done.returncode == 3
    assert "unusable audio (not_audio)" in done.stderr


def test_missing_key_and_wrong_key(models: Path, clip: Path) -> None:
    env = {"OPENAI_API_KEY": ""}
    done = run_try("--models", str(models), "--model", "gpt", str(clip), "--json", env=env)
    assert done.returncode == 2
    assert "OPENAI_API_KEY" in done.stderr
    wrong = "sk-wrong-key-for-cli-test"
    env = {"OPENAI_API_KEY": wrong}
    done = run_try("--models", str(models), "--model", "gpt", str(clip), "--json", env=env)
    assert done.returncode == 4
    assert "HTTP 401" in done.stderr
    assert wrong not in done.stderr


@pytest.mark.slow
def test_demo_pipeline_on_real_speech(tmp_path: Path, speech_clips: dict[str, bytes]) -> None:
    """The interfaces example: the demo ASR pipeline (real Whisper tiny.en) on a question."""
    clip = tmp_path / "question.ogg"
    clip.write_bytes(speech_clips["ogg"])
    models = REPO / "examples" / "models.demo.toml"
    done = run_try("--models", str(models), "--model", "demo-pipeline", str(clip), "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = done.stdout.strip().splitlines()
    out = json.loads(line)
    assert out["model"] == "demo-pipeline"
    assert "capital" in out["transcript"].lower()
    assert "paris" in out["reply"].lower()  # real SmolLM2-135M-Instruct weights
    assert {"load", "total", "first_token", "asr"} <= set(out["timings"])
