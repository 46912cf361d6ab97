"""Security and privacy over one whole end-to-end run.

The stack runs with a recognisable bot token and a recognisable model API key (the fake
OpenAI-compatible server checks it, so the key really travels); the tests then look for those
secrets, for model identities before the vote, for Discord ids and paths in exports, for
moderator commands run by anyone else, and for any trace of a withdrawn participant. The last
test searches every log, REST body, export, data file and Redis value for the secrets.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import redis

from bot.discord_app import custom_ids as ids
from contract import keys
from contract.keys import RESULTS_STREAM
from contract.protocol import ResultMessage
from devstack.clips import encode, speak
from devstack.driver import StudyDriver
from devstack.fake_apis import FakeApiServer
from devstack.harness import E2E_MODELS, Stack
from devstack.helpers import DEFERRED, texts
from devstack.standin.server import StandIn
from devstack.standin.state import User
from tests.reliability.fuzz_flow import pseudonym_of, rest_bodies
from tests.reliability.fuzz_state import differences, snapshot
from tests.reliability.security_scan import export, export_text, files_text, redis_text
from workers.jobs import publish

pytestmark = pytest.mark.reliability
# The stack is shared by the module's end-to-end tests, so they run on the module's event loop.
ON_STACK = pytest.mark.asyncio(loop_scope="module")

BOT_TOKEN = "bot-token-SEKRIT-4f1c9e2a77"
API_KEY = "sk-parley-SEKRIT-apikey-90d3b1"
API_KEY_ENV = "E2E_MODELS_API_KEY"
REFUSAL = "Sorry — only study moderators can use this command."
GUILD_COMMANDS = "/applications/{app_id}/guilds/{guild_id}/commands"
# Every way a model can be named: display name, model id, the name the API serves it under.
MODEL_WORDS = re.compile(
    r"\b("
    + "|".join(
        re.escape(word)
        for model_id, (display, served) in E2E_MODELS.items()
        for word in (display, model_id, served)
    )
    + r")\b",
    re.IGNORECASE,
)


def keyed_models_toml(base_url: str) -> str:
    """The e2e models, each reading its API key from API_KEY_ENV."""
    parts = []
    for model_id, (display, served) in E2E_MODELS.items():
        parts.append(
            f'[models.{model_id}]\ndisplay_name = "{display}"\nbackend = "openai_compatible"\n'
            f'[models.{model_id}.settings]\nbase_url = "{base_url}"\nmodel = "{served}"\n'
            f'api_key_env = "{API_KEY_ENV}"\n'
        )
    return "\n".join(parts)


@pytest.fixture(scope="module")
def voice_ogg(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    wav = speak("Tell me something about rivers.", tmp_path_factory.mktemp("clips") / "q.wav")
    return encode(wav, "ogg", "libopus", 48_000)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    workdir = tmp_path_factory.mktemp("security-stack")
    fake_api = FakeApiServer(
        api_key=API_KEY,
        models=tuple(served for _, served in E2E_MODELS.values()),
        words_per_chunk=2,
    ).start()
    fake_api.broken_models.add(E2E_MODELS["broken"][1])
    models_file = workdir / "models.keyed.toml"
    models_file.write_text(keyed_models_toml(fake_api.openai_url), "utf-8")
    the_stack = Stack(
        workdir,
        models_file=models_file,
        standin=StandIn(token=BOT_TOKEN),
        extra_env={API_KEY_ENV: API_KEY},
    )
    the_stack.fake_api = fake_api  # stopped with the stack
    try:
        await the_stack.start()
        yield the_stack
    finally:
        await the_stack.stop()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def mod(driver: StudyDriver) -> User:
    # One turn per battle: these tests send several messages before voting, as separate rounds.
    return await driver.open_study(daily_quota=10_000, max_turns=1)


@ON_STACK
async def test_no_model_identity_before_the_vote(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes
) -> None:
    """Every REST body the bot sent until the first vote: messages, edits while replies stream
    in, buttons' custom_ids, interaction answers. Then the reveal must name the models."""
    assert stack.fake_api is not None
    # From here on only participants act (the moderator's own answers name the roster).
    start = len(stack.standin.rest_log)
    stack.fake_api.chunk_delay_s = 0.3  # partial replies stream into the message
    try:
        people = [await driver.join(f"blind-{i}") for i in range(2)]
        battles = [await driver.battle(user, thread, voice_ogg) for user, thread in people]
        battles += [await driver.battle(user, thread, voice_ogg) for user, thread in people]
    finally:
        stack.fake_api.chunk_delay_s = 0.0
    before_vote = rest_bodies(stack)[start:]
    assert any(ids.VOTE_PREFIX in body for body in before_vote), "the scan saw no buttons"
    leaks = [m.group(0) for body in before_vote for m in [MODEL_WORDS.search(body)] if m]
    assert not leaks, f"model identities before the vote: {leaks}"
    owners = [user for user, _ in people] * 2
    for (message, battle_id), user in zip(battles, owners, strict=True):
        voted = await driver.vote(user, message, battle_id, "tie")
        assert MODEL_WORDS.search(texts(voted)), "the reveal names the two models"


def test_job_receipts_kept_by_rq_hold_nothing_said(redis_url: str) -> None:
    """RQ keeps a job's return value for an hour, beyond withdrawal's reach: the receipt the
    job returns names the battle and side only (the result itself goes on the stream)."""
    client = redis.Redis.from_url(redis_url)
    try:
        message = ResultMessage(
            battle_id="b1",
            side="a",
            model_id="alpha",
            reply="what the model said",
            transcript="what the participant said",
            timings={"total": 1.0},
        )
        receipt = publish(client, message)
        [(_, fields)] = client.xrange(RESULTS_STREAM)
    finally:
        client.close()
    assert receipt == {"battle_id": "b1", "side": "a", "model_id": "alpha", "ok": True}
    assert b"what the participant said" in b"".join(fields.values())


def registered_subcommands(stack: Stack) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """(group, subcommand, options) for every /study and /participant subcommand the bot
    registered (the last sync), so a new subcommand is covered without editing this test."""
    [*_, last] = stack.standin.calls("PUT", GUILD_COMMANDS)
    found = []
    for command in last.json:
        if command["name"] not in ("study", "participant"):
            continue
        for option in command.get("options") or []:
            if option["type"] == 1:  # SUB_COMMAND
                found.append((command["name"], option["name"], option.get("options") or []))
    return found


def option_values(options: list[dict[str, Any]], member: User) -> dict[str, Any]:
    """A valid value for every option, required or not, typed as registered."""
    values: dict[str, Any] = {}
    for option in options:
        if option.get("choices"):
            values[option["name"]] = option["choices"][0]["value"]
            continue
        values[option["name"]] = {
            3: "alpha, beta",  # string
            4: int(option.get("min_value", 1) or 1),  # integer
            10: float(option.get("min_value", 1) or 1),  # number
            5: True,  # boolean
            6: member,  # user
            7: "general",  # channel
        }[option["type"]]
    return values


async def run_command(
    driver: StudyDriver, user: User, group: str, subcommand: str, options: dict[str, Any]
) -> str:
    response = await driver.command(user, group, subcommand, options=options, timeout=15)
    assert response.ephemeral or response.type == DEFERRED
    return driver.read(response)


@ON_STACK
async def test_moderator_commands_refuse_everyone_else(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes
) -> None:
    subcommands = registered_subcommands(stack)
    assert len(subcommands) >= 10, subcommands
    target, _ = await driver.join("target")
    outsider = await stack.standin.add_member("outsider")
    demoted = await driver.moderator("demoted")
    assert "**State:**" in await run_command(driver, demoted, "study", "status", {})
    # The role goes while the bot runs: the next command is refused at once.
    await stack.standin.set_roles(demoted, [])
    client = stack.redis_client()
    try:
        for person in (outsider, target, demoted):
            for group, subcommand, options in subcommands:
                before = snapshot(client)
                said = await run_command(
                    driver, person, group, subcommand, option_values(options, target)
                )
                assert said == REFUSAL, f"/{group} {subcommand} by {person.username}: {said!r}"
                changed = differences(before, snapshot(client))
                assert not changed, f"/{group} {subcommand} by {person.username}: {changed}"
    finally:
        client.close()
    public = [m for m in stack.standin.messages("study") if not int(m.get("flags") or 0) & 64]
    assert not [m for m in public if "Join the study" in str(m.get("components"))]
    # Given back, the role works again.
    await stack.standin.set_roles(demoted, ["Study moderator"])
    assert "**State:**" in await run_command(driver, demoted, "study", "status", {})


@ON_STACK
async def test_exports_hold_no_discord_ids_names_or_paths(
    stack: Stack, driver: StudyDriver, mod: User, tmp_path: Path
) -> None:
    users = [u for u in stack.standin.world.users.values() if u.id != stack.standin.bot.id]
    assert len(users) >= 4
    forbidden = [u.id for u in users] + [stack.data_dir.name, "audio/", ".ogg", "ui."]
    names = re.compile(r"\b(" + "|".join(re.escape(u.username) for u in users) + r")\b")
    for suffix in ("csv", "jsonl", "parquet"):
        battles, participants = export(stack, tmp_path / suffix, suffix)
        for path in (battles, participants):
            text = export_text(path)
            assert text.count("\n") >= 2, f"{path} is (nearly) empty"
            for word in forbidden:
                assert word not in text, f"{word!r} in {path.name}"
            assert not names.search(text), f"{names.search(text)} in {path.name}"
    # The moderator's /study export (attached to the answer) says the same.
    attached = await run_command(driver, mod, "study", "export", {})
    body = attached.split("\n", 1)[1]  # the first line names where the file was written
    for word in forbidden:
        assert word not in body, f"{word!r} in the /study export"


@ON_STACK
async def test_withdrawn_participant_leaves_nothing(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes, tmp_path: Path
) -> None:
    assert stack.fake_api is not None
    # Answers, comments and answers to the form only wren gave, to search for afterwards.
    private = {
        "reply": "Quetzalcoatlus-reply-only-wren-got",
        "comment": "Zanzibar-comment-only-wren-wrote",
        "demographic": "Volapuk-speaker-only-wren",
    }
    wren, thread = await driver.join("wren", about={"first_language": private["demographic"]})
    pseudonym = pseudonym_of(wren)
    stack.fake_api.reply_for = lambda seconds, history_turns: private["reply"]  # type: ignore[method-assign]
    try:
        first = await driver.battle(wren, thread, voice_ogg)
        second = await driver.battle(wren, thread, voice_ogg)
    finally:
        del stack.fake_api.reply_for
    await driver.vote(wren, first[0], first[1], "a")
    saved = await driver.comment(wren, second[0], second[1], private["comment"], forged=True)
    assert "saved" in texts(saved)
    mine = driver.read(await driver.command(wren, "mydata"))
    assert private["comment"] in mine
    assert private["demographic"] in mine
    battle_ids = [first[1], second[1]]
    client = stack.redis_client()
    try:
        audio_files = list((stack.data_dir / "audio").glob("*"))
        assert any(p.stem in battle_ids for p in audio_files)
        stored = redis_text(client)
        assert any(private["reply"] in v for v in stored.values()), "the search would find it"

        await driver.withdraw(wren)

        # Who they were and what they said: nowhere but their withdrawal record.
        traces = [pseudonym, wren.id, *private.values()]
        allowed_keys = {keys.participant(pseudonym), keys.PARTICIPANTS, keys.EVENTS}
        stored = redis_text(client)
        found = {
            key: [t for t in traces if t in key or t in value] for key, value in stored.items()
        }
        found = {k: v for k, v in found.items() if v}
        assert set(found) <= allowed_keys, f"traces of a withdrawn participant: {found}"
        # Their battles: gone from the study's keys (RQ's job records, which expire, keep the
        # ids of the jobs that answered them, but nothing they said).
        battle_traces = {
            key: [b for b in battle_ids if b in key or b in value]
            for key, value in stored.items()
            if key.startswith(keys.NAMESPACE + ":")
        }
        assert not {k: v for k, v in battle_traces.items() if v}, battle_traces
        record = {
            k.decode(): v.decode() for k, v in client.hgetall(keys.participant(pseudonym)).items()
        }
        assert set(record) == {"pseudonym", "status", "withdrawn_at"}, record
        events = [
            fields
            for _, fields in client.xrange(keys.EVENTS)
            if pseudonym.encode() in b"".join(fields.values())
        ]
        assert [e[b"type"] for e in events] == [b"withdrawn"], events
    finally:
        client.close()
    for path, text in files_text(stack.data_dir).items():
        if path.parent.name == "exports":
            continue  # made by earlier tests, before wren joined; later ones are read below
        assert not [t for t in [*traces, *battle_ids] if t in text], path
    battles, participants = export(stack, tmp_path / "after", "csv")
    battles_text = battles.read_text("utf-8")
    assert not [t for t in [*traces, *battle_ids] if t in battles_text]
    rows = [line for line in participants.read_text("utf-8").splitlines() if pseudonym in line]
    assert len(rows) == 1, rows
    assert "withdrawn" in rows[0], rows
    assert not [t for t in traces if t != pseudonym and t in participants.read_text("utf-8")]


@ON_STACK
async def test_no_secret_anywhere(stack: Stack, mod: User, tmp_path: Path) -> None:
    """Run last: the whole run's logs, REST bodies, exports, data files and Redis values."""
    assert stack.fake_api is not None
    used = [r for r in stack.fake_api.requests if API_KEY in str(r.get("headers"))]
    assert used, "the models never sent the API key: the test would prove nothing"
    battles, participants = export(stack, tmp_path / "final", "jsonl")
    places: dict[str, str] = {
        "bot log": stack.bot_log(),
        "worker log": stack.worker_log(),
        "REST bodies": "\n".join(rest_bodies(stack)),
        "export": export_text(battles) + export_text(participants),
    }
    places.update({str(p): t for p, t in files_text(stack.data_dir).items()})
    client = stack.redis_client()
    try:
        places.update({f"redis {k}": v for k, v in redis_text(client).items()})
    finally:
        client.close()
    for secret in (BOT_TOKEN, API_KEY, API_KEY[-12:], BOT_TOKEN[-12:]):
        leaked = [where for where, text in places.items() if secret in text]
        assert not leaked, f"a secret ({secret[:6]}…) appears in {leaked}"
    assert "Traceback" not in stack.bot_log(), stack.bot_log()[-4000:]
    assert stack.standin.unknown_routes() == []
