"""The study's configuration: state (open/paused/closed), roster, pairing strategy, limits."""

from __future__ import annotations

import dataclasses
from typing import Any

from bot.core.codec import LIMIT_FIELDS, config_from_hash, decode_hash
from bot.core.context import StudyContext
from bot.core.refusals import refused
from bot.core.scripts import ChangeConfig, InitConfig
from contract import keys
from contract.events import ConfigChanged
from contract.records import Limits, ReplyMode, Strategy, StudyConfig, StudyState

# Each limit's allowed range, whatever a client sent (the slash command's bounds are only a
# client-side hint: a forged interaction can carry any value).
LIMIT_RANGES: dict[str, tuple[float, float]] = {
    "daily_quota": (0, 10_000),
    "min_seconds_between": (0, 86_400),
    "audio_max_seconds": (1, 600),
    "audio_max_bytes": (1_000, 100_000_000),
    "comment_max_chars": (1, 4000),
    "pair_target": (1, 1_000_000),
    "max_turns": (1, 50),
    # 0 turns the fast-vote rule off (for written, or for spoken replies).
    "fast_vote_chars_per_second": (0, 10_000),
    "fast_vote_listen_share": (0, 1),
    "fast_vote_floor_s": (0, 3600),
}


class ConfigStore:
    def __init__(self, ctx: StudyContext, initial_state: StudyState = StudyState.CLOSED) -> None:
        self._ctx = ctx
        self._initial_state = StudyState(initial_state)
        self._ready = False

    async def ensure(self) -> None:
        """The first start of a study: closed (until a moderator runs `/study open`), uniform,
        default limits, and every known model as the proposed roster."""
        if self._ready:
            return
        initial = ConfigChanged(
            by="parley",
            at=self._ctx.clock(),
            state=self._initial_state,
            strategy=Strategy.UNIFORM,
            roster=tuple(sorted(self._ctx.known_models.models)),
            limits=dataclasses.asdict(Limits()),
        )
        await self._ctx.scripts.run(InitConfig(initial=initial))
        self._ready = True

    async def config(self) -> StudyConfig:
        await self.ensure()
        async with self._ctx.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(keys.CONFIG)
            pipe.smembers(keys.ROSTER)
            raw, roster = await pipe.execute()
        return config_from_hash(decode_hash(raw), [m.decode() for m in roster])

    async def _change(self, change: ConfigChanged) -> StudyConfig:
        await self.ensure()
        await self._ctx.scripts.run(ChangeConfig(change=change))
        return await self.config()

    async def set_state(self, state: StudyState, by: str) -> StudyConfig:
        try:
            valid = StudyState(state)
        except ValueError:
            known = ", ".join(s.value for s in StudyState)
            raise refused(
                "invalid_value", detail=f"Unknown state {state!r}; states: {known}."
            ) from None
        if valid is StudyState.OPEN:
            roster = (await self.config()).roster
            if len(roster) < 2:
                raise refused("roster_invalid", detail=_too_few(roster, "open the study"))
        return await self._change(ConfigChanged(by=by, at=self._ctx.clock(), state=valid))

    async def set_strategy(self, strategy: Strategy, by: str) -> StudyConfig:
        try:
            valid = Strategy(strategy)
        except ValueError:
            known = ", ".join(s.value for s in Strategy)
            raise refused(
                "invalid_value", detail=f"Unknown strategy {strategy!r}; strategies: {known}."
            ) from None
        return await self._change(ConfigChanged(by=by, at=self._ctx.clock(), strategy=valid))

    async def set_replies(self, mode: ReplyMode, by: str) -> StudyConfig:
        """How replies reach participants from the next battle on (text, speech or both)."""
        try:
            replies = ReplyMode(mode)
        except ValueError:
            raise refused(
                "invalid_reply_mode",
                bad=str(mode),
                known=", ".join(m.value for m in ReplyMode),
            ) from None
        return await self._change(ConfigChanged(by=by, at=self._ctx.clock(), replies=replies))

    async def set_roster(self, roster: list[str], by: str) -> StudyConfig:
        models = tuple(sorted(set(roster)))
        known = self._ctx.known_models.models
        unknown = [m for m in models if m not in known]
        if unknown:
            raise refused("unknown_model", bad=", ".join(unknown), known=", ".join(known))
        if len(models) < 2:
            # A battle pairs two models: a smaller roster would silently take no rounds.
            raise refused("roster_invalid", detail=_too_few(models, "set the roster"))
        return await self._change(ConfigChanged(by=by, at=self._ctx.clock(), roster=models))

    async def set_limits(self, by: str, **fields: Any) -> StudyConfig:
        for name, value in fields.items():
            kind = LIMIT_FIELDS.get(name)
            if kind is None:
                raise refused(
                    "invalid_limit",
                    detail=f"Unknown limit {name!r}; limits: {', '.join(LIMIT_FIELDS)}.",
                )
            wants_int = kind in (int, "int")
            ok_type = isinstance(value, int) if wants_int else isinstance(value, int | float)
            low, high = LIMIT_RANGES[name]
            if isinstance(value, bool) or not ok_type or not low <= value <= high:
                # `not low <= value <= high` also refuses NaN and ±inf.
                raise refused(
                    "invalid_limit",
                    detail=f"Limit {name} must be a {'whole number' if wants_int else 'number'} "
                    f"from {low:g} to {high:g}, got {value!r}.",
                )
        if not fields:
            return await self.config()
        return await self._change(ConfigChanged(by=by, at=self._ctx.clock(), limits=dict(fields)))


def _too_few(roster: tuple[str, ...], action: str) -> str:
    has = ", ".join(f"`{m}`" for m in roster) if roster else "no models"
    return (
        f"Cannot {action}: a battle needs two models and the roster has {has}. "
        "Set at least two with `/study models`."
    )
