"""The moderator role matches by id or exact name (PARLEY_MODERATOR_ROLE)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bot.discord_app.checks import role_matches


@dataclass(frozen=True)
class Role:
    """The two attributes of discord.Role the check reads."""

    id: int
    name: str


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        ("Study moderator", True),
        ("123456789012345678", True),
        (" 123456789012345678 ", True),
        ("study moderator", False),  # names match exactly, as Discord shows them
        ("Study", False),
        ("12345", False),
    ],
)
def test_role_matches(wanted: str, expected: bool) -> None:
    role = Role(id=123456789012345678, name="Study moderator")
    assert role_matches(role, wanted) is expected  # type: ignore[arg-type]
