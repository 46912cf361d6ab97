"""Loading battle files and the cleaning filters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.battles import load_battles, normalise_battles
from analysis.bradley_terry import TieMode
from analysis.filters import FilterConfig, apply_filters, load_identity_words
from analysis.pairs import count_pairs, outcomes


def frame(rows: list[tuple[str, str, str]], **extra: list) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["model_a", "model_b", "winner"])
    df["battle_id"] = [f"b{i}" for i in range(len(df))]
    df["participant"] = extra.pop("participant", ["p"] * len(df))
    df["tstamp"] = extra.pop("tstamp", [1_700_000_000 + 60 * i for i in range(len(df))])
    for col, values in extra.items():
        df[col] = values
    return normalise_battles(df)


def test_count_pairs_forgets_sides() -> None:
    df = frame(
        [
            ("x", "y", "model_a"),
            ("y", "x", "model_b"),
            ("y", "x", "model_a"),
            ("x", "y", "tie"),
            ("y", "x", "tie (bothbad)"),
            ("x", "z", ""),
        ]
    )
    pairs = count_pairs(df)
    assert pairs.models == ("x", "y")  # z only has an unvoted battle
    # x (i) beat y twice, y beat x once, one tie, one "both bad".
    np.testing.assert_array_equal(pairs.counts, [[2, 1, 1, 1]])
    wi, wj, t = outcomes(pairs.counts, TieMode.HALF)
    np.testing.assert_allclose([wi[0], wj[0], t[0]], [3.0, 2.0, 0.0])
    wi, wj, t = outcomes(pairs.counts, TieMode.DAVIDSON, bothbad_as_tie=False)
    np.testing.assert_allclose([wi[0], wj[0], t[0]], [2.0, 1.0, 1.0])
    wi, wj, t = outcomes(pairs.counts, TieMode.DROP)
    np.testing.assert_allclose([wi[0], wj[0], t[0]], [2.0, 1.0, 0.0])


def test_unknown_winner_and_self_battle_fail_loudly() -> None:
    with pytest.raises(ValueError, match="unknown winner"):
        frame([("x", "y", "model_c")])
    with pytest.raises(ValueError, match="against itself"):
        frame([("x", "x", "tie")])


def test_file_formats_round_trip(tmp_path: Path) -> None:
    df = frame([("x", "y", "model_a"), ("y", "z", "")], flags=["", "spam"])
    df.to_csv(tmp_path / "b.csv", index=False)
    df.to_parquet(tmp_path / "b.parquet", index=False)
    df.to_json(tmp_path / "b.jsonl", orient="records", lines=True, date_format="iso")
    for name in ("b.csv", "b.parquet", "b.jsonl"):
        loaded = load_battles(tmp_path / name)
        assert list(loaded["winner"]) == ["model_a", ""], name
        assert loaded["tstamp"].dt.tz is not None, name


def test_chatbot_arena_battle_file(tmp_path: Path) -> None:
    # Arena's clean_battle files: a JSON list, epoch tstamp, `judge`, no battle_id.
    records = [
        {
            "model_a": "gpt-4",
            "model_b": "claude-1",
            "winner": "model_a",
            "judge": "arena_user_1",
            "tstamp": 1682351591.1,
            "anony": True,
            "language": "English",
        },
        {
            "model_a": "claude-1",
            "model_b": "gpt-4",
            "winner": "tie (bothbad)",
            "judge": "arena_user_2",
            "tstamp": 1682351600.0,
            "anony": True,
            "language": "English",
        },
    ]
    path = tmp_path / "clean_battle.json"
    path.write_text(json.dumps(records))
    loaded = load_battles(path)
    assert list(loaded["participant"]) == ["arena_user_1", "arena_user_2"]
    assert list(loaded["battle_id"]) == ["row-0", "row-1"]
    assert loaded["tstamp"].iloc[0].year == 2023


def test_filters_report_what_they_removed(tmp_path: Path) -> None:
    day = 86_400
    df = frame(
        [("x", "y", "model_a")] * 6 + [("x", "y", "")],
        participant=["p1", "p1", "p1", "p2", "p2", "p3", "p3"],
        tstamp=[0, 1, 2, 3, 4 * day, 5, 6],
        flags=["", "fast_vote", "", "identity_leak,fast_vote", "", "", ""],
        reply_a=["Hi!", "As GPT-4o, I think", "ok", "ok", "ok", "ok", "ok"],
        reply_b=["", "", "", "", "", "I am Claude", ""],
    )
    words_file = tmp_path / "identity.toml"
    words_file.write_text('x = ["GPT-4o", "OpenAI"]\ny = ["Claude"]\n')
    config = FilterConfig(
        identity_words=load_identity_words(words_file),
        max_votes_per_participant=1,
        until=pd.Timestamp(2 * day, unit="s", tz="UTC"),
    )
    result = apply_filters(df, config)
    removed = {s.name: s.removed for s in result.steps}
    # b6 unvoted; b3 flagged; b1 (x names GPT-4o) and b5 (y names Claude); b4 too late;
    # the cap keeps p1's earliest vote b0 and drops b2.
    # fast_vote alone is kept by default: only identity_leak battles are dropped.
    assert removed == {
        "unvoted": 1,
        "flagged=identity_leak": 1,
        "identity": 2,
        "until=1970-01-03": 1,
        "cap=1": 1,
    }
    assert list(result.battles["battle_id"]) == ["b0"]
    assert result.signature_part == (
        "unvoted,flagged=identity_leak,identity,until=1970-01-03,cap=1"
    )
    assert result.steps[1].note == "1 identity_leak"
    table = result.table()
    assert list(table["remaining"]) == [7, 6, 5, 3, 2, 1]


def test_bad_filter_config_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_votes_per_participant"):
        FilterConfig(max_votes_per_participant=0)
    bad = tmp_path / "words.json"
    bad.write_text('{"x": "GPT"}')
    with pytest.raises(ValueError, match="list of strings"):
        load_identity_words(bad)


def test_flag_filter_drops_what_it_names_and_excluded_participants() -> None:
    df = frame(
        [("x", "y", "model_a")] * 4,
        participant=["p1", "p2", "p3", "p3"],
        tstamp=[0, 1, 2, 3],
        flags=["fast_vote", "identity_leak", "", "fast_vote,identity_leak"],
    )
    kept = apply_filters(df, FilterConfig(drop_flagged=False))
    assert len(kept.battles) == 4
    both = apply_filters(df, FilterConfig(drop_flags=("identity_leak", "fast_vote")))
    assert both.signature_part == "unvoted,flagged=identity_leak+fast_vote"
    assert list(both.battles["battle_id"]) == ["b2"]
    out = apply_filters(
        df, FilterConfig(exclude_participants=frozenset({"p3"}), exclude_reason="anomalous")
    )
    assert out.signature_part == "unvoted,flagged=identity_leak,anomalous=1"
    assert list(out.battles["battle_id"]) == ["b0"]


def test_exclude_anomalous_drops_an_always_a_voter() -> None:
    from analysis.study import RatingOptions, rate_battles

    rng = np.random.default_rng(0)
    rows = []
    for i in range(600):
        a, b = rng.choice(["m1", "m2", "m3"], 2, replace=False)
        person = f"p{i % 6}"
        winner = "model_a" if person == "p0" else rng.choice(["model_a", "model_b"])
        rows.append((a, b, winner, person, float(i)))
    df = frame(
        [(a, b, w) for a, b, w, _, _ in rows],
        participant=[p for *_, p, _ in rows],
        tstamp=[t for *_, t in rows],
    )
    rated = rate_battles(df, FilterConfig(exclude_anomalous=True), RatingOptions(rounds=5, seed=1))
    assert "anomalous=1" in str(rated.signature)
    assert "p0" not in set(rated.battles["participant"])
