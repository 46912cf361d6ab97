"""Why models lost, per model: golden counts from a hand-made table."""

from __future__ import annotations

import pandas as pd

from analysis.behaviour import LOSS_REASONS, loss_reasons
from contract.records import LOSS_REASONS as RECORDED


def test_the_menus_reasons_are_the_recorded_ones() -> None:
    assert LOSS_REASONS == RECORDED


def test_losers_and_their_reasons() -> None:
    battles = pd.DataFrame(
        {
            "model_a": ["x", "x", "y", "x", "y"],
            "model_b": ["y", "y", "x", "y", "x"],
            "winner": ["model_a", "model_b", "tie (bothbad)", "tie", "model_a"],
            "loss_reason": ["too_slow", "content", "understanding", None, None],
        }
    )
    table = loss_reasons(battles).set_index("model")
    assert table.loc["y", "too_slow"] == 1
    assert table.loc["y", "understanding"] == 1  # both bad counts against both
    assert table.loc["x", "content"] == 1
    assert table.loc["x", "understanding"] == 1
    assert table.loc["x", "answered"] == 2
    assert table.loc["x", "content_share"] == 0.5


def test_no_reasons_no_rows() -> None:
    battles = pd.DataFrame({"model_a": ["x"], "model_b": ["y"], "winner": ["model_a"]})
    assert loss_reasons(battles).empty
