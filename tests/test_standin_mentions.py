"""The stand-in pings whom Discord would: `allowed_mentions` rules, golden cases."""

from __future__ import annotations

import pytest

from devstack.standin.mentions import MentionsError, Pinged, resolve

TEXT = "<@1> <@!2> <@&9> @everyone"


@pytest.mark.parametrize(
    ("allowed", "replied_to", "expected"),
    [
        (None, None, Pinged(("1", "2"), ("9",), True)),
        (None, "7", Pinged(("1", "2", "7"), ("9",), True)),
        ({"parse": []}, "7", Pinged((), (), False)),
        ({"parse": [], "replied_user": True}, "7", Pinged(("7",), (), False)),
        ({"parse": ["users"]}, None, Pinged(("1", "2"), (), False)),
        ({"parse": [], "users": ["2"]}, None, Pinged(("2",), (), False)),
        ({"parse": ["everyone", "roles"]}, None, Pinged((), ("9",), True)),
    ],
)
def test_resolve(allowed: dict | None, replied_to: str | None, expected: Pinged) -> None:
    assert resolve(TEXT, allowed, replied_to=replied_to) == expected


def test_discord_refuses_parse_and_ids_of_one_kind() -> None:
    with pytest.raises(MentionsError):
        resolve(TEXT, {"parse": ["users"], "users": ["1"]}, replied_to=None)
    with pytest.raises(MentionsError):
        resolve(TEXT, {"parse": ["channels"]}, replied_to=None)
