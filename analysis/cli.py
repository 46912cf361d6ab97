"""Parley analysis over exported battles: ratings, win rates, benchmark correlations, topics,
and a self-contained report. See docs/analysis.md."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.battles import load_battles
from analysis.bradley_terry import TieMode, to_elo
from analysis.filters import DEFAULT_DROP_FLAGS, FilterConfig, load_identity_words
from analysis.leaderboard import data_warnings, leaderboard, matrix, pairwise
from analysis.simulate import SPREAD_ELO
from analysis.study import (
    RESAMPLE_UNITS,
    RatedStudy,
    RatingOptions,
    rate_battles,
    write_signature,
    write_table,
)
from analysis.style import STYLE_FEATURES, parse_style, style_table
from contract.records import Strategy


def _timestamp(text: str) -> pd.Timestamp:
    stamp = pd.Timestamp(text)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("battles", type=Path, help="battles file: .parquet, .csv, .jsonl or .json")
    parser.add_argument("--out", type=Path, help="write the tables as CSV in this directory")
    parser.add_argument("--rounds", type=int, default=1000, help="bootstrap rounds (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--ties", choices=[t.value for t in TieMode], default="half")
    parser.add_argument(
        "--bothbad",
        choices=["tie", "drop"],
        default="tie",
        help="count 'tie (bothbad)' votes as ties (default) or drop them",
    )
    parser.add_argument(
        "--alpha",
        type=float,
        default=0.0,
        help="L2 penalty on log-strengths, as choix's alpha (default 0: plain ML)",
    )
    parser.add_argument(
        "--keep-flagged",
        action="store_true",
        help="keep flagged battles (by default battles flagged identity_leak are dropped)",
    )
    parser.add_argument(
        "--drop-flag",
        action="append",
        default=[],
        metavar="NAME",
        help="also drop battles with this flag (e.g. fast_vote); repeatable",
    )
    parser.add_argument(
        "--exclude-anomalous",
        action="store_true",
        help="drop every vote of participants analysis.quality finds anomalous (against the "
        "board, position bias, fast median vote)",
    )
    parser.add_argument(
        "--identity-words",
        type=Path,
        help="TOML/JSON: model id -> words that reveal it in its reply",
    )
    parser.add_argument(
        "--cap",
        "--max-votes-per-participant",
        dest="cap",
        type=_positive,
        help="keep at most this many votes per participant (earliest first)",
    )
    parser.add_argument("--since", type=_timestamp, help="keep battles at or after this time (UTC)")
    parser.add_argument("--until", type=_timestamp, help="keep battles before this time (UTC)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--resample",
        choices=list(RESAMPLE_UNITS),
        default="battles",
        help="what a bootstrap round redraws: battles (default) or whole participants",
    )
    parser.add_argument(
        "--style",
        type=parse_style,
        default=(),
        help="style control: comma-separated covariates among "
        f"{','.join(STYLE_FEATURES)} (e.g. length,latency)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("leaderboard", help="Bradley–Terry ratings with bootstrap intervals")
    _common(p)
    p = sub.add_parser("winrates", help="pairwise win rates, significance and battle counts")
    _common(p)
    p = sub.add_parser("correlate", help="interactive ratings vs static benchmark scores")
    _common(p)
    p.add_argument("--benchmarks", type=Path, required=True, help="SCORES.csv")
    p.add_argument("--meta", type=Path, help="META.csv (benchmark, ..., higher_is_better)")
    p.add_argument("--topk", type=_positive, default=5, help="k of the top-k Kendall distance")
    p.add_argument("--no-mixed", action="store_true", help="skip the mixed-effects model")
    p = sub.add_parser("topics", help="cluster query transcripts; leaderboard per topic")
    _common(p)
    p.add_argument("--k", type=_positive, help="number of topics (default: by silhouette)")
    p.add_argument("--method", choices=["kmeans", "agglomerative"], default="kmeans")
    p.add_argument(
        "--embedding-model",
        type=Path,
        help="sentence-transformers model dir (default: packaged all-MiniLM-L6-v2)",
    )
    p = sub.add_parser("report", help="one self-contained HTML report with plots")
    _common(p)
    p.add_argument("--benchmarks", type=Path, help="SCORES.csv")
    p.add_argument("--meta", type=Path, help="META.csv")
    p.add_argument("--k", type=_positive, help="number of topics (default: by silhouette)")
    p.add_argument("--embedding-model", type=Path)
    p.add_argument("--no-topics", action="store_true", help="leave the topics section out")
    p = sub.add_parser("simulate", help="write synthetic battles from known strengths")
    p.add_argument("--out", type=Path, required=True, help="battles file to write (.csv, ...)")
    p.add_argument("--battles", type=_positive, default=7500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--benchmarks",
        type=Path,
        help="take the models from SCORES.csv; strength follows their mean z-score",
    )
    p.add_argument("--meta", type=Path)
    p.add_argument("--models", type=_positive, default=6, help="without --benchmarks: how many")
    p.add_argument(
        "--strategy",
        choices=[s.value for s in Strategy],
        help="draw the votes one after another with the study's own pairing strategy, from a "
        "hidden truth spread evenly over --spread Elo points (default: the old batch draw)",
    )
    p.add_argument(
        "--spread",
        type=float,
        default=SPREAD_ELO,
        help=f"with --strategy: Elo points the hidden ratings span (default {SPREAD_ELO:g})",
    )
    p.add_argument("--truth", type=Path, help="also write the hidden ratings: model,rating")
    return parser


def _options(args: argparse.Namespace) -> tuple[FilterConfig, RatingOptions]:
    words = load_identity_words(args.identity_words) if args.identity_words else {}
    filters = FilterConfig(
        drop_flagged=not args.keep_flagged,
        drop_flags=tuple(dict.fromkeys([*DEFAULT_DROP_FLAGS, *args.drop_flag])),
        exclude_anomalous=args.exclude_anomalous,
        identity_words=words,
        max_votes_per_participant=args.cap,
        since=args.since,
        until=args.until,
    )
    options = RatingOptions(
        ties=TieMode(args.ties),
        bothbad_as_tie=args.bothbad == "tie",
        rounds=args.rounds,
        seed=args.seed,
        alpha=args.alpha,
        resample=args.resample,
        style=args.style,
    )
    return filters, options


def _show(title: str, table: pd.DataFrame) -> None:
    with pd.option_context(
        "display.width", 160, "display.max_columns", 20, "display.float_format", "{:.3f}".format
    ):
        print(f"\n{title}\n{table.to_string(index=False)}")


def _rate(
    args: argparse.Namespace, check: Callable[[pd.DataFrame], object] | None = None
) -> RatedStudy:
    """Load, filter and fit; `check` sees the loaded battles first (before any bootstrap)."""
    filters, options = _options(args)
    battles = load_battles(args.battles)
    if check is not None:
        check(battles)
    study = rate_battles(battles, filters, options, progress=not args.no_progress)
    _show("filters", study.filtered.table())
    return study


def _emit(study: RatedStudy, args: argparse.Namespace, tables: dict[str, pd.DataFrame]) -> None:
    for name, table in tables.items():
        _show(name, table)
    print(f"\nsignature: {study.signature}")
    if args.out:
        for name, table in tables.items():
            write_table(table, args.out, name, study.signature)
        write_table(study.filtered.table(), args.out, "filters", study.signature)
        write_signature(args.out, study.signature)
        print(f"tables written to {args.out}/", file=sys.stderr)


def cmd_leaderboard(args: argparse.Namespace) -> int:
    study = _rate(args)
    tables = {"leaderboard": leaderboard(study.ratings)}
    if study.style is not None:
        tables["style"] = style_table(study.style)
    _emit(study, args, tables)
    for note in data_warnings(tables["leaderboard"]):
        print(f"warning: {note}", file=sys.stderr)
    return 0


def cmd_winrates(args: argparse.Namespace) -> int:
    study = _rate(args)
    pairs = pairwise(study.ratings)
    order = list(leaderboard(study.ratings)["model"])
    _emit(
        study,
        args,
        {
            "winrates": pairs,
            "winrate_matrix": matrix(pairs, "win_rate", order).reset_index(names="model"),
            "battle_counts": matrix(pairs, "battles", order)
            .fillna(0)
            .astype(int)
            .reset_index(names="model"),
        },
    )
    return 0


def cmd_correlate(args: argparse.Namespace) -> int:
    from analysis.static import (
        check_overlap,
        correlate,
        load_static,
        mixed_effects,
        pca,
        static_names_of,
    )

    table = load_static(args.benchmarks, args.meta)

    def overlap(battles: pd.DataFrame) -> object:
        # Before the bootstrap: a misspelt table should fail in a second, not after minutes.
        models = sorted(set(battles["model_a"].astype(str)) | set(battles["model_b"].astype(str)))
        return check_overlap(models, table, static_names_of(battles))

    study = _rate(args, overlap)
    tables = {
        "leaderboard": leaderboard(study.ratings),
        "correlations": correlate(
            study.ratings, table, k=args.topk, static_names=static_names_of(study.battles)
        ),
    }
    components = pca(table)
    tables["pca_variance"] = components.explained
    tables["pca_loadings"] = components.loadings.reset_index(names="benchmark")
    if not args.no_mixed:
        mixed = mixed_effects(study.battles, table)
        tables["mixed_effects"] = mixed.fixed
        tables["vif_screen"] = mixed.screened_out
    _emit(study, args, tables)
    return 0


def cmd_topics(args: argparse.Namespace) -> int:
    from analysis.topics import (
        cluster_texts,
        embed_texts,
        topic_leaderboards,
        topic_shares,
        transcript_column,
    )

    study = _rate(args)
    battles = study.battles
    column = transcript_column(battles)
    if column is None:
        raise SystemExit(
            f"{args.battles}: no transcript column (looked for query_transcript, "
            "transcript, transcript_a, transcript_b)"
        )
    has_text = battles[column].fillna("").astype(str).str.strip() != ""
    subset = battles[has_text].reset_index(drop=True)
    texts = subset[column].astype(str).tolist()
    found = cluster_texts(
        embed_texts(texts, args.embedding_model),
        texts,
        np.random.default_rng(args.seed),
        k=args.k,
        method=args.method,
    )
    boards, notes = topic_leaderboards(
        subset,
        found,
        np.random.default_rng(args.seed),
        rounds=args.rounds,
        ties=study.options.ties,
        bothbad_as_tie=study.options.bothbad_as_tie,
    )
    assignments = pd.DataFrame(
        {
            "battle_id": subset["battle_id"],
            "topic": found.labels,
            "label": np.asarray(found.names)[found.labels],
        }
    )
    _emit(study, args, {"topics": topic_shares(subset, found), "topic_leaderboards": boards})
    if args.out:
        write_table(assignments, args.out, "topic_assignments", study.signature)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from analysis.report import build_report

    if args.out is None:
        raise SystemExit("report needs --out DIR")
    filters, options = _options(args)
    path = build_report(
        load_battles(args.battles),
        args.out,
        benchmarks=args.benchmarks,
        meta=args.meta,
        options=options,
        filters=filters,
        topics=not args.no_topics,
        k=args.k,
        embedding_model=args.embedding_model,
        progress=not args.no_progress,
    )
    print(f"signature: {(args.out / 'signature.txt').read_text().strip()}")
    print(f"report: {path}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from analysis.simulate import even_truth, simulate_battles, simulate_study
    from analysis.static import load_static

    rng = np.random.default_rng(args.seed)
    if args.strategy is not None:
        if args.benchmarks:
            raise SystemExit("--strategy draws from an even hidden truth; drop --benchmarks")
        theta = even_truth(args.models, args.spread)
        battles = simulate_study(theta, args.battles, Strategy(args.strategy), rng)
    elif args.benchmarks:
        scores = load_static(args.benchmarks, args.meta).scores
        z = ((scores - scores.mean()) / scores.std(ddof=1)).mean(axis=1)
        # Preference follows the benchmarks only in part: the rest is model-specific noise.
        theta = {m: 1.2 * v + 0.35 * rng.normal() for m, v in z.items()}
    else:
        theta = {f"model-{i + 1}": v for i, v in enumerate(rng.normal(0, 0.6, args.models))}
    if args.strategy is None:
        battles = simulate_battles(theta, args.battles, rng)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    suffix = args.out.suffix.lower()
    if suffix == ".parquet":
        battles.to_parquet(args.out, index=False)
    elif suffix == ".jsonl":
        battles.to_json(args.out, orient="records", lines=True, date_format="iso")
    elif suffix == ".csv":
        battles.to_csv(args.out, index=False)
    else:
        raise SystemExit(f"--out must end in .csv, .parquet or .jsonl, got {args.out}")
    truth = pd.DataFrame({"model": list(theta), "theta": list(theta.values())})
    _show("true log-strengths (synthetic)", truth.sort_values("theta", ascending=False))
    if args.truth:
        rating = to_elo(truth["theta"].to_numpy())
        args.truth.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"model": truth["model"], "rating": rating}).to_csv(args.truth, index=False)
        print(f"hidden ratings written to {args.truth}")
    print(f"{len(battles)} synthetic battles written to {args.out}")
    return 0


COMMANDS = {
    "leaderboard": cmd_leaderboard,
    "winrates": cmd_winrates,
    "correlate": cmd_correlate,
    "topics": cmd_topics,
    "report": cmd_report,
    "simulate": cmd_simulate,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
