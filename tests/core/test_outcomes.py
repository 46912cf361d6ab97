"""The running tally of decided votes per pair, which `active` pairing and /study status read."""

from __future__ import annotations

from bot.core import Strategy, Study, Winner
from contract import keys
from contract.pairing import PairOutcome, neighbour_gaps
from tests.core.helpers import Clock, answered_battle


async def test_votes_are_tallied_by_the_sorted_pair_and_withdrawal_undoes_them(
    study: Study, clock: Clock
) -> None:
    await study.set_limits("mod", min_seconds_between=0, daily_quota=100)
    expected: dict[str, list[int]] = {}
    winners = [Winner.MODEL_A, Winner.MODEL_B, Winner.TIE, Winner.BOTH_BAD, Winner.MODEL_A]
    for i, winner in enumerate(winners):
        battle = await answered_battle(study, clock, user=2000 + i % 2)
        clock.advance(30)
        await study.vote(2000 + i % 2, battle.battle_id, winner)
        pair = keys.pair_field(battle.model_a, battle.model_b)
        low = min(battle.model_a, battle.model_b)
        tally = expected.setdefault(pair, [0, 0, 0])
        if winner in (Winner.TIE, Winner.BOTH_BAD):
            tally[2] += 1
        else:
            winner_model = battle.model_a if winner is Winner.MODEL_A else battle.model_b
            tally[0 if winner_model == low else 1] += 1
    assert await study.pair_outcomes() == {p: PairOutcome(*t) for p, t in expected.items()}

    await study.withdraw(2000)
    await study.withdraw(2001)
    assert await study.pair_outcomes() == {}


async def test_active_strategy_draws_with_the_tally(study: Study, clock: Clock) -> None:
    await study.set_limits("mod", min_seconds_between=0, daily_quota=1000)
    await study.set_strategy(Strategy.ACTIVE, "mod")
    for i in range(12):
        battle = await answered_battle(study, clock, user=3000 + i)
        clock.advance(30)
        # The id that sorts first always wins: alpha > beta > delta > gamma.
        a_wins = battle.model_a < battle.model_b
        await study.vote(3000 + i, battle.battle_id, Winner.MODEL_A if a_wins else Winner.MODEL_B)
    outcomes = await study.pair_outcomes()
    assert sum(o.low_wins for o in outcomes.values()) == 12
    assert all(o.high_wins == 0 for o in outcomes.values())
    gaps = neighbour_gaps((await study.config()).roster, outcomes)
    assert [g.upper for g in gaps] == ["alpha", "beta", "delta"]
    assert all(g.votes_needed >= 0 for g in gaps)
