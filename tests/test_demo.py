"""`make demo` end to end: the whole simulated study, its export, report and ranking check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]

# The demo's own budget is ~3 minutes on 2 quiet cores (real SmolLM2 replies); the run below may
# take up to its subprocess timeout on a loaded machine, so the test's limit matches that.
pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(660)]


def test_demo_runs_a_whole_study(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PARLEY_", "DISCORD_"))}
    result = subprocess.run(
        [sys.executable, "-m", "scripts.demo", "--data-dir", str(tmp_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "recovered the hidden preference" in output
    demo = tmp_path / "demo"
    battles = pd.read_parquet(demo / "data" / "exports" / "battles.parquet")
    assert len(battles) == 60
    assert battles["winner"].notna().all()
    report = (demo / "data" / "reports" / "report.html").read_text(encoding="utf-8")
    assert "demo-qwen2-audio" in report
    transcript = (demo / "transcript.md").read_text(encoding="utf-8")
    assert "Thanks for voting" in transcript
    # Everything it started has stopped: no bot or worker of this run is left.
    leftovers = subprocess.run(
        ["pgrep", "-f", str(demo)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert leftovers == []
