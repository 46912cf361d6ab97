"""Speed of the Bradley–Terry bootstrap; prints figures (docs/analysis.md quotes them).

    .venv/bin/python benchmarks/bench_analysis.py [--quick]

Targets (issue 4): 7,500 battles of 6 models with 10,000 bootstrap rounds in <= 0.5 s of
compute on 2 cores; 1,000,000 battles of 100 models with 1,000 rounds in <= 20 s. "compute" is
CPU time of the process (all threads), measured from the battles frame to the bootstrap
ratings, aggregation included. For comparison it times the usual way (resample the battles,
one scipy fit per round) on a few rounds and extrapolates.

The whole process (issue 13): `python -m analysis leaderboard` on a 1,000,000-battle, 100-model
Parquet file with 200 rounds — reading, checking, counting, fitting, bootstrap, writing tables —
against the usual way over the same file (read it, then one scipy fit per round): goal >= 3x faster.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from analysis.battles import load_battles
from analysis.pairs import count_pairs
from analysis.ratings import fit_ratings
from analysis.simulate import simulate_battles


def battles(n_models: int, n_battles: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    theta = {f"model-{i:03d}": v for i, v in enumerate(rng.normal(0, 0.8, n_models))}
    return simulate_battles(theta, n_battles, rng, with_transcripts=False)


def vectorised(df: pd.DataFrame, rounds: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) for aggregation + point fit + all bootstrap rounds."""
    cpu, wall = time.process_time(), time.perf_counter()
    fit_ratings(count_pairs(df), rounds=rounds, seed=0)
    return time.process_time() - cpu, time.perf_counter() - wall


def per_round_scipy(df: pd.DataFrame, rounds: int) -> float:
    """Wall seconds per round of the usual loop: resample battles, one L-BFGS fit each."""
    models = sorted(set(df["model_a"]) | set(df["model_b"]))
    index = {m: k for k, m in enumerate(models)}
    a = df["model_a"].map(index).to_numpy()
    b = df["model_b"].map(index).to_numpy()
    score = df["winner"].map({"model_a": 1.0, "model_b": 0.0}).fillna(0.5).to_numpy()
    rng = np.random.default_rng(0)
    m = len(models)

    def nll(
        theta: np.ndarray, ia: np.ndarray, ib: np.ndarray, s: np.ndarray
    ) -> tuple[float, np.ndarray]:
        d = theta[ia] - theta[ib]
        p = 1 / (1 + np.exp(-d))
        loss = -(s * np.log(p) + (1 - s) * np.log1p(-p)).sum()
        g = np.bincount(ia, s - p, m) - np.bincount(ib, s - p, m)
        return loss, -g

    start = time.perf_counter()
    for _ in range(rounds):
        pick = rng.integers(0, len(df), len(df))
        minimize(
            nll, np.zeros(m), args=(a[pick], b[pick], score[pick]), jac=True, method="L-BFGS-B"
        )
    return (time.perf_counter() - start) / rounds


def whole_process(df: pd.DataFrame, rounds: int, speedup_goal: float = 3.0) -> bool:
    """`python -m analysis leaderboard` end to end vs reading the same file + per-round scipy."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "battles.parquet"
        df.to_parquet(path)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        command = ["leaderboard", str(path), "--rounds", str(rounds), "--out", f"{tmp}/out"]
        subprocess.run(
            [sys.executable, "-m", "analysis", *command],
            check=True,
            capture_output=True,
        )
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        start = time.perf_counter()
        loaded = load_battles(path)
        read_s = time.perf_counter() - start
    naive_rounds = 3
    naive = read_s + per_round_scipy(loaded, naive_rounds) * rounds
    speedup = naive / wall
    ok = speedup >= speedup_goal
    print(
        f"whole `leaderboard` process, {len(df):,} battles, {rounds} rounds: {wall:.2f} s wall "
        f"({cpu:.2f} s CPU, imports included); reading + per-round scipy ≈ {naive:.1f} s wall "
        f"(extrapolated from {naive_rounds} rounds): {speedup:.1f}x faster, goal >= "
        f"{speedup_goal:.0f}x {'OK' if ok else 'MISSED'}"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small cases only (smoke test)")
    args = parser.parse_args()
    cases = [(6, 7_500, 10_000, 0.5), (100, 1_000_000, 1_000, 20.0)]
    if args.quick:
        cases = [(6, 7_500, 1_000, 0.5)]
    failed = False
    for n_models, n_battles, rounds, target in cases:
        df = battles(n_models, n_battles, seed=1)
        vectorised(battles(6, 3000, seed=2), 10)  # warm-up: imports, BLAS threads
        cpu, wall = vectorised(df, rounds)
        naive_rounds = 50 if n_battles < 100_000 else 3
        naive = per_round_scipy(df, naive_rounds) * rounds
        ok = cpu <= target
        failed |= not ok
        print(
            f"{n_battles:>9,} battles, {n_models:>3} models, {rounds:>6,} rounds: "
            f"vectorised {cpu:6.2f} s CPU ({wall:5.2f} s wall), target <= {target} s "
            f"{'OK' if ok else 'MISSED'}; per-round scipy ≈ {naive:7.1f} s wall "
            f"(extrapolated from {naive_rounds} rounds)"
        )
    if not args.quick:
        failed |= not whole_process(battles(100, 1_000_000, seed=3), rounds=200)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
