"""What the buttons and forms need from the bot, as a protocol: they reach it through
`interaction.client` and must not import the bot's module (which imports them)."""

from __future__ import annotations

from typing import Protocol

import discord

from bot.discord_app.places import PrivateThreads
from bot.service import StudyService
from contract.settings import Settings


class ParleyClient(Protocol):
    settings: Settings
    consent_text: str
    service: StudyService
    threads: PrivateThreads


def parley(interaction: discord.Interaction) -> ParleyClient:
    """The running bot (`app.ParleyBot`, which has these attributes)."""
    return interaction.client  # type: ignore[return-value]
