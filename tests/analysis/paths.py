"""Where the analysis tests find the real static benchmark table."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).parents[2]
# CI runs a clean clone with shared/ beside it; a clone alone has the committed copy.
SHARED_DATA = REPO / ".." / "shared" / "data"
EXAMPLE_DATA = REPO / "examples" / "data"


def data_dir() -> Path:
    return SHARED_DATA if (SHARED_DATA / "talkarena_static_scores.csv").exists() else EXAMPLE_DATA
