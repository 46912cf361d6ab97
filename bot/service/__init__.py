"""The study service: the bot's use cases without Discord (never imports discord).

The cogs parse their input, call a use case here and render the plain value it returns
(`bot.service.outcomes`). Layers: contract → bot.core / bot.dispatch → bot.service →
bot.discord_app.
"""

from bot.service.service import StudyService

__all__ = ["StudyService"]
