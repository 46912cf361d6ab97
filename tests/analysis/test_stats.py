"""Issue 13: participant bootstrap, sandwich errors, style control, behaviour tables, votes still
needed, the sequential simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.behaviour import agreement, position_bias, vote_times
from analysis.bradley_terry import ELO_SCALE
from analysis.cli import main
from analysis.pairs import count_pairs, participant_counts
from analysis.precision import error_table, votes_needed_table
from analysis.ratings import fit_ratings
from analysis.robust import sandwich_cov
from analysis.simulate import even_truth, neighbour_sd, simulate_battles, simulate_study
from analysis.style import fit_style, parse_style, style_table
from contract.records import Strategy

TRUTH = dict(zip(["a", "b", "c", "d", "e", "f"], np.linspace(-0.8, 0.8, 6), strict=True))


def _clustered(rng: np.random.Generator, n: int, people: int, taste: float) -> pd.DataFrame:
    """BT votes where each participant has their own strengths (truth + N(0, taste)), so one
    person's votes lean together."""
    names = np.array(list(TRUTH))
    base = np.array(list(TRUTH.values()))
    own = base + rng.normal(0, taste, (people, base.size))
    who = rng.integers(0, people, n)
    a = rng.integers(0, base.size, n)
    b = (a + rng.integers(1, base.size, n)) % base.size
    p = 1 / (1 + np.exp(-(own[who, a] - own[who, b])))
    win = np.where(rng.random(n) < p, "model_a", "model_b")
    return pd.DataFrame(
        {
            "battle_id": [f"x{k}" for k in range(n)],
            "participant": [f"p{k}" for k in who],
            "model_a": names[a],
            "model_b": names[b],
            "winner": win,
        }
    )


def _spread(draw, reps: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """(true SD of θ̂ over `reps` studies, per-study (boot_battles, boot_participants, sandwich
    battles, sandwich participants) SDs)."""
    estimates, claimed = [], []
    for seed in range(reps):
        df = draw(np.random.default_rng(seed))
        pairs = count_pairs(df)
        users, _ = participant_counts(df, pairs)
        by_battle = fit_ratings(pairs, rounds=150, seed=seed)
        by_person = fit_ratings(pairs, rounds=150, seed=seed, participants=users)
        estimates.append(by_battle.theta)
        claimed.append(
            np.array(
                [
                    by_battle.boot_theta.std(axis=0),
                    by_person.boot_theta.std(axis=0),
                    np.sqrt(np.diag(sandwich_cov(pairs, by_battle.theta))),
                    np.sqrt(np.diag(sandwich_cov(pairs, by_battle.theta, participants=users))),
                ]
            )
        )
    return np.std(estimates, axis=0, ddof=1), claimed


def test_errors_match_the_real_spread_on_independent_votes() -> None:
    # Many people, few votes each: every method should claim the real spread, within ±20%
    # (fails for intervals too wide as well as too narrow).
    true_sd, claimed = _spread(lambda rng: _clustered(rng, 1500, 1500, 0.0), 40)
    ratio = np.mean(claimed, axis=0).mean(axis=1) / true_sd.mean()
    assert np.all((ratio > 0.8) & (ratio < 1.2)), ratio


def test_participants_bootstrap_is_honest_when_votes_lean_together() -> None:
    # 30 people with strong personal tastes: the battle bootstrap claims too little spread; the
    # participant bootstrap and the participant-clustered sandwich claim the real one.
    true_sd, claimed = _spread(lambda rng: _clustered(rng, 1500, 30, 0.6), 40)
    ratio = np.mean(claimed, axis=0).mean(axis=1) / true_sd.mean()
    boot_battles, boot_people, sand_battles, sand_people = ratio
    assert boot_battles < 0.8, ratio
    assert sand_battles < 0.8, ratio
    assert 0.8 < boot_people < 1.25, ratio
    assert 0.8 < sand_people < 1.25, ratio


def test_sandwich_agrees_with_the_bootstrap_on_independent_data() -> None:
    df = simulate_battles(TRUTH, 4000, np.random.default_rng(3), tie_rate=0.1)
    ratings = fit_ratings(count_pairs(df), rounds=1000, seed=1)
    errors = error_table(ratings, df)
    np.testing.assert_allclose(errors["sandwich_se_battles"], errors["boot_se"], rtol=0.12)


def test_participant_resampling_redraws_whole_people() -> None:
    # Two people, each always voting one side: a round that draws one person twice has only
    # that person's votes, so the redraws swing far more than a battle bootstrap.
    rows = [("p1", "a", "b", "model_a")] * 50 + [("p2", "a", "b", "model_b")] * 50
    df = pd.DataFrame(rows, columns=["participant", "model_a", "model_b", "winner"])
    df["battle_id"] = [str(k) for k in range(len(df))]
    pairs = count_pairs(df)
    users, n_users = participant_counts(df, pairs)
    assert n_users == 2
    assert users.toarray().sum(axis=1).tolist() == [50, 50]
    by_person = fit_ratings(pairs, rounds=200, seed=0, participants=users, alpha=0.01)
    by_battle = fit_ratings(pairs, rounds=200, seed=0, alpha=0.01)
    assert by_person.resample == "participants"
    assert by_person.boot_theta.std() > 5 * by_battle.boot_theta.std()


def _styled(rng: np.random.Generator, n: int, beta: float) -> pd.DataFrame:
    df = simulate_battles(TRUTH, n, rng, tie_rate=0.0, with_transcripts=False)
    la, lb = rng.integers(20, 600, n), rng.integers(20, 600, n)
    z = (la - lb) / (la + lb)
    theta = df["model_a"].map(TRUTH).to_numpy() - df["model_b"].map(TRUTH).to_numpy()
    p = 1 / (1 + np.exp(-(theta + beta * z / z.std())))
    df["winner"] = np.where(rng.random(n) < p, "model_a", "model_b")
    df["reply_a"] = ["x" * int(k) for k in la]
    df["reply_b"] = ["x" * int(k) for k in lb]
    return df


def test_style_control_recovers_the_length_effect_and_the_strengths() -> None:
    df = _styled(np.random.default_rng(0), 6000, beta=0.5)
    models = tuple(sorted(TRUTH))
    fit = fit_style(df, models, ("length",), rounds=200, rng=np.random.default_rng(1))
    table = style_table(fit)
    assert table.loc[0, "coefficient_lo"] < 0.5 < table.loc[0, "coefficient_hi"]
    assert table.loc[0, "coefficient_lo"] > 0.3
    truth = np.array([TRUTH[m] for m in models])
    np.testing.assert_allclose(fit.theta, truth - truth.mean(), atol=0.12)
    lo, hi = np.quantile(fit.boot_theta, [0.025, 0.975], axis=0)
    assert np.mean((lo < truth - truth.mean()) & (truth - truth.mean() < hi)) >= 5 / 6


def test_style_without_an_effect_leaves_the_board_as_it_was() -> None:
    df = _styled(np.random.default_rng(2), 3000, beta=0.0)
    models = tuple(sorted(TRUTH))
    fit = fit_style(df, models, ("length",))
    raw = fit_ratings(count_pairs(df), rounds=0)
    np.testing.assert_allclose(fit.theta, raw.theta, atol=0.03)
    assert abs(fit.beta[0]) < 0.1


def test_style_names_and_columns_fail_loudly() -> None:
    assert parse_style("length, latency,length") == ("length", "latency")
    with pytest.raises(ValueError, match="verbosity"):
        parse_style("length,verbosity")
    df = simulate_battles(TRUTH, 100, np.random.default_rng(0), with_transcripts=False)
    with pytest.raises(ValueError, match="latency_a"):
        fit_style(df, tuple(sorted(TRUTH)), ("latency",))


def test_position_bias_vote_times_and_agreement_golden() -> None:
    df = pd.DataFrame(
        {
            "participant": ["u", "u", "u", "v", "v", "v"],
            "model_a": ["x", "y", "x", "x", "y", "x"],
            "model_b": ["y", "x", "y", "y", "x", "y"],
            "winner": ["model_a", "model_b", "model_a", "model_a", "model_a", "tie"],
            "vote_delay_s": [1.0, 2, 3, 4, 5, np.nan],
        }
    )
    overall, per = position_bias(df)
    assert overall.loc[0, "decided"] == 5
    assert overall.loc[0, "a_share"] == pytest.approx(4 / 5)
    assert per.set_index("participant").loc["u", "a_share"] == pytest.approx(2 / 3)
    assert vote_times(df).set_index("quantile").loc[0.5, "seconds"] == 3.0
    table = agreement(df, {"x|y": 0.5}).set_index("kind")
    # u: x, x, x preferred (y→b won on row 2 means x won): 3 votes all for x; v: x, y.
    # within: u has 3·2 ordered pairs all agreeing, v has 2 disagreeing → 6 / 8.
    assert table.loc["within a participant", "agreement"] == pytest.approx(6 / 8)
    # between: u×v ordered pairs: 3·2·2 = 12, agreeing 3·1·2 = 6.
    assert table.loc["between participants", "agreement"] == pytest.approx(6 / 12)
    assert table.loc["between participants", "expected_if_independent"] == pytest.approx(0.5)


def test_votes_needed_table_from_the_bootstrap() -> None:
    df = simulate_battles({"a": 0.0, "b": 0.05, "c": 1.5}, 1500, np.random.default_rng(4))
    ratings = fit_ratings(count_pairs(df), rounds=300, seed=0)
    table = votes_needed_table(ratings)
    assert list(table["upper"]) == ["c", "b"] or list(table["upper"]) == ["c", "a"]
    assert table.loc[0, "votes_needed"] == 0
    assert table.loc[1, "votes_needed"] > 100
    # Ties (10%, counted half) pull the fitted gap of 1.45 towards 0.
    assert ELO_SCALE * 1.0 < table.loc[0, "gap"] < ELO_SCALE * 1.6


def test_simulate_study_uses_the_pairing_strategy_and_the_truth() -> None:
    truth = even_truth(5)
    assert max(truth.values()) - min(truth.values()) == pytest.approx(400 / ELO_SCALE)
    balanced = simulate_study(truth, 100, Strategy.BALANCED, np.random.default_rng(0))
    pairs = balanced[["model_a", "model_b"]].apply(lambda r: tuple(sorted(r)), axis=1)
    assert pairs.value_counts().tolist() == [10] * 10  # 10 pairs, filled evenly
    active = simulate_study(truth, 1500, Strategy.ACTIVE, np.random.default_rng(0))
    uniform = simulate_study(truth, 1500, Strategy.UNIFORM, np.random.default_rng(0))
    assert (active["strategy"] == "active").all()
    assert (neighbour_sd(truth, active) ** 2).mean() < 0.9 * (
        neighbour_sd(truth, uniform) ** 2
    ).mean()


def test_cli_simulate_with_strategy_writes_the_truth(tmp_path) -> None:
    out, truth = tmp_path / "b.csv", tmp_path / "t.csv"
    code = main(
        [
            "simulate",
            "--strategy",
            "active",
            "--models",
            "4",
            "--battles",
            "200",
            "--seed",
            "1",
            "--out",
            str(out),
            "--truth",
            str(truth),
        ]
    )
    assert code == 0
    hidden = pd.read_csv(truth)
    assert list(hidden.columns) == ["model", "rating"]
    assert hidden["rating"].max() - hidden["rating"].min() == pytest.approx(400)
    assert len(pd.read_csv(out)) == 200


def test_cli_leaderboard_with_style_and_participants(tmp_path) -> None:
    df = _styled(np.random.default_rng(5), 1500, beta=0.4)
    df.to_csv(tmp_path / "b.csv", index=False)
    code = main(
        [
            "leaderboard",
            str(tmp_path / "b.csv"),
            "--style",
            "length",
            "--resample",
            "participants",
            "--rounds",
            "50",
            "--no-progress",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 0
    style = pd.read_csv(tmp_path / "o" / "style.csv")
    assert style.loc[0, "covariate"] == "length"
    assert style["signature"].str.contains("resample:participants|style:length", regex=False).all()
