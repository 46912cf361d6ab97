from __future__ import annotations

import pytest

from contract.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    for name in (
        "DISCORD_TOKEN",
        "REDIS_URL",
        "PARLEY_MODELS",
        "PARLEY_DATA_DIR",
        "PARLEY_SECRET",
        "PARLEY_GUILD_ID",
        "PARLEY_MODERATOR_ROLE",
        "PARLEY_STUDY_CHANNEL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults() -> None:
    settings = load_settings()
    assert settings.redis_url == "redis://localhost:6379/0"
    assert str(settings.data_dir) == "data"
    assert settings.discord_api_base == "https://discord.com/api/v10"
    assert settings.discord_gateway_url == "wss://gateway.discord.gg/"


def test_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "http://nope")
    monkeypatch.setenv("PARLEY_GUILD_ID", "not-a-number")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "REDIS_URL" in str(info.value)
    assert "PARLEY_GUILD_ID" in str(info.value)


def test_secret_is_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLEY_SECRET", "tooshort")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "PARLEY_SECRET" in str(info.value)
    assert "tooshort" not in str(info.value)


def test_bot_requires_its_settings() -> None:
    with pytest.raises(SettingsError, match=r"DISCORD_TOKEN.*PARLEY_SECRET"):
        load_settings().for_bot()


def test_dotenv_is_read(tmp_path) -> None:
    (tmp_path / ".env").write_text("PARLEY_GUILD_ID=42\nPARLEY_SECRET=0123456789abcdef0\n")
    settings = load_settings()
    assert settings.guild_id == 42
    assert settings.secret_bytes == b"0123456789abcdef0"
