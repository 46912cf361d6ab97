"""What the buttons and forms need from the bot, as a protocol: they reach it through
`interaction.client` and must not import the bot's module (which imports them)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import discord

from bot.discord_app.places import PrivateThreads
from bot.service import StudyService
from contract.settings import Settings


@runtime_checkable
class ParleyClient(Protocol):
    settings: Settings
    consent_text: str
    service: StudyService
    threads: PrivateThreads


def parley(interaction: discord.Interaction) -> ParleyClient:
    """The running bot (`app.ParleyBot`, which has these attributes)."""
    client = interaction.client
    if not isinstance(client, ParleyClient):
        raise TypeError(f"the interaction's client is a {type(client).__name__}, not Parley's")
    return client
