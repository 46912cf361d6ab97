"""Synthetic battles from known strengths: for tests, benchmarks, docs and dry runs of a study.

Everything it makes is labelled synthetic (`participant` = "sim-…"); it never stands in for a
real study's votes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from contract.keys import pair_field
from contract.pairing import PairOutcome, draw_battle_models
from contract.records import Strategy

# Query templates per topic, so the topic step has something real to cluster.
TOPIC_QUERIES: dict[str, tuple[str, ...]] = {
    "cooking": (
        "how long should I boil an egg for a soft yolk",
        "what can I cook tonight with rice, garlic and spinach",
        "give me a quick recipe for tomato soup",
        "how do I make fresh pasta dough without a machine",
        "what spices go well with roasted chicken",
    ),
    "travel": (
        "what should I pack for a week of hiking in the alps",
        "is it better to take the train or fly from paris to rome",
        "recommend a few things to see in tokyo in two days",
        "how early should I arrive at the airport for an international flight",
        "what is the cheapest way to travel around portugal",
    ),
    "health": (
        "how many hours of sleep does an adult really need",
        "what are good stretches for lower back pain",
        "how much water should I drink while running",
        "is it bad to skip breakfast before exercise",
        "what helps with a sore throat at night",
    ),
    "technology": (
        "how do I speed up my old laptop",
        "what is the difference between ram and storage",
        "explain how a wifi router works",
        "should I buy a phone with more camera megapixels",
        "how can I back up my photos automatically",
    ),
}


def simulate_battles(
    theta: dict[str, float],
    n_battles: int,
    rng: np.random.Generator,
    *,
    tie_rate: float = 0.1,
    bothbad_share: float = 0.3,
    unvoted_rate: float = 0.0,
    n_participants: int = 50,
    start: str = "2026-01-01",
    with_transcripts: bool = True,
) -> pd.DataFrame:
    """Battles under Bradley–Terry with strengths e^θ; ties at `tie_rate`, a share of them "both
    bad"; pairs uniform over unordered pairs, sides random."""
    if n_battles < 1 or len(theta) < 2:
        raise ValueError(f"need n_battles >= 1 and >= 2 models, got {n_battles}, {len(theta)}")
    if not 0 <= tie_rate < 1 or not 0 <= unvoted_rate < 1:
        raise ValueError(
            f"tie_rate and unvoted_rate must be in [0, 1), got {tie_rate}, {unvoted_rate}"
        )
    names = np.array(list(theta))
    strength = np.array(list(theta.values()), dtype=float)
    m = names.size
    a = rng.integers(0, m, n_battles)
    b = (a + rng.integers(1, m, n_battles)) % m
    p_a = 1 / (1 + np.exp(-(strength[a] - strength[b])))
    tie = rng.random(n_battles) < tie_rate
    bothbad = rng.random(n_battles) < bothbad_share
    a_wins = rng.random(n_battles) < p_a
    winner = np.where(
        tie, np.where(bothbad, "tie (bothbad)", "tie"), np.where(a_wins, "model_a", "model_b")
    )
    winner = np.where(rng.random(n_battles) < unvoted_rate, "", winner)
    seconds = np.sort(rng.uniform(0, 30 * 86400, n_battles))
    frame = pd.DataFrame(
        {
            "battle_id": [f"sim-{i:07d}" for i in range(n_battles)],
            "tstamp": pd.Timestamp(start, tz="UTC") + pd.to_timedelta(seconds, unit="s"),
            "participant": [f"sim-p{k:04d}" for k in rng.integers(0, n_participants, n_battles)],
            "model_a": names[a],
            "model_b": names[b],
            "winner": winner,
        }
    )
    if with_transcripts:
        topics = list(TOPIC_QUERIES)
        pick = rng.integers(0, len(topics), n_battles)
        frame["category"] = [topics[k] for k in pick]
        frame["transcript"] = [
            TOPIC_QUERIES[topics[k]][rng.integers(0, len(TOPIC_QUERIES[topics[k]]))] for k in pick
        ]
    return frame


# The hidden truth of a sequential simulation: strengths spread evenly over this many Elo points.
SPREAD_ELO = 400.0
_ELO_SCALE = 400.0 / np.log(10.0)


def even_truth(n_models: int, spread_elo: float = SPREAD_ELO) -> dict[str, float]:
    """Model name → hidden θ (natural log), evenly over `spread_elo` Elo points, best first."""
    if n_models < 2:
        raise ValueError(f"need at least 2 models, got {n_models}")
    if spread_elo < 0:
        raise ValueError(f"spread_elo must be >= 0, got {spread_elo}")
    width = len(str(n_models))
    elo = np.linspace(spread_elo / 2, -spread_elo / 2, n_models)
    return {f"model-{k + 1:0{width}d}": v / _ELO_SCALE for k, v in enumerate(elo)}


def simulate_study(
    theta: dict[str, float],
    n_battles: int,
    strategy: Strategy,
    rng: np.random.Generator,
    *,
    pair_target: int = 50,
    tie_rate: float = 0.0,
    n_participants: int = 50,
    start: str = "2026-01-01",
) -> pd.DataFrame:
    """Battles voted one after another, each pair drawn by the study's own pairing code
    (`contract.pairing.draw_battle_models`) from the counts and votes so far, each vote drawn from
    Bradley–Terry with strengths e^θ (a tie at `tie_rate`, independent of strength)."""
    if n_battles < 1 or len(theta) < 2:
        raise ValueError(f"need n_battles >= 1 and >= 2 models, got {n_battles}, {len(theta)}")
    if not 0 <= tie_rate < 1:
        raise ValueError(f"tie_rate must be in [0, 1), got {tie_rate}")
    roster = list(theta)
    counts: dict[str, int] = {}
    votes: dict[str, PairOutcome] = {}
    model_a, model_b, winner = [], [], []
    for _ in range(n_battles):
        a, b = draw_battle_models(roster, strategy, counts, pair_target, rng, votes)
        field = pair_field(a, b)
        counts[field] = counts.get(field, 0) + 1
        low_wins, high_wins, ties = votes.get(field, PairOutcome(0.0, 0.0, 0.0))
        if rng.random() < tie_rate:
            outcome, ties = "tie", ties + 1
        else:
            a_wins = rng.random() < 1 / (1 + np.exp(theta[b] - theta[a]))
            outcome = "model_a" if a_wins else "model_b"
            if a_wins == (a < b):
                low_wins += 1
            else:
                high_wins += 1
        votes[field] = PairOutcome(low_wins, high_wins, ties)
        model_a.append(a)
        model_b.append(b)
        winner.append(outcome)
    seconds = np.sort(rng.uniform(0, 30 * 86400, n_battles))
    return pd.DataFrame(
        {
            "battle_id": [f"sim-{i:07d}" for i in range(n_battles)],
            "tstamp": pd.Timestamp(start, tz="UTC") + pd.to_timedelta(seconds, unit="s"),
            "participant": [f"sim-p{k:04d}" for k in rng.integers(0, n_participants, n_battles)],
            "model_a": model_a,
            "model_b": model_b,
            "winner": winner,
            "strategy": str(strategy),
        }
    )


def neighbour_sd(theta: dict[str, float], battles: pd.DataFrame) -> np.ndarray:
    """SD of θ_k − θ_{k+1} for the true neighbours (best first) under the design of `battles`,
    from the Fisher information at the truth: what the interval width on neighbouring
    differences converges to, without the noise of one bootstrap."""
    names = list(theta)
    order = sorted(range(len(names)), key=lambda k: -theta[names[k]])
    index = {names[k]: r for r, k in enumerate(order)}
    strength = np.array([theta[names[k]] for k in order])
    m = len(names)
    a = battles["model_a"].map(index).to_numpy()
    b = battles["model_b"].map(index).to_numpy()
    if np.isnan(a.astype(float)).any() or np.isnan(b.astype(float)).any():
        raise ValueError("battles name models missing from theta")
    p = 1 / (1 + np.exp(-(strength[a] - strength[b])))
    w = p * (1 - p)
    info = np.zeros((m, m))
    np.add.at(info, (a, b), -w)
    np.add.at(info, (b, a), -w)
    info[np.arange(m), np.arange(m)] = -info.sum(axis=1)
    cov = np.linalg.inv(info + np.ones((m, m)))
    k = np.arange(m - 1)
    se: np.ndarray = np.sqrt(cov[k, k] + cov[k + 1, k + 1] - 2 * cov[k, k + 1])
    return se
