"""One analysis run: filter the battles, fit the ratings, sign the outputs, write tables."""

from __future__ import annotations

import dataclasses
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.bradley_terry import TieMode, to_elo
from analysis.filters import FilterConfig, Filtered, apply_filters
from analysis.pairs import PairCounts, count_pairs, participant_counts
from analysis.quality import anomalous_participants, participant_quality
from analysis.ratings import Ratings, fit_ratings
from analysis.signature import Signature
from analysis.style import StyleFit, fit_style, parse_style


@dataclass(frozen=True)
class RatingOptions:
    ties: TieMode = TieMode.HALF
    bothbad_as_tie: bool = True  # False: "both bad" votes are dropped instead
    rounds: int = 1000
    seed: int = 0
    alpha: float = 0.0  # choix-style L2 penalty on θ; 0 is plain maximum likelihood
    resample: str = "battles"  # the bootstrap's unit: "battles" or "participants"
    style: tuple[str, ...] = ()  # style covariates (analysis.style.STYLE_FEATURES)

    def __post_init__(self) -> None:
        if self.rounds < 0:
            raise ValueError(f"rounds must be >= 0, got {self.rounds}")
        if self.resample not in RESAMPLE_UNITS:
            raise ValueError(f"resample must be one of {RESAMPLE_UNITS}, got {self.resample!r}")
        parse_style(",".join(self.style))


RESAMPLE_UNITS = ("battles", "participants")


@dataclass(frozen=True)
class RatedStudy:
    filtered: Filtered
    ratings: Ratings  # style-controlled when options.style is set
    signature: Signature
    options: RatingOptions
    raw_ratings: Ratings | None = None  # without style control, when `ratings` has it
    style: StyleFit | None = None
    # Warnings raised while fitting (e.g. a fit that did not converge), for the report.
    warnings: tuple[str, ...] = ()

    @property
    def battles(self) -> pd.DataFrame:
        """The battles that survived the filters (the ones the ratings are fitted on)."""
        return self.filtered.battles


def rate_battles(
    battles: pd.DataFrame,
    filters: FilterConfig | None = None,
    options: RatingOptions | None = None,
    progress: bool = False,
) -> RatedStudy:
    filters = filters if filters is not None else FilterConfig()
    options = options if options is not None else RatingOptions()
    if filters.exclude_anomalous:
        filters = _with_anomalous_excluded(battles, filters, options)
    filtered = apply_filters(battles, filters)
    if filtered.battles.empty:
        raise ValueError(
            f"no battles left after the filters ({filtered.signature_part}) out of {len(battles)}"
        )
    pairs = count_pairs(filtered.battles)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ratings, raw, style = _fit(filtered.battles, pairs, options, progress)
    for warning in caught:
        # Still shown where they were raised (stderr), and kept for the report.
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    signature = Signature(
        votes=len(filtered.battles),
        filters=filtered.signature_part,
        rounds=options.rounds,
        seed=options.seed,
        ties=str(options.ties),
        bothbad="tie" if options.bothbad_as_tie else "drop",
        resample=options.resample,
        style=",".join(options.style) or "none",
    )
    return RatedStudy(
        filtered=filtered,
        ratings=ratings,
        signature=signature,
        options=options,
        raw_ratings=raw,
        style=style,
        warnings=tuple(dict.fromkeys(str(w.message) for w in caught)),
    )


def _fit(
    battles: pd.DataFrame, pairs: PairCounts, options: RatingOptions, progress: bool
) -> tuple[Ratings, Ratings | None, StyleFit | None]:
    by_person = options.resample == "participants"
    ratings = fit_ratings(
        pairs,
        ties=options.ties,
        bothbad_as_tie=options.bothbad_as_tie,
        rounds=options.rounds,
        rng=np.random.default_rng(options.seed),
        seed=options.seed,
        alpha=options.alpha,
        progress=progress,
        participants=participant_counts(battles, pairs)[0] if by_person else None,
    )
    if not options.style:
        return ratings, None, None
    style = fit_style(
        battles,
        pairs.models,
        options.style,
        ties=options.ties,
        bothbad_as_tie=options.bothbad_as_tie,
        rounds=options.rounds,
        rng=np.random.default_rng(options.seed),
        participants=by_person,
    )
    styled = dataclasses.replace(
        ratings, theta=style.theta, boot_theta=style.boot_theta, log_nu=None
    )
    return styled, ratings, style


def write_table(table: pd.DataFrame, out_dir: Path, name: str, signature: Signature) -> Path:
    """`out_dir/name.csv` with a trailing `signature` column, so a copied CSV keeps it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.csv"
    table.assign(signature=str(signature)).to_csv(path, index=False)
    return path


def write_signature(out_dir: Path, signature: Signature) -> Path:
    """The sidecar `signature.txt` (and .json) next to the tables."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "signature.json").write_text(
        json.dumps({**signature.__dict__, "signature": str(signature)}, indent=2) + "\n"
    )
    path = out_dir / "signature.txt"
    path.write_text(str(signature) + "\n")
    return path


def _with_anomalous_excluded(
    battles: pd.DataFrame, filters: FilterConfig, options: RatingOptions
) -> FilterConfig:
    """The filters plus the participants analysis.quality finds anomalous against a first
    point fit (no bootstrap) on the battles the other filters keep."""
    first = apply_filters(battles, dataclasses.replace(filters, exclude_anomalous=False))
    pairs = count_pairs(first.battles)
    fit = fit_ratings(
        pairs,
        ties=options.ties,
        bothbad_as_tie=options.bothbad_as_tie,
        rounds=0,
        rng=np.random.default_rng(options.seed),
        seed=options.seed,
        alpha=options.alpha,
    )
    elo = dict(zip(fit.models, to_elo(fit.theta), strict=True))
    quality = participant_quality(first.battles, elo)
    return dataclasses.replace(
        filters,
        exclude_anomalous=False,
        exclude_participants=filters.exclude_participants | anomalous_participants(quality),
        exclude_reason="anomalous",
    )
