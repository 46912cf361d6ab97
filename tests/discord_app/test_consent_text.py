"""The consent text the bot loads at start: the shipped placeholder makes it warn."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.discord_app.app import CONSENT_PLACEHOLDER, load_consent
from contract.settings import Settings


def settings_for(consent_file: Path | None) -> Settings:
    return Settings(PARLEY_CONSENT_FILE=consent_file)  # type: ignore[call-arg]


def test_shipped_placeholder_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.discord_app.app"):
        text = load_consent(settings_for(None))  # the shipped bot/consent.md
    assert CONSENT_PLACEHOLDER in text
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("still has the placeholder" in w for w in warnings), warnings


def test_filled_in_text_does_not_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    shipped = (Path(__file__).resolve().parents[2] / "bot" / "consent.md").read_text("utf-8")
    filled = tmp_path / "consent.md"
    filled.write_text(
        shipped.replace(CONSENT_PLACEHOLDER, "Speech Lab, Example University, a@b.org; IRB-1."),
        "utf-8",
    )
    with caplog.at_level(logging.WARNING, logger="bot.discord_app.app"):
        text = load_consent(settings_for(filled))
    assert "Speech Lab" in text
    assert not [r for r in caplog.records if "placeholder" in r.getMessage()]
