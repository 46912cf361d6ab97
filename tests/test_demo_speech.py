"""The demo's spoken mode: its models file gains the espeak-ng voice (the whole demo runs in
tests/test_demo.py; spoken replies end to end in tests/e2e/test_spoken_replies.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.modelsfile import load_models_file
from scripts.demo import DEMO_MODELS, demo_models_file, main


def test_text_mode_uses_the_demo_models_file_as_it_is(tmp_path: Path) -> None:
    assert demo_models_file(tmp_path, "text") == DEMO_MODELS
    assert load_models_file(DEMO_MODELS).tts is None


@pytest.mark.parametrize("mode", ["speech", "both"])
def test_spoken_modes_add_the_espeak_voice(tmp_path: Path, mode: str) -> None:
    models = load_models_file(demo_models_file(tmp_path / "demo", mode))
    assert models.tts is not None
    assert models.tts.backend == "espeak_ng"
    assert set(models.models) == set(load_models_file(DEMO_MODELS).models)


def test_unknown_reply_mode_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--replies", "loud"])
    assert "invalid choice: 'loud'" in capsys.readouterr().err
