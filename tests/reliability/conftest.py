"""Fixtures shared by the reliability tests: the e2e suite's driver over a module's own `stack`,
and real speech clips."""

from __future__ import annotations

from tests.e2e.conftest import driver, voice_ogg

__all__ = ["driver", "voice_ogg"]
