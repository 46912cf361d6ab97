"""Paths and shared data for the analysis tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.simulate import simulate_battles
from analysis.static import StaticTable, load_static
from tests.analysis.paths import data_dir


@pytest.fixture(scope="session")
def static_table() -> StaticTable:
    d = data_dir()
    return load_static(d / "talkarena_static_scores.csv", d / "talkarena_static_benchmarks.csv")


@pytest.fixture(scope="session")
def study_battles(static_table: StaticTable) -> pd.DataFrame:
    """2,000 synthetic battles over the 11 real models; strength follows mean benchmark z."""
    rng = np.random.default_rng(11)
    scores = static_table.scores
    z = ((scores - scores.mean()) / scores.std(ddof=1)).mean(axis=1)
    theta = {m: 1.2 * v + 0.3 * rng.normal() for m, v in z.items()}
    return simulate_battles(theta, 2000, rng)
