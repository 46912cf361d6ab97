"""Fixtures shared by the reliability tests: real speech clips (the e2e suite's own fixtures)."""

from __future__ import annotations

from tests.e2e.conftest import voice_ogg

__all__ = ["voice_ogg"]
