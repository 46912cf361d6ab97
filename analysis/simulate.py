"""Synthetic battles from known strengths: for tests, benchmarks, docs and dry runs of a study.

Everything it makes is labelled synthetic (`participant` = "sim-…"); it never stands in for a
real study's votes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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
