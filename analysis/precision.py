"""How precise the ratings are: bootstrap vs sandwich errors, battles vs participants as the
resampling unit, and the votes each neighbouring pair still needs to separate."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.bradley_terry import ELO_SCALE, TieMode, to_elo
from analysis.pairs import participant_counts
from analysis.ratings import Ratings, fit_ratings
from analysis.robust import sandwich_cov, sandwich_se_elo
from contract.pairing import votes_still_needed

# The report shows both resampling units side by side when their interval widths differ by more
# than this factor for some model.
DIFFER_MUCH = 1.2


def bootstrap_cov(ratings: Ratings) -> np.ndarray:
    """(m, m) covariance of the centred θ over the bootstrap rounds."""
    if ratings.rounds < 2:
        raise ValueError("a bootstrap covariance needs at least 2 rounds")
    return np.cov(ratings.boot_theta, rowvar=False)


def error_table(ratings: Ratings, battles: pd.DataFrame) -> pd.DataFrame:
    """Per model: the bootstrap SD (Elo) of the unit used and the sandwich SEs clustered by
    battle and by participant (Bradley–Terry fits only; NaN for Davidson)."""
    table = pd.DataFrame({"model": ratings.models, "rating": to_elo(ratings.theta)})
    table["boot_se"] = (
        ELO_SCALE * ratings.boot_theta.std(axis=0, ddof=1) if ratings.rounds > 1 else np.nan
    )
    if ratings.ties is TieMode.DAVIDSON:
        table["sandwich_se_battles"] = table["sandwich_se_participants"] = np.nan
    else:
        ties, bothbad = ratings.ties, ratings.bothbad_as_tie
        table["sandwich_se_battles"] = sandwich_se_elo(
            sandwich_cov(ratings.pairs, ratings.theta, ties=ties, bothbad_as_tie=bothbad)
        )
        users, _ = participant_counts(battles, ratings.pairs)
        table["sandwich_se_participants"] = sandwich_se_elo(
            sandwich_cov(
                ratings.pairs, ratings.theta, participants=users, ties=ties, bothbad_as_tie=bothbad
            )
        )
    return table.sort_values("rating", ascending=False).reset_index(drop=True)


def resampling_table(
    ratings: Ratings,
    battles: pd.DataFrame,
    seed: int,
    rounds: int | None = None,
    level: float = 0.95,
) -> pd.DataFrame:
    """Per model: the interval width (Elo) from redrawing battles and from redrawing
    participants, and their ratio (participants / battles). The unit `ratings` used is reused;
    the other is fitted with `rounds` (default: as many as `ratings`)."""
    rounds = ratings.rounds if rounds is None else rounds
    if rounds < 2:
        raise ValueError("comparing resampling units needs a bootstrap")
    other_unit = "participants" if ratings.resample == "battles" else "battles"
    users = participant_counts(battles, ratings.pairs)[0] if other_unit == "participants" else None
    other = fit_ratings(
        ratings.pairs,
        ties=ratings.ties,
        bothbad_as_tie=ratings.bothbad_as_tie,
        rounds=rounds,
        seed=seed,
        participants=users,
    )
    tail = (1 - level) / 2

    def width(r: Ratings) -> np.ndarray:
        elo = to_elo(r.boot_theta)
        spread: np.ndarray = np.quantile(elo, 1 - tail, axis=0) - np.quantile(elo, tail, axis=0)
        return spread

    widths = {ratings.resample: width(ratings), other_unit: width(other)}
    table = pd.DataFrame(
        {
            "model": ratings.models,
            "rating": to_elo(ratings.theta),
            "width_battles": widths["battles"],
            "width_participants": widths["participants"],
        }
    )
    table["ratio"] = table["width_participants"] / table["width_battles"]
    return table.sort_values("rating", ascending=False).reset_index(drop=True)


def differ_much(table: pd.DataFrame) -> bool:
    ratio = table["ratio"].to_numpy(float)
    return bool(np.any((ratio > DIFFER_MUCH) | (ratio < 1 / DIFFER_MUCH)))


def votes_needed_table(ratings: Ratings, level: float = 0.95) -> pd.DataFrame:
    """Each neighbouring pair of the board: the gap (Elo) and the further votes, at the study's
    strategy so far, until their intervals separate (`contract.pairing.votes_still_needed`, the
    code `/study status` uses, here with the bootstrap covariance)."""
    cov = bootstrap_cov(ratings)
    votes = float(ratings.pairs.n_battles)
    upper, lower, needed = votes_still_needed(ratings.theta, cov, votes, level)
    return pd.DataFrame(
        {
            "upper": [ratings.models[k] for k in upper],
            "lower": [ratings.models[k] for k in lower],
            "gap": ELO_SCALE * (ratings.theta[upper] - ratings.theta[lower]),
            "votes_needed": needed,
        }
    )
