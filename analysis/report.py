"""The self-contained HTML report: every table and figure of a study in one file.

Images are embedded as base64 PNG so the file can be mailed or archived on its own. The CSV
tables behind it are written next to it.
"""

from __future__ import annotations

import base64
import dataclasses
import html
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import plots
from analysis.behaviour import agreement, loss_reasons, position_bias, vote_times
from analysis.filters import FilterConfig, apply_filters
from analysis.leaderboard import data_warnings, leaderboard, matrix, pairwise
from analysis.precision import (
    DIFFER_MUCH,
    differ_much,
    error_table,
    resampling_table,
    votes_needed_table,
)
from analysis.quality import participant_quality
from analysis.static import (
    StaticTable,
    correlate,
    load_static,
    mixed_effects,
    orient,
    pca,
    static_names_of,
)
from analysis.study import (
    RatedStudy,
    RatingOptions,
    rate_battles,
    write_signature,
    write_table,
)
from analysis.style import style_table
from analysis.topics import (
    cluster_texts,
    embed_texts,
    topic_leaderboards,
    topic_shares,
    transcript_column,
)

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 980px; margin: 2em auto; color: #222;
       line-height: 1.45; padding: 0 1em; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em;
       margin-top: 2em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.8em 0; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
code, .sig { font-family: ui-monospace, monospace; font-size: 0.85em; background: #f6f6f6;
       padding: 2px 4px; }
.note { color: #555; font-style: italic; } img { max-width: 100%; }
.warning { color: #8a4b00; background: #fff4e0; padding: 0.3em 0.6em; }
"""


@dataclass
class _Doc:
    parts: list[str] = field(default_factory=list)

    def h(self, level: int, text: str) -> None:
        self.parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def p(self, text: str, cls: str = "") -> None:
        attr = f' class="{cls}"' if cls else ""
        self.parts.append(f"<p{attr}>{text}</p>")

    def table(self, df: pd.DataFrame, digits: int | None = 3) -> None:
        """An HTML table; floats to `digits` places (None: as they are, e.g. pre-rounded)."""
        fmt = None if digits is None else (lambda v: f"{v:.{digits}f}")
        self.parts.append(df.to_html(index=False, float_format=fmt, border=0, na_rep="–"))

    def figure(self, png: bytes, alt: str) -> None:
        data = base64.b64encode(png).decode("ascii")
        self.parts.append(f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">')

    def render(self, title: str) -> str:
        body = "\n".join(self.parts)
        return (
            f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
            f"<body>\n{body}\n</body></html>\n"
        )


def _rounded(board: pd.DataFrame) -> pd.DataFrame:
    """Ratings to 0.1 point, shares and rates to 3 places: what a reader can use."""
    digits = {"rating": 1, "rating_lo": 1, "rating_hi": 1, "strength_pct": 2, "win_rate": 3}
    return board.round({k: v for k, v in digits.items() if k in board.columns})


def _static_table(
    benchmarks: Path | str | pd.DataFrame | StaticTable | None,
    meta: Path | str | pd.DataFrame | None,
) -> StaticTable | None:
    if benchmarks is None or isinstance(benchmarks, StaticTable):
        return benchmarks
    if isinstance(benchmarks, pd.DataFrame):
        raw = benchmarks.set_index(benchmarks["model"].astype(str)).drop(columns="model")
        meta_df = pd.read_csv(meta) if isinstance(meta, str | Path) else meta
        return orient(raw, meta_df)
    if isinstance(meta, pd.DataFrame):
        raw = pd.read_csv(benchmarks)
        return orient(raw.set_index(raw["model"].astype(str)).drop(columns="model"), meta)
    return load_static(benchmarks, meta)


def build_report(
    battles_df: pd.DataFrame,
    out_dir: Path | str,
    *,
    benchmarks: Path | str | pd.DataFrame | StaticTable | None = None,
    meta: Path | str | pd.DataFrame | None = None,
    rounds: int = 1000,
    seed: int = 0,
    options: RatingOptions | None = None,
    filters: FilterConfig | None = None,
    topics: bool = True,
    k: int | None = None,
    embedding_model: Path | str | None = None,
    title: str = "Parley study report",
    progress: bool = False,
) -> Path:
    """Analyse normalised battles (see `analysis.battles.normalise_battles`) and write
    `out_dir/report.html` plus its CSV tables; returns the HTML path.

    `options`, when given, overrides `rounds` and `seed`. Topics are skipped, with a note in
    the report, when the battles carry no transcripts or the `topics` extra is missing.
    """
    from analysis.battles import normalise_battles

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    options = options if options is not None else RatingOptions(rounds=rounds, seed=seed)
    normalised = normalise_battles(battles_df)
    study = rate_battles(normalised, filters, options, progress=progress)
    sig = study.signature
    ratings = study.ratings
    board = leaderboard(ratings)
    pairs = pairwise(ratings)
    order = list(board["model"])
    write_signature(out, sig)
    write_table(board, out, "leaderboard", sig)
    write_table(pairs, out, "winrates", sig)
    write_table(study.filtered.table(), out, "filters", sig)

    doc = _Doc()
    doc.h(1, title)
    doc.p(f"Signature: <span class='sig'>{html.escape(str(sig))}</span>")
    used = study.battles
    doc.p(
        f"{len(used)} votes from {used['participant'].nunique()} participants on "
        f"{len(order)} models; generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC."
    )
    doc.p(
        "How to read this: each vote compares two anonymous models. A Bradley–Terry model turns "
        "the votes into one rating per model on the Elo scale (mean 1000; a 100-point gap means "
        "the higher model is preferred about 64% of the time). Intervals are 95% bootstrap "
        f"intervals over {options.rounds} redraws of the votes; the rank of a model is 1 plus "
        "the number of models that are clearly better (whose whole interval lies above its "
        "interval), so models that cannot be told apart share a rank.",
        "note",
    )

    cautions = [*data_warnings(board), *study.warnings]
    if cautions:
        doc.h(2, "Warnings")
        for caution in cautions:
            doc.p("⚠️ " + html.escape(caution), "warning")

    doc.h(2, "Data cleaning")
    doc.p("Each filter and how many battles it removed, in the order they were applied.")
    doc.table(study.filtered.table())
    _cleaning_reasons(doc, study, normalised)

    doc.h(2, "Vote quality per participant")
    quality = _quality_table(normalised, study, filters)
    write_table(quality, out, "participant_quality", sig)
    _quality_section(doc, quality, study)

    doc.h(2, "Leaderboard")
    doc.figure(plots.png_bytes(plots.leaderboard_plot(board)), "leaderboard with intervals")
    doc.table(_rounded(board), digits=None)
    if ratings.log_nu is not None:
        doc.p(f"Davidson tie parameter ν = {np.exp(ratings.log_nu):.3f}.", "note")
    if study.style is not None and study.raw_ratings is not None:
        _style_section(doc, study, board, out)

    doc.h(2, "How precise the ratings are")
    _precision_section(doc, study, out)

    doc.h(2, "How participants vote")
    _behaviour_section(doc, study, out)

    doc.h(2, "Head to head")
    doc.p(
        "Observed win rate of the row model against the column model (ties count half). "
        "Blank cells: the two never met."
    )
    win = matrix(pairs, "win_rate", order)
    doc.figure(
        plots.png_bytes(
            plots.heatmap(win, "Observed win rate (row vs column)", ".2f", "RdBu", center=0.5)
        ),
        "win-rate heatmap",
    )
    counts = matrix(pairs, "battles", order)
    doc.figure(
        plots.png_bytes(plots.heatmap(counts, "Battles per pair", ".0f", "Blues")), "battle counts"
    )
    unclear = pairs[(~pairs["significant"]) & (pairs["model"] < pairs["opponent"])]
    if options.rounds > 0:
        if unclear.empty and board["preliminary"].any():
            doc.p(
                "Each rating difference's 95% interval excludes zero, but the leaderboard is "
                "preliminary (see Warnings): with this few battles per model the intervals "
                "themselves are unreliable, so no pair can be called separated yet."
            )
        elif unclear.empty:
            doc.p(
                "Every pair of models is separated: each rating difference's 95% interval "
                "excludes zero."
            )
        else:
            doc.p(
                "Pairs whose ratings are <b>not</b> significantly different (the 95% "
                "interval of the difference contains zero):"
            )
            doc.table(unclear[["model", "opponent", "battles", "win_rate", "predicted", "p_value"]])

    doc.h(2, "Static benchmarks")
    table = _static_table(benchmarks, meta)
    if table is None:
        doc.p("No benchmark table given (pass --benchmarks SCORES.csv).", "note")
    else:
        _static_section(doc, study, table, out)

    doc.h(2, "Topics")
    if topics:
        _topic_section(doc, study, out, k=k, embedding_model=embedding_model)
    else:
        doc.p("Topics were not requested.", "note")

    doc.h(2, "Methods")
    doc.p(
        "Bradley–Terry maximum likelihood by Newton's method (agrees with choix to 1e-6). "
        f"Ties: {html.escape(str(options.ties))} ('half': half a win each; 'davidson': "
        "Davidson's tie model; 'drop': ignored); 'both bad' votes are "
        f"{'ties' if options.bothbad_as_tie else 'dropped'}. The bootstrap redraws the "
        f"{options.resample} with replacement {options.rounds} times (seed {options.seed})"
        + (
            ", each participant with all their votes, since one person's votes are not independent"
            if options.resample == "participants"
            else ", as Chatbot Arena does"
        )
        + "; all rounds are fitted at once. Strength % is e^θ normalised to sum to 100."
        + (
            f" Style control: covariates {', '.join(options.style)} (see above)."
            if options.style
            else ""
        )
    )
    path = out / "report.html"
    path.write_text(doc.render(title))
    return path


def flag_counts(battles: pd.DataFrame) -> dict[str, int]:
    """Battles carrying each flag of the export's comma-separated `flags` column."""
    if "flags" not in battles.columns:
        return {}
    counts: dict[str, int] = {}
    for cell in battles["flags"].fillna("").astype(str):
        for name in {f.strip() for f in cell.split(",") if f.strip()}:
            counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))


def _cleaning_reasons(doc: _Doc, study: RatedStudy, battles: pd.DataFrame) -> None:
    """Why battles were dropped, in words: each filter with its count and reason."""
    items = []
    for step in study.filtered.steps:
        why = f" ({html.escape(step.note)})" if step.note else ""
        items.append(f"<li><code>{html.escape(step.name)}</code>: {step.removed} dropped{why}</li>")
    doc.parts.append("<ul>" + "".join(items) + "</ul>")
    voted = battles[battles["winner"] != ""]
    flags = flag_counts(voted)
    if flags:
        listed = ", ".join(f"{n} {html.escape(name)}" for name, n in flags.items())
        dropped = any(s.name.startswith("flagged=") and s.removed for s in study.filtered.steps)
        doc.p(
            f"Flags on the voted battles of the export (a battle may carry several): {listed}. "
            + (
                "Battles with a dropped flag are left out of the ratings above."
                if dropped
                else "No flagged battle was dropped (--keep-flagged, or no dropped flag present)."
            ),
            "note",
        )
    else:
        doc.p("No voted battle carries a flag.", "note")


def _quality_table(
    battles: pd.DataFrame, study: RatedStudy, filters: FilterConfig | None
) -> pd.DataFrame:
    """analysis.quality over the battles the other filters keep, anomalous participants
    included (so they are listed even when --exclude-anomalous dropped them), against the
    fitted ratings."""
    config = dataclasses.replace(
        filters if filters is not None else FilterConfig(),
        exclude_anomalous=False,
        exclude_participants=frozenset(),
    )
    kept = apply_filters(battles, config).battles
    board = leaderboard(study.ratings)
    elo = dict(zip(board["model"], board["rating"], strict=True))
    return participant_quality(kept, elo)


def _quality_section(doc: _Doc, quality: pd.DataFrame, study: RatedStudy) -> None:
    doc.p(
        "Per participant: votes, decisive votes, Fisher's combined p-value of their votes "
        "against the leaderboard (small: they often prefer the model the board ranks lower), "
        "the share of decisive votes for side A with its binomial p-value (A/B order is a fair "
        "coin), and the median seconds from the replies to the vote. A participant is "
        "<b>anomalous</b> when a test is significant after a Bonferroni correction, or their "
        "median vote is implausibly fast; see analysis/quality.py.",
        "note",
    )
    if quality.empty:
        doc.p("No participant has a vote.", "note")
        return
    anomalous = quality[quality["anomalous"]]
    excluded = next((s for s in study.filtered.steps if s.name.startswith("anomalous=")), None)
    if anomalous.empty:
        doc.p("No participant looks anomalous.")
    elif excluded is not None:
        doc.p(
            f"⚠️ {len(anomalous)} anomalous participant(s); their {excluded.removed} votes are "
            "left out of the ratings (--exclude-anomalous).",
            "warning",
        )
    else:
        doc.p(
            f"⚠️ {len(anomalous)} anomalous participant(s), marked below; their votes are in "
            "the ratings (--exclude-anomalous leaves them out).",
            "warning",
        )
    shown = quality.copy()
    shown.insert(0, "mark", np.where(shown["anomalous"], "⚠️ anomalous", ""))
    doc.table(shown.sort_values(["anomalous", "participant"], ascending=[False, True]))


def _style_section(doc: _Doc, study: RatedStudy, board: pd.DataFrame, out: Path) -> None:
    if study.style is None or study.raw_ratings is None:
        raise ValueError("the style section needs a style-controlled study")
    styles = style_table(study.style)
    write_table(styles, out, "style", study.signature)
    raw = leaderboard(study.raw_ratings)[["model", "rating", "rating_lo", "rating_hi", "rank"]]
    side = board[["model", "rating", "rating_lo", "rating_hi", "rank"]].merge(
        raw, on="model", suffixes=("_styled", "_raw")
    )
    doc.h(3, "Style control")
    doc.p(
        "The leaderboard above holds the style-controlled ratings: a Bradley–Terry model with "
        "covariates for the normalised differences (a − b)/(a + b) in "
        f"{', '.join(study.style.names)}, each per standard deviation, as LMArena's style "
        "control. Raw and controlled side by side, and the coefficients (logit per SD; "
        "positive: the longer / slower / longer-spoken reply is preferred):"
    )
    doc.table(_rounded(side).round(1), digits=None)
    doc.table(styles)


def _precision_section(doc: _Doc, study: RatedStudy, out: Path) -> None:
    ratings, sig = study.ratings, study.signature
    if ratings.rounds < 2:
        doc.p("No bootstrap (rounds < 2): nothing to say about precision.", "note")
        return
    doc.p(
        f"Intervals above come from redrawing <b>{ratings.resample}</b>. A person's votes are "
        "not independent, so redrawing whole participants is the honest unit when a few people "
        "cast many votes."
    )
    rounds = min(ratings.rounds, 200)
    comparison = resampling_table(ratings, study.battles, study.options.seed, rounds=rounds)
    write_table(comparison, out, "resampling", sig)
    if differ_much(comparison):
        doc.p(
            f"The two units give interval widths that differ by more than {DIFFER_MUCH:g}× for "
            f"some model ({rounds} rounds for the other unit); both, side by side:"
        )
        doc.table(comparison.round(1), digits=None)
    else:
        doc.p(
            f"Redrawing participants instead of battles changes no interval width by more than "
            f"{DIFFER_MUCH:g}× (ratio participants / battles from "
            f"{comparison['ratio'].min():.2f} to {comparison['ratio'].max():.2f})."
        )
    errors = error_table(ratings if study.raw_ratings is None else study.raw_ratings, study.battles)
    write_table(errors, out, "errors", sig)
    doc.p(
        "Standard errors (Elo points): the bootstrap's, and the sandwich (robust) estimate "
        "clustered by battle and by participant, a cheap check on the bootstrap."
    )
    doc.table(errors.round(2), digits=None)
    needed = votes_needed_table(ratings)
    write_table(needed, out, "votes_needed", sig)
    doc.h(3, "Votes still needed")
    doc.p(
        "For each pair of neighbouring models, the further votes (falling as they have so far) "
        "until their 95% intervals no longer overlap, projected from the current gap and "
        "errors: 0 means already separated; ∞ means the two are estimated equal. A moderator "
        "can stop when the pairs that matter read 0."
    )
    doc.table(needed.round({"gap": 1}), digits=None)


def _behaviour_section(doc: _Doc, study: RatedStudy, out: Path) -> None:
    sig = study.signature
    overall, per = position_bias(study.battles)
    write_table(pd.concat([overall, per], ignore_index=True), out, "position_bias", sig)
    row = overall.iloc[0]
    doc.p(
        f"Position bias: side A won {100 * row['a_share']:.1f}% of {int(row['decided'])} "
        f"decided votes (95% interval {100 * row['a_share_lo']:.1f}–"
        f"{100 * row['a_share_hi']:.1f}%, binomial p = {row['p_value']:.3g}); sides are a fair "
        "coin, so a share away from 50% is the voters' bias. Participants with the most votes:"
    )
    doc.table(per.head(10))
    times = vote_times(study.battles)
    if times.empty:
        doc.p("The battles carry no vote_delay_s, so vote times are not shown.", "note")
    else:
        write_table(times, out, "vote_times", sig)
        doc.p("Seconds from the replies being shown to the vote (quantiles):")
        doc.table(times)
    ratings = study.raw_ratings or study.ratings
    i, j = ratings.pairs.design.pair_i, ratings.pairs.design.pair_j
    models = ratings.models
    p_low = {
        f"{models[a]}|{models[b]}": float(1 / (1 + np.exp(ratings.theta[b] - ratings.theta[a])))
        for a, b in zip(i, j, strict=True)
    }
    agree = agreement(study.battles, p_low)
    write_table(agree, out, "agreement", sig)
    doc.p(
        "Agreement on repeated pairs (decided votes): the share of vote pairs on the same two "
        "models that prefer the same one, between different participants and within one; "
        "'expected' is what independent votes under the fitted ratings would give."
    )
    doc.table(agree)
    reasons = loss_reasons(study.battles)
    if reasons.empty:
        doc.p("No participant said why a reply lost (the optional menu after a vote).", "note")
    else:
        write_table(reasons, out, "loss_reasons", sig)
        doc.p(
            "Why each model lost, as participants picked it after their vote (both bad counts "
            "against both): understanding, content, speech quality, too slow, other."
        )
        doc.table(reasons, digits=2)


def _static_section(doc: _Doc, study: RatedStudy, table: StaticTable, out: Path) -> None:
    sig = study.signature
    try:
        corr = correlate(study.ratings, table, static_names=static_names_of(study.battles))
    except ValueError as exc:
        doc.p(f"Correlations skipped: {html.escape(str(exc))}", "note")
        return
    write_table(corr, out, "correlations", sig)
    doc.p(
        "Kendall τ-b and Spearman ρ between each benchmark's score (flipped where lower is "
        "better) and the interactive rating, over the models in both; the τ interval comes from "
        "the rating bootstrap. top-k Kendall: Fagin's distance between the two top-k lists "
        "(0 = same order, 1 = disjoint)."
    )
    doc.figure(plots.png_bytes(plots.correlation_plot(corr)), "correlation chart")
    doc.table(
        corr[
            [
                "benchmark",
                "n_models",
                "kendall_tau",
                "kendall_tau_lo",
                "kendall_tau_hi",
                "kendall_p",
                "spearman_rho",
                "spearman_p",
                "topk_kendall",
                "task",
            ]
        ]
    )
    try:
        result = pca(table)
    except ValueError as exc:
        doc.p(f"PCA skipped: {html.escape(str(exc))}", "note")
    else:
        write_table(result.explained, out, "pca_variance", sig)
        write_table(result.loadings.reset_index(names="benchmark"), out, "pca_loadings", sig)
        doc.h(3, "How many things do the benchmarks measure?")
        doc.figure(plots.png_bytes(plots.pca_plot(result.explained)), "PCA variance")
        doc.p(
            f"The first component explains {100 * result.explained['variance_ratio'][0]:.0f}% "
            "of the variance of the standardised model × benchmark matrix."
        )
    try:
        mixed = mixed_effects(study.battles, table)
    except ValueError as exc:
        doc.p(f"Mixed-effects model skipped: {html.escape(str(exc))}", "note")
        return
    write_table(mixed.fixed, out, "mixed_effects", sig)
    write_table(mixed.screened_out, out, "vif_screen", sig)
    doc.h(3, "Which benchmark differences predict the vote?")
    doc.p(
        f"Logistic mixed model over {mixed.n_battles} decided battles: P(model_a wins) on the "
        "differences of standardised benchmark scores (a − b), with model identity as a random "
        "effect (SD on the logit scale: "
        f"{mixed.model_effect_sd:.3f}). Benchmarks with a variance inflation factor above 5 were "
        f"removed first: {', '.join(mixed.screened_out['benchmark']) or 'none'}. "
        + html.escape(mixed.note)
    )
    doc.table(mixed.fixed)


def _topic_section(
    doc: _Doc,
    study: RatedStudy,
    out: Path,
    *,
    k: int | None,
    embedding_model: Path | str | None,
) -> None:
    battles = study.battles
    column = transcript_column(battles)
    if column is None:
        doc.p("The battles carry no transcripts of the queries, so topics were skipped.", "note")
        return
    has_text = battles[column].fillna("").astype(str).str.strip() != ""
    texts = battles.loc[has_text, column].astype(str).tolist()
    try:
        embeddings = embed_texts(texts, embedding_model)
    except RuntimeError as exc:
        doc.p(f"Topics skipped: {html.escape(str(exc))}", "note")
        return
    rng = np.random.default_rng(study.options.seed)
    try:
        found = cluster_texts(embeddings, texts, rng, k=k)
    except ValueError as exc:
        doc.p(f"Topics skipped: {html.escape(str(exc))}", "note")
        return
    shares = topic_shares(battles[has_text], found)
    boards, notes = topic_leaderboards(
        battles[has_text].reset_index(drop=True),
        found,
        rng,
        rounds=min(study.options.rounds, 200),
        ties=study.options.ties,
        bothbad_as_tie=study.options.bothbad_as_tie,
    )
    write_table(shares, out, "topics", study.signature)
    write_table(boards, out, "topic_leaderboards", study.signature)
    how = "chosen by silhouette" if found.silhouette is not None else "given"
    doc.p(
        f"Query transcripts (column <code>{column}</code>, {len(texts)} battles) embedded "
        f"with a sentence-embedding model and clustered into {found.k} topics (k {how}); "
        "each topic is named by its most distinctive words."
    )
    doc.figure(plots.png_bytes(plots.topic_plot(shares)), "topic shares")
    doc.table(shares)
    if not boards.empty:
        doc.p("Leaderboard within each topic (200 bootstrap rounds at most):")
        doc.table(_rounded(boards), digits=None)
    for note in notes:
        doc.p(html.escape(note), "note")
