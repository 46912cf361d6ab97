"""Topic clustering (pure, on given vectors) and the real MiniLM embedding (slow)."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from analysis.topics import (
    cluster_texts,
    embed_texts,
    topic_leaderboards,
    topic_shares,
    transcript_column,
)

COOKING = ["how do I cook rice", "a recipe to cook pasta", "cook chicken with garlic recipe"]
FLIGHTS = ["cheap flight to rome", "book a flight to tokyo", "flight delayed what now"]


def blobs(rng: np.random.Generator, sizes: list[int]) -> np.ndarray:
    centres = np.eye(8)[: len(sizes)] * 5
    return np.vstack(
        [c + 0.1 * rng.normal(size=(n, 8)) for c, n in zip(centres, sizes, strict=True)]
    )


@pytest.mark.parametrize("method", ["kmeans", "agglomerative"])
def test_clusters_found_and_named_by_their_words(method: str) -> None:
    rng = np.random.default_rng(0)
    texts = ["cook rice recipe"] * 30 + ["flight to rome airport"] * 20 + ["sleep at night"] * 10
    vectors = blobs(rng, [30, 20, 10])
    topics = cluster_texts(vectors, texts, rng, method=method)
    assert topics.k == 3
    assert topics.silhouette is not None
    assert topics.silhouette > 0.9
    np.testing.assert_array_equal(topics.labels, [0] * 30 + [1] * 20 + [2] * 10)
    assert "cook" in topics.names[0]
    assert "flight" in topics.names[1]
    shares = topic_shares(pd.DataFrame(index=range(60)), topics)
    np.testing.assert_allclose(shares["share"], [0.5, 1 / 3, 1 / 6])


def test_given_k_and_bad_k() -> None:
    rng = np.random.default_rng(1)
    texts = [f"text {i}" for i in range(40)]
    vectors = blobs(rng, [20, 20])
    assert cluster_texts(vectors, texts, rng, k=4).k == 4
    with pytest.raises(ValueError, match="k must be in"):
        cluster_texts(vectors, texts, rng, k=0)
    with pytest.raises(ValueError, match="method"):
        cluster_texts(vectors, texts, rng, method="dbscan")


def test_leaderboard_per_topic(study_battles: pd.DataFrame) -> None:
    from analysis.topics import Topics

    labels = (study_battles["category"] == "cooking").to_numpy(int)
    topics = Topics(labels=labels, names=("other", "cooking"), k=2, silhouette=None)
    boards, notes = topic_leaderboards(study_battles, topics, np.random.default_rng(0), rounds=50)
    assert notes == []
    assert set(boards["topic"]) == {0, 1}
    assert boards.groupby("topic")["battles"].sum().sum() == 2 * len(study_battles)


def test_transcript_column_prefers_non_empty() -> None:
    df = pd.DataFrame({"transcript": ["", None], "transcript_a": ["hello", ""]})
    assert transcript_column(df) == "transcript_a"
    assert transcript_column(pd.DataFrame({"x": [1]})) is None


def test_missing_topics_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes `import sentence_transformers` raise ImportError, as on
    # an install with only the `analysis` extra.
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(RuntimeError, match=r"`topics` extra"):
        embed_texts(["hello"])


@pytest.mark.slow
def test_real_minilm_embeddings_cluster_by_meaning() -> None:
    texts = COOKING * 4 + FLIGHTS * 4
    vectors = embed_texts(texts)
    assert vectors.shape == (24, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    topics = cluster_texts(vectors, texts, np.random.default_rng(0), k=2)
    cooking, flights = topics.labels[:3], topics.labels[12:15]
    assert len(set(cooking)) == 1
    assert len(set(flights)) == 1
    assert cooking[0] != flights[0]
    names = dict(zip(topics.labels[[0, 12]], ("cook", "flight"), strict=True))
    for label, word in names.items():
        assert word in topics.names[label]


def test_too_few_distinct_texts_make_one_topic_each() -> None:
    rng = np.random.default_rng(2)
    texts = ["tell me a joke"] * 4 + ["weather today"] * 3
    vectors = np.vstack([np.tile([1.0, 0.0], (4, 1)), np.tile([0.0, 1.0], (3, 1))])
    topics = cluster_texts(vectors, texts, rng)
    assert topics.k == 2
    assert topics.silhouette is None
    np.testing.assert_array_equal(topics.labels, [0] * 4 + [1] * 3)


def test_the_analysis_modules_never_import_torch() -> None:
    import subprocess

    code = (
        "import sys, analysis.cli, analysis.report, analysis.topics; "
        "bad = [m for m in ('torch', 'sentence_transformers', 'redis', 'discord') "
        "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
