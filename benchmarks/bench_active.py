"""How many fewer votes `active` pairing needs than `uniform` for the same interval width on the
rating differences of neighbouring models; prints figures (docs/analysis.md quotes them).

    .venv/bin/python benchmarks/bench_active.py [--models 10] [--battles 4000] [--seeds 4]

Each study is drawn vote by vote with the study's own pairing code (`analysis.simulate`), from a
hidden Bradley–Terry truth spread evenly over 400 Elo points. Width is measured without bootstrap
noise: the SD of θ_k − θ_{k+1} for true neighbours from the Fisher information of the realised
design at the truth (the bootstrap width converges to 2·1.96 of it). Uniform's width falls as
1/√votes, so uniform needs (w_uniform / w_active)² times the votes for active's width: the
saving is 1 − (w_active / w_uniform)². It also prints the ceiling: the best fixed allocation of
votes over pairs for that metric, computed with the truth known (no sequential design can beat
it in expectation). Exits 1 when the saving misses --goal (issue 13: 0.30), or, where the
ceiling itself is below the goal (10 models over 400 Elo: 27.4%), when active is more than
--slack (3 points) short of the ceiling: no design can reach a goal above its ceiling.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from analysis.simulate import even_truth, neighbour_sd, simulate_study
from contract.records import Strategy


def oracle_saving(theta: np.ndarray, iterations: int = 2000) -> float:
    """1 − Σvar(optimal design) / Σvar(uniform design) for the neighbour differences."""
    m = theta.size
    i, j = np.triu_indices(m, 1)
    p = 1 / (1 + np.exp(-(theta[i] - theta[j])))
    info = p * (1 - p)
    k = np.arange(m - 1)

    def covariance(w: np.ndarray) -> np.ndarray:
        lap = np.zeros((m, m))
        lap[i, j] = -w * info
        lap[j, i] = -w * info
        lap[np.arange(m), np.arange(m)] = -lap.sum(axis=1)
        return np.linalg.inv(lap + np.ones((m, m)))

    def total(c: np.ndarray) -> float:
        return float((c[k, k] + c[k + 1, k + 1] - 2 * c[k, k + 1]).sum())

    uniform = np.full(i.size, 1 / i.size)
    w = uniform.copy()
    for _ in range(iterations):  # multiplicative update for A-optimal designs
        c = covariance(w)
        cross = c[k][:, i] - c[k][:, j] - c[k + 1][:, i] + c[k + 1][:, j]
        w *= np.sqrt(info * (cross**2).sum(axis=0))
        w /= w.sum()
    return 1 - total(covariance(w)) / total(covariance(uniform))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--battles", type=int, nargs="+", default=[2000, 5000])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--spread", type=float, nargs="+", default=[400.0])
    parser.add_argument("--goal", type=float, default=0.30)
    parser.add_argument("--slack", type=float, default=0.03)
    args = parser.parse_args()
    failed = False
    for spread in args.spread:
        truth = even_truth(args.models, spread)
        ceiling = oracle_saving(np.array(list(truth.values())))
        for n in args.battles:
            widths: dict[Strategy, list[float]] = {s: [] for s in Strategy}
            per_draw = 0.0
            for seed in range(args.seeds):
                for strategy in (Strategy.UNIFORM, Strategy.BALANCED, Strategy.ACTIVE):
                    start = time.perf_counter()
                    battles = simulate_study(truth, n, strategy, np.random.default_rng(seed))
                    if strategy is Strategy.ACTIVE:
                        per_draw += (time.perf_counter() - start) / n / args.seeds
                    # RMS over neighbours: Σ var is what the design optimises.
                    widths[strategy].append(
                        float(np.sqrt((neighbour_sd(truth, battles) ** 2).mean()))
                    )
            w = {s: float(np.mean(v)) for s, v in widths.items() if v}
            saving = 1 - (w[Strategy.ACTIVE] / w[Strategy.UNIFORM]) ** 2
            target = min(args.goal, ceiling - args.slack)
            ok = saving >= target
            failed |= not ok
            print(
                f"{args.models} models over {spread:g} Elo, {n:,} votes, {args.seeds} seeds: "
                f"neighbour-difference SD uniform {w[Strategy.UNIFORM]:.4f}, balanced "
                f"{w[Strategy.BALANCED]:.4f}, active {w[Strategy.ACTIVE]:.4f} -> active needs "
                f"{100 * saving:.1f}% fewer votes than uniform (goal {100 * target:.1f}%: "
                f"{'OK' if ok else 'MISSED'}; ceiling of any design {100 * ceiling:.1f}%); "
                f"active draw {1000 * per_draw:.2f} ms"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
