"""The one-line signature every output carries, sacrebleu style, so a table says how it was made."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version


def parley_version() -> str:
    try:
        return version("parley")
    except PackageNotFoundError:  # running from a checkout that was never installed
        from analysis import __version__

        return __version__


@dataclass(frozen=True)
class Signature:
    votes: int
    filters: str
    rounds: int
    seed: int | None
    ties: str
    bothbad: str = "tie"
    resample: str = "battles"  # the bootstrap's unit
    style: str = "none"  # style covariates, comma-separated

    def __str__(self) -> str:
        seed = "none" if self.seed is None else str(self.seed)
        return (
            f"votes:{self.votes}|filters:{self.filters}|rounds:{self.rounds}|seed:{seed}"
            f"|ties:{self.ties}|bothbad:{self.bothbad}|resample:{self.resample}"
            f"|style:{self.style}|parley:{parley_version()}"
        )
