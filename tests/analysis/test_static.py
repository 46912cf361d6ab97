"""Static benchmarks: orientation, correlations against scipy, top-k distance, PCA, VIF, mixed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.bradley_terry import to_elo
from analysis.cli import main as analysis_main
from analysis.pairs import count_pairs
from analysis.ratings import fit_ratings
from analysis.simulate import simulate_battles
from analysis.static import (
    StaticTable,
    align_models,
    correlate,
    kendall_tau_b,
    mixed_effects,
    orient,
    pca,
    static_names_of,
    topk_kendall_distance,
    variance_inflation,
    vif_screen,
)
from contract.modelsfile import load_models_file
from tests.analysis.paths import REPO, data_dir


def test_lower_is_better_is_flipped() -> None:
    raw = pd.DataFrame({"wer": [5.0, 10.0, 20.0], "acc": [0.9, 0.8, 0.7]}, index=["m1", "m2", "m3"])
    meta = pd.DataFrame(
        {
            "benchmark": ["wer", "acc"],
            "dataset": ["ls", "x"],
            "task": ["asr", "y"],
            "metric": ["WER", "acc"],
            "higher_is_better": ["false", "true"],
        }
    )
    table = orient(raw, meta)
    assert list(table.scores["wer"]) == [-5.0, -10.0, -20.0]
    assert list(table.scores["acc"]) == [0.9, 0.8, 0.7]
    # Without META the name says it: a column called WER is an error rate.
    assert list(orient(raw, None).meta["higher_is_better"]) == [False, True]


def test_real_table_is_read(static_table: StaticTable) -> None:
    assert static_table.scores.shape == (11, 18)
    assert static_table.meta["higher_is_better"].all()
    assert align_models(["gpt4o", "Qwen2-Audio", "nope"], static_table) == {
        "gpt4o": "GPT4o",
        "Qwen2-Audio": "Qwen2-audio",
    }


def test_static_names_match_before_ids(static_table: StaticTable) -> None:
    names = {"gpt4o-audio": "GPT4o", "qwen2-7b": "Qwen2-audio", "gem-x": "Not In Table"}
    assert align_models(["gpt4o-audio", "qwen2-7b", "gem-x", "Diva"], static_table, names) == {
        "gpt4o-audio": "GPT4o",
        "qwen2-7b": "Qwen2-audio",
        "Diva": "Diva",  # no static name: the id itself still matches
    }
    with pytest.raises(ValueError, match="both match static table row 'GPT4o'"):
        align_models(["a", "b"], static_table, {"a": "GPT4o", "b": "gpt-4o"})


def test_static_names_of_reads_both_sides_and_refuses_two_names() -> None:
    battles = pd.DataFrame(
        {
            "model_a": ["x", "y", "z"],
            "model_b": ["y", "z", "x"],
            "static_name_a": ["X-1", None, ""],
            "static_name_b": ["Y-1", None, "X-1"],
        }
    )
    assert static_names_of(battles) == {"x": "X-1", "y": "Y-1"}
    assert static_names_of(battles.drop(columns=["static_name_a", "static_name_b"])) == {}
    battles.loc[2, "static_name_b"] = "X-2"
    with pytest.raises(ValueError, match="'x' has two static names"):
        static_names_of(battles)


def test_study_config_export_correlates_out_of_the_box(static_table: StaticTable, tmp_path) -> None:
    """A Parley export of examples/models.study.toml: model ids unlike the table's row names,
    static_name columns from the models file; `correlate` matches all six models."""
    models = load_models_file(REPO / "examples" / "models.study.toml")
    # The six configurations; their `-vllm` variants serve the same weights (a study runs one
    # of each pair, and both would claim the same table row).
    ids = sorted(m for m in models.models if not m.endswith("-vllm"))
    assert len(ids) == 6
    assert not align_models(ids, static_table)  # the ids alone match nothing
    names = {m: models.static_name(m) for m in ids}
    assert all(names.values()), names
    rng = np.random.default_rng(5)
    z = static_table.scores.mean(axis=1)
    theta = {m: float(z[names[m]]) / 10 + 0.2 * rng.normal() for m in ids}
    battles = simulate_battles(theta, 600, rng)
    battles["static_name_a"] = battles["model_a"].map(names)
    battles["static_name_b"] = battles["model_b"].map(names)
    export = tmp_path / "battles.csv"
    battles.to_csv(export, index=False)
    out = tmp_path / "out"
    d = data_dir()
    code = analysis_main(
        [
            "correlate",
            str(export),
            "--benchmarks",
            str(d / "talkarena_static_scores.csv"),
            "--meta",
            str(d / "talkarena_static_benchmarks.csv"),
            "--no-mixed",
            "--rounds",
            "50",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    corr = pd.read_csv(out / "correlations.csv")
    assert len(corr) == 18
    assert set(corr["n_models"]) <= {5, 6}
    assert (corr["n_models"] == 6).sum() >= 9


def test_vectorised_tau_b_matches_scipy_with_ties() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, (50, 9)).astype(float)
    y = rng.integers(0, 4, 9).astype(float)
    ours = kendall_tau_b(x, y)
    ref = [stats.kendalltau(row, y, variant="b").statistic for row in x]
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_correlations_match_scipy_on_the_real_table(
    static_table: StaticTable, study_battles: pd.DataFrame
) -> None:
    ratings = fit_ratings(count_pairs(study_battles), rounds=200, seed=0)
    corr = correlate(ratings, static_table).set_index("benchmark")
    assert len(corr) == 18
    rating = pd.Series(to_elo(ratings.theta), index=list(ratings.models))
    for bench in ("slurp_intent", "commonvoice_age", "alpaca_instruction"):
        score = static_table.scores[bench].loc[rating.index]
        tau = stats.kendalltau(rating, score)
        rho = stats.spearmanr(rating, score)
        row = corr.loc[bench]
        assert row["n_models"] == 11
        assert row["kendall_tau"] == pytest.approx(tau.statistic, abs=1e-12)
        assert row["kendall_p"] == pytest.approx(tau.pvalue, abs=1e-12)
        assert row["spearman_rho"] == pytest.approx(rho.statistic, abs=1e-12)
        assert row["spearman_p"] == pytest.approx(rho.pvalue, abs=1e-12)
        assert row["kendall_tau_lo"] <= row["kendall_tau_hi"]


def test_topk_kendall_distance_golden_cases() -> None:
    assert topk_kendall_distance(list("abcde"), list("abcde"), 3) == 0.0
    # Disjoint top-3 lists reach the maximum.
    assert topk_kendall_distance(list("abcxyz"), list("xyzabc"), 3) == 1.0
    # Top-2 [a, b] vs [b, a]: one discordant pair, max 2² + 0.5·2·1 = 5.
    assert topk_kendall_distance(list("abc"), list("bac"), 2) == pytest.approx(1 / 5)
    # Top-2 [a, b] vs [a, c]: (a,b) agree (a is ahead of b in both); (a,c) agree; (b,c) one in
    # each list only: 1. Total 1 / 5.
    assert topk_kendall_distance(list("abc"), list("acb"), 2) == pytest.approx(1 / 5)
    with pytest.raises(ValueError, match="k >= 1"):
        topk_kendall_distance(["a"], ["a"], 0)


def test_pca_matches_sklearn(static_table: StaticTable) -> None:
    from sklearn.decomposition import PCA

    result = pca(static_table)
    scores = static_table.scores
    z = (scores - scores.mean()) / scores.std(ddof=1)
    ref = PCA().fit(z.to_numpy())
    np.testing.assert_allclose(
        result.explained["variance_ratio"], ref.explained_variance_ratio_, atol=1e-10
    )
    assert result.explained["cumulative"].iloc[-1] == pytest.approx(1.0)
    assert 0.3 < result.explained["variance_ratio"].iloc[0] < 0.7


def test_vif_matches_statsmodels_and_screens_collinear_columns() -> None:
    from statsmodels.stats.outliers_influence import variance_inflation_factor

    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 3))
    x[:, 2] = x[:, 0] + 0.3 * x[:, 1] + 0.2 * rng.normal(size=200)
    with_const = np.column_stack([np.ones(200), x])
    ref = [variance_inflation_factor(with_const, i + 1) for i in range(3)]
    np.testing.assert_allclose(variance_inflation(x), ref, rtol=1e-8)
    design = pd.DataFrame(x, columns=["a", "b", "c"]).assign(d=lambda f: f["a"] - f["b"])
    kept, dropped = vif_screen(design, threshold=5)
    assert len(kept) == 2
    assert len(dropped) == 2
    assert dropped["vif"].iloc[0] == np.inf


def test_mixed_effects_on_the_real_table(
    static_table: StaticTable, study_battles: pd.DataFrame
) -> None:
    result = mixed_effects(study_battles, static_table)
    assert result.n_battles == (study_battles["winner"].isin(["model_a", "model_b"])).sum()
    kept = result.fixed["term"].tolist()
    assert kept[0] == "position_a"
    assert 1 < len(kept) <= 11  # 11 models: differences span at most 10 dimensions
    assert len(kept) - 1 + len(result.screened_out) == 18
    # Sides are random in the simulation: no position bias.
    assert abs(result.fixed["z"].iloc[0]) < 3
    assert result.model_effect_sd > 0
