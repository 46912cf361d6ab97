"""The `commands.Bot` subclass: intents, dependencies, cogs, persistent buttons, command sync."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import discord
import redis
import redis.asyncio as aioredis
import yarl
from discord import app_commands
from discord.ext import commands
from redis.exceptions import RedisError

from bot.core import Study
from bot.discord_app import checks, views
from bot.discord_app.common import NO_MENTIONS, SOMETHING_WRONG, STORAGE_DOWN, tell
from bot.discord_app.guild_check import guild_problems
from bot.discord_app.moderator import Moderator
from bot.discord_app.participant import Participant
from bot.discord_app.places import PrivateThreads
from bot.discord_app.results import BattleEditor, ResultListener
from bot.service import StudyService
from bot.sweeper import Sweeper
from contract import keys
from contract.modelsfile import ModelsFile
from contract.records import Refused
from contract.settings import Settings

log = logging.getLogger(__name__)

# The bot never joins voice channels (voice messages are plain attachments): skip discord.py's
# warnings about voice libraries that are not installed.
discord.VoiceClient.warn_nacl = False
discord.VoiceClient.warn_dave = False

CONSENT_MAX_CHARS = 4096

# Global commands (they work in DMs with the bot, and in the study's server); every other
# command lives in the study's server only.
DM_COMMANDS = ("withdraw", "mydata")
# The Redis key of the global command set's hash: keys.commands_synced of no guild.
GLOBAL_SCOPE = 0


def intents() -> discord.Intents:
    """Only what the study needs. Message content is privileged: without it Discord sends guild
    messages (in the participants' private threads) without their attachments."""
    wanted = discord.Intents.none()
    wanted.guilds = True
    wanted.guild_messages = True
    wanted.dm_messages = True
    wanted.message_content = True
    return wanted


def point_at(api_base: str, gateway_url: str) -> None:
    """Send discord.py's REST calls and gateway connection to `api_base` / `gateway_url`.

    discord.py reads these class attributes on every request / connect; the defaults are Discord's.
    """
    discord.http.Route.BASE = api_base.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


class StartupError(RuntimeError):
    """Something the bot cannot start without is wrong; the message says what and where."""


# The shipped consent text's stand-in for who runs the study (bot/consent.md).
CONSENT_PLACEHOLDER = "[Research group, institution, contact e-mail; ethics approval reference.]"


def load_consent(settings: Settings) -> str:
    path = settings.consent_file or Path(__file__).resolve().parent.parent / "consent.md"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise StartupError(
            f"cannot read the consent text PARLEY_CONSENT_FILE={path}: {exc}"
        ) from exc
    # Drop HTML comments (notes for the study team) from what participants see.
    text = re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL).strip()
    if not text:
        raise StartupError(f"the consent text {path} is empty")
    if len(text) > CONSENT_MAX_CHARS:
        raise StartupError(
            f"the consent text {path} has {len(text)} characters; Discord shows at most "
            f"{CONSENT_MAX_CHARS} (an embed's description)"
        )
    if CONSENT_PLACEHOLDER in text:
        # Shipped text not yet filled in: participants would not know who runs the study.
        log.warning(
            "the consent text %s still has the placeholder %r: put in the research group, "
            "institution, contact e-mail and ethics approval (PARLEY_CONSENT_FILE) before "
            "inviting participants",
            path,
            CONSENT_PLACEHOLDER,
        )
    # The version travels in the consent buttons' custom_id.
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,32}", settings.consent_version):
        raise StartupError(
            "PARLEY_CONSENT_VERSION must be 1-32 letters, digits, '.', '_' or '-', got "
            f"{settings.consent_version!r}"
        )
    return text


class ParleyBot(commands.Bot):
    def __init__(
        self,
        *,
        settings: Settings,
        study: Study,
        models: ModelsFile,
        redis_client: aioredis.Redis,
        rq_conn: redis.Redis,
        consent_text: str,
    ) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents(),
            help_command=None,
            allowed_mentions=NO_MENTIONS,
        )
        self.settings = settings
        self.study = study
        self.models = models
        self.redis = redis_client
        self.rq_conn = rq_conn
        self.consent_text = consent_text
        # Every use case that is not Discord; the cogs, buttons and forms call it.
        self.service = StudyService(
            study,
            redis_client=redis_client,
            rq_conn=rq_conn,
            models=models,
            consent_version=settings.consent_version,
            job_timeout_s=settings.job_timeout_s,
            data_dir=settings.data_dir,
        )
        self.threads = PrivateThreads(self, self.service, settings)
        self.editor = BattleEditor(self, study)
        self.listener = ResultListener(redis_client, study, self.editor)
        # Fails or re-enqueues jobs whose worker died (no RQ callback runs on SIGKILL).
        self.sweeper = Sweeper(
            study,
            rq_conn,
            job_timeout_s=settings.job_timeout_s,
            interval_s=settings.sweep_interval_s,
        )
        self._background: list[asyncio.Task[None]] = []

    @property
    def guild_object(self) -> discord.Object:
        return discord.Object(id=int(self.settings.guild_id or 0))

    async def setup_hook(self) -> None:
        # Before anything else: a server set up wrongly stops the bot with every problem named.
        problems = await guild_problems(self, self.settings)
        for problem in problems:
            log.error("%s", problem)
        if problems:
            raise StartupError(
                f"{len(problems)} problem(s) with the study's server (PARLEY_GUILD_ID="
                f"{self.settings.guild_id}), listed above; the bot stops"
            )
        self.add_dynamic_items(*views.DYNAMIC_ITEMS)
        await self.add_cog(
            Participant(self, settings=self.settings, service=self.service, editor=self.editor)
        )
        await self.add_cog(
            Moderator(
                settings=self.settings,
                service=self.service,
                threads=self.threads,
                sync_commands=functools.partial(self.sync_commands, force=True),
            )
        )
        self.tree.error(self.on_app_command_error)
        # Commands live in the study's guild: they show up at once (global commands take up to
        # an hour) and nobody outside the study server sees them. Only /withdraw and /mydata
        # stay global, because a participant must be able to leave from a DM; they act on the
        # caller's own data only.
        self.tree.copy_global_to(guild=self.guild_object)
        for name in DM_COMMANDS:
            # Global only: a guild copy would show the command twice in the server.
            self.tree.remove_command(name, guild=self.guild_object)
        for name in [c.name for c in self.tree.get_commands()]:
            if name not in DM_COMMANDS:
                self.tree.remove_command(name)
        await self.sync_commands(force=False)
        await self.listener.ensure_group()
        self._background = [
            asyncio.create_task(self._results_after_ready(), name="parley-results"),
            asyncio.create_task(
                self._supervised(self.listener.run_partials, "partials"), name="parley-partials"
            ),
            asyncio.create_task(
                self._supervised(self.sweeper.run, "sweeper"), name="parley-sweeper"
            ),
            asyncio.create_task(self._transcripts_after_ready(), name="parley-transcripts"),
        ]

    async def _transcripts_after_ready(self) -> None:
        await self.wait_until_ready()
        await self._supervised(self.listener.run_transcripts, "transcripts")

    async def _results_after_ready(self) -> None:
        # Editing messages needs a live connection; results that arrived while the bot was
        # down are pending in the group and get shown now, once.
        await self.wait_until_ready()
        await self._supervised(self.listener.catch_up, "catch-up", forever=False)
        await self._supervised(self.listener.run_results, "results")

    async def _supervised(
        self, loop: Callable[[], Awaitable[None]], name: str, *, forever: bool = True
    ) -> None:
        """Run a background loop; a bug in it is logged and the loop restarted, because a dead
        listener would silently stop every reply from reaching participants."""
        while True:
            try:
                await loop()
                if not forever:
                    return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the %s loop failed; restarting it in 5 s", name)
                await asyncio.sleep(5.0)

    def commands_payload_hash(self, guild: discord.Object | None) -> str:
        """The hash of a guild's command set, or of the global one (guild None)."""
        payload = [c.to_dict(self.tree) for c in self.tree.get_commands(guild=guild)]
        blob = json.dumps(payload, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    async def sync_commands(self, *, force: bool) -> bool:
        """Sync the guild's slash commands and the global ones (DM_COMMANDS), each unless this
        exact set was synced before; True if either was synced."""
        synced_any = False
        for guild in (self.guild_object, None):
            scope = GLOBAL_SCOPE if guild is None else guild.id
            key = keys.commands_synced(scope)
            digest = self.commands_payload_hash(guild)
            stored = await self.redis.get(key)
            where = "globally" if guild is None else f"to guild {guild.id}"
            if not force and stored == digest.encode():
                log.info("slash commands already synced %s (version %s)", where, digest)
                continue
            synced = await self.tree.sync(guild=guild)
            await self.redis.set(key, digest)
            log.info("synced %d slash commands %s", len(synced), where)
            synced_any = True
        return synced_any

    async def on_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        original = getattr(error, "original", error)
        if isinstance(error, app_commands.CheckFailure):
            text = str(error) or checks.REFUSAL
            log.info("refused /%s for a non-moderator", getattr(interaction.command, "name", "?"))
        elif isinstance(original, Refused):
            text = original.message
        elif isinstance(original, RedisError):
            log.error("Redis error in /%s: %s", getattr(interaction.command, "name", "?"), original)
            text = STORAGE_DOWN
        else:
            log.error(
                "command /%s failed",
                getattr(interaction.command, "qualified_name", "?"),
                exc_info=original,
            )
            text = SOMETHING_WRONG
        try:
            await tell(interaction, text)
        except discord.HTTPException as exc:
            log.warning("could not tell the user about the error: %s", exc)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        await views.answer_unhandled(interaction)

    async def on_ready(self) -> None:
        log.info("connected as %s (id %s)", self.user, getattr(self.user, "id", "?"))

    async def close(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.editor.close()
        await self.listener.close()
        # Thread work uses REST: stop it before discord.py closes its HTTP session.
        await self.threads.close()
        await super().close()
