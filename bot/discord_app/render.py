"""Every text a participant or moderator reads, built from plain data (no Discord calls here).

Battle messages do not name a model before the vote: sides are "Model A" / "Model B" only, and a
model's error text (which may name it) is never shown, only that it failed. A reply that names a
model itself reaches this module already masked: the core's identity guard (bot/core/identity.py)
replaces every model's id, display name, `aliases` and the `[identity] extra_words` with
"[name hidden]" in stored replies, and the result listener masks streamed partials with the same
guard; such battles are flagged `identity_leak`. Words the guard does not know still get through.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.service.outcomes import (
    BadAudio,
    ConsentOutdated,
    Exported,
    NotAudio,
    NotDispatched,
    Refusal,
    StillAnswering,
    TextOnly,
    TooBig,
    TooLong,
    UnknownLength,
)
from contract.pairing import NeighbourGap
from contract.records import Battle, BattleStatus, Limits, ReplyMode, StudyConfig, Winner

MESSAGE_LIMIT = 2000  # Discord's limit on a message's content
HEADER_BUDGET = 400  # room kept for the header / the reveal above the two replies
SIDES = ("a", "b")
LABELS = {"a": "Model A", "b": "Model B"}
CHOICES: dict[str, Winner] = {
    "a": Winner.MODEL_A,
    "b": Winner.MODEL_B,
    "tie": Winner.TIE,
    "bothbad": Winner.BOTH_BAD,
}
CHOICE_LABELS = {
    "a": "A is better",
    "b": "B is better",
    "tie": "Tie",
    "bothbad": "Both are bad",
}
WINNER_WORDS = {
    Winner.MODEL_A: "A is better",
    Winner.MODEL_B: "B is better",
    Winner.TIE: "a tie",
    Winner.BOTH_BAD: "both are bad",
}


@dataclass(frozen=True)
class RenderedBattle:
    content: str
    # Full texts of replies too long for the message, by side, to attach as files.
    overflow: dict[str, str]


def attachment_name(side: str) -> str:
    return f"model-{side}.txt"


def spoken_name(side: str, fmt: str = "ogg") -> str:
    """The file name of a spoken reply: the side only, never the model."""
    return f"reply-{side}.{fmt}"


def spoken_note(side: str) -> str:
    return f"🔊 *Spoken reply — play {spoken_name(side)} below.*"


SPEECH_VOTE_HEADER = (
    "🎧 Both models answered. Listen to both replies, then vote: which is better? "
    "(You can also add a comment.)"
)


# Replies are the models' text, i.e. anyone's: a model can be asked to write markdown that draws
# a fake "**Model B**" header, a fake reveal line, a masked link or a mention. Each reply is
# shown inside a code block, where Discord renders nothing (no markdown, links, mentions,
# emoji); only a run of backticks could close it early, so such runs are broken up.
FENCE = "```"
ZWSP = "\u200b"
MAX_BLANK_LINES = 1  # consecutive blank lines kept inside a reply


def contain(text: str) -> str:
    """`text` made safe to put between code fences: no backtick runs, no control characters,
    no run of more than `MAX_BLANK_LINES` blank lines, no blank lines at either end."""
    cleaned = "".join(
        ch if ch in "\n\t" or (ch >= " " and ch != "\x7f") else " "
        for ch in text.replace("\r\n", "\n").replace("\r", "\n")
    )
    # A zero-width space after every backtick that another follows: no run can close the fence.
    cleaned = cleaned.replace("`", "`" + ZWSP).removesuffix(ZWSP)
    lines: list[str] = []
    blank = 0
    for line in cleaned.split("\n"):
        line = line.rstrip()
        if not line.strip(" \t" + ZWSP):
            blank += 1
            if blank > MAX_BLANK_LINES or not lines:
                continue
            lines.append("")
            continue
        blank = 0
        lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def fenced(text: str) -> str:
    """A code block holding `text` (already `contain`ed); the empty first line keeps a reply's
    first word from being read as the block's language."""
    return f"{FENCE}\n{text}\n{FENCE}"


FENCED_OVERHEAD = len(fenced(""))


def _side_block(
    side: str,
    text: str | None,
    *,
    failed: bool,
    streaming: bool,
    budget: int,
    pending: bool = False,
    spoken: bool = False,
) -> str:
    label = f"**{LABELS[side]}**"
    if failed:
        return f"{label}\n> ⚠️ *This model could not answer this time.*"
    if spoken:
        return f"{label}\n> {spoken_note(side)}"
    body = contain(text) if text is not None else ""
    if not body.strip(" \t" + ZWSP):
        if streaming or pending:
            return f"{label}\n> *listening…*"
        return f"{label}\n> *(empty reply)*"
    marker = "\n> *▌ (still writing)*" if streaming else ""
    room = budget - len(label) - 1 - FENCED_OVERHEAD - len(marker)
    if len(body) <= room:
        return f"{label}\n{fenced(body)}{marker}"
    note = (
        "\n> *…(still writing)*"
        if streaming
        else f"\n> *…(cut here; the whole reply is in {attachment_name(side)})*"
    )
    room = max(budget - len(label) - 1 - FENCED_OVERHEAD - len(note), 0)
    return f"{label}\n{fenced(body[:room].rstrip())}{note}"


def battle_message(
    header: str,
    texts: dict[str, str | None],
    *,
    failed: frozenset[str] = frozenset(),
    streaming: bool = False,
    pending: frozenset[str] = frozenset(),
    spoken: frozenset[str] = frozenset(),
) -> RenderedBattle:
    """The battle message: a header, then Model A's and Model B's replies, within 2,000 chars.

    `pending` sides have no reply yet (the other side failed first): they show that they are
    still listening rather than an empty reply, and are filled in when their reply comes.
    `spoken` sides are heard, not read (reply mode speech, before the vote): they point at
    their audio file instead of showing the text."""
    header = header[:HEADER_BUDGET]
    budget = (MESSAGE_LIMIT - len(header) - 4) // 2
    blocks = []
    overflow: dict[str, str] = {}
    for side in SIDES:
        text = texts.get(side)
        block = _side_block(
            side,
            text,
            failed=side in failed,
            streaming=streaming,
            budget=budget,
            pending=side in pending,
            spoken=side in spoken,
        )
        if not streaming and text and side not in failed and "(cut here;" in block:
            overflow[side] = text
        blocks.append(block)
    content = header + "\n\n" + "\n\n".join(blocks)
    return RenderedBattle(content=content[:MESSAGE_LIMIT], overflow=overflow)


def reply_texts(battle: Battle) -> tuple[dict[str, str | None], frozenset[str]]:
    texts = {side: (r.text if (r := battle.replies.get(side)) else None) for side in SIDES}
    failed = frozenset(side for side, r in battle.replies.items() if r.error is not None)
    return texts, failed


def progress_header(position: int | None) -> str:
    if position is None or position <= 0:
        return "🎧 Got your message — two models are listening now."
    ahead = "1 message is" if position == 1 else f"{position} messages are"
    return f"🎧 Got your message — {ahead} ahead of yours in the queue. Replies will appear here."


LOSS_REASON_LABELS = {
    "understanding": "It misunderstood me",
    "content": "Its answer was worse",
    "speech_quality": "Its speech sounded worse",
    "too_slow": "It was too slow",
    "other": "Something else",
}


def loss_question(battle: Battle) -> str:
    """The select menu's placeholder: which reply lost (both, for "both are bad")."""
    if battle.winner is Winner.BOTH_BAD:
        return "Optional: what was wrong with both?"
    return "Optional: why did the other reply lose?"


def turn_header(turn: int) -> str:
    return f"🎧 Turn {turn} — the same two models carry on the conversation."


STILL_ANSWERING = (
    "The models are still answering your last message. Please wait for both replies, then "
    "speak again: your next voice message continues the conversation."
)


def awaiting_voice_reason(minutes: int) -> str:
    return (
        "🎙️ Send a voice message here within "
        f"{minutes} minutes saying why you voted as you did; I'll write it down as your comment."
    )


REASON_TAKEN = "🎙️ Thanks! I'm writing down your reason; it is kept as your comment."


def reason_saved(text: str) -> str:
    return f"🎙️ Your reason was saved as a comment:\n{fenced(contain(text[:1800]))}"


REASON_FAILED = "Sorry — I couldn't make out your reason, so nothing was kept. You can type one."


VOTE_HEADER = (
    "🎧 Both models answered. Which reply is better? Vote with the buttons below "
    "(you can also add a comment)."
)


def failed_header() -> str:
    return (
        "⚠️ Sorry — one of the models could not answer this time, so this round takes no vote. "
        "Please send another voice message to try again."
    )


def reveal_header(battle: Battle, names: dict[str, str], remaining: int) -> str:
    vote = WINNER_WORDS.get(battle.winner, "—") if battle.winner else "—"
    left = (
        "You have reached today's limit — thank you!"
        if remaining <= 0
        else f"You can do {remaining} more {'round' if remaining == 1 else 'rounds'} today."
    )
    return (
        f"✅ Thanks for voting ({vote})! Model A was **{names['a']}** and Model B was "
        f"**{names['b']}**. {left}"
    )


def render_battle(
    battle: Battle, *, names: dict[str, str] | None = None, remaining: int | None = None
) -> RenderedBattle:
    """The final message for a battle in any state (names only used once it is voted)."""
    texts, failed = reply_texts(battle)
    # Heard, not read, until the vote: the message only points at the audio.
    spoken = frozenset(
        side
        for side in SIDES
        if battle.reply_mode is ReplyMode.SPEECH
        and battle.status is not BattleStatus.VOTED
        and texts.get(side)
        and side not in failed
    )
    # A failed battle is shown at its first failure; the other side may still be answering.
    pending = frozenset(
        side
        for side in SIDES
        if battle.status is BattleStatus.FAILED and side not in battle.replies
    )
    if battle.status is BattleStatus.VOTED and names is not None:
        header = reveal_header(battle, names, remaining if remaining is not None else 0)
    elif battle.status is BattleStatus.FAILED:
        header = failed_header()
    elif battle.status is BattleStatus.ANSWERED:
        header = SPEECH_VOTE_HEADER if battle.reply_mode.spoken else VOTE_HEADER
        if battle.turn > 1:
            header = (
                f"🎧 Turn {battle.turn}: both models answered. Vote now on the whole "
                "conversation, or send another voice message to carry on."
            )
    else:
        header = progress_header(None)
    return battle_message(
        header,
        texts,
        failed=failed,
        streaming=battle.status is BattleStatus.QUEUED,
        pending=pending,
        spoken=spoken,
    )


def split_text(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split on line breaks where possible so each piece fits in one message."""
    if limit <= 0:
        raise ValueError(f"limit must be positive, got {limit}")
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit)
        if cut <= 0:
            cut = limit
        pieces.append(rest[:cut])
        rest = rest[cut:].lstrip("\n")
    if rest:
        pieces.append(rest)
    return pieces


def megabytes(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB"


def unserved_text(models: Sequence[str]) -> str:
    """A warning line (with its leading newline) about roster models no worker serves."""
    if not models:
        return ""
    named = ", ".join(f"`{m}`" for m in models)
    return (
        f"\n⚠️ **No live worker serves:** {named}. Rounds drawing these models fail that side "
        "after about two minutes (participants are told); start a worker for them, or take "
        "them off the roster with `/study models`."
    )


EXPORT_UPLOAD_WARNING = (
    "⚠️ The attached export holds every transcript, reply and comment of the study (under "
    "pseudonyms), and Discord keeps attachments on its servers: share the file only as the "
    "study's ethics approval allows."
)


def export_summary(exported: Exported) -> str:
    """What `/study export` answers: where the file is and what it holds, never its content."""
    flags = ", ".join(f"{name} {n}" for name, n in exported.flags.items()) or "none"
    return (
        f"Exported {exported.rows} battles ({exported.voted} voted, {exported.participants} "
        f"participants) to `{exported.path}` on the bot's host ({megabytes(exported.size)}).\n"
        f"Flagged battles (kept in the export, column `flags`): {flags}.\n"
        "The file stays on the bot's host; run `/study export upload:True` to attach it here."
    )


def too_big(size: int, limit: int) -> str:
    return (
        f"That file is {megabytes(size)}; the study takes audio up to {megabytes(limit)}. "
        "Please send a shorter recording."
    )


def too_long(seconds: float, limit: float) -> str:
    return (
        f"That recording is {seconds:.0f} s long; the study takes up to {limit:.0f} s. "
        "Please send a shorter one."
    )


def not_audio(filename: str) -> str:
    return (
        f"`{filename[:80]}` doesn't look like audio. Please send a voice message "
        "(hold the microphone button on mobile) or attach an audio file (.ogg, .mp3, .wav, .m4a)."
    )


def unreadable_audio(reason: str) -> str:
    return (
        f"Sorry, I couldn't read that audio ({reason[:200]}). "
        "Please record it again or try another file."
    )


UNREADABLE_RECORDING = (
    "Sorry, we could not read your recording: the file seems damaged. Nothing was used from "
    "today's rounds — please record it again."
)

TEXT_HINT = (
    "I only take voice messages here. Send a voice message (mobile: hold the microphone button) "
    "or attach an audio file, and two anonymous models will answer it."
)

DOWNLOAD_FAILED = (
    "Sorry, I couldn't fetch your recording from Discord just now. Please send it again."
)

USE_PRIVATE_PLACE = (
    "Everyone can hear recordings posted here, so I don't take them in this channel. "
    "Use `/join` to get your private thread, or send your voice message to me in a DM."
)

NOT_JOINED = "You haven't joined the study yet — use `/join` first (it only takes a minute)."


def instructions(limits: Limits, where: str | None) -> str:
    place = f"in your private thread {where} or in a DM with me" if where else "in a DM with me"
    return (
        "**How it works**\n"
        f"1. Send a voice message {place} — ask anything, or give the models a task "
        f"(up to {limits.audio_max_seconds:.0f} s).\n"
        "2. Two anonymous models, *Model A* and *Model B*, answer.\n"
        "3. Not decided yet? Send another voice message to carry on the conversation "
        f"(up to {limits.max_turns} turns).\n"
        "4. Vote for the better reply (or Tie / Both are bad) and, if you like, add a comment "
        "or say why.\n"
        "5. After your vote we reveal which models they were.\n"
        f"You can do up to {limits.daily_quota} rounds a day. `/mydata` shows what we store; "
        "`/withdraw` deletes it."
    )


def consent_outdated(version: str) -> str:
    return (
        f"The consent form has changed (it is now version {version}). Please read it and agree "
        "again with `/join` before your next round — nothing was recorded from this message."
    )


def consent_title(version: str) -> str:
    return f"Consent (version {version})"


def json_block(data: Any, limit: int = MESSAGE_LIMIT - 20) -> str | None:
    """A JSON code block, or None when it would not fit in one message."""
    # What participants typed (a comment, a form field) is in there: no backtick run may close
    # the block early.
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    text = text.replace("`", "`" + ZWSP).removesuffix(ZWSP)
    block = f"```json\n{text}\n```"
    return block if len(block) <= limit else None


def config_text(config: StudyConfig, names: dict[str, str]) -> str:
    roster = ", ".join(f"`{m}` ({names.get(m, m)})" for m in config.roster) or "*(empty)*"
    lim = config.limits
    return (
        f"**State:** {config.state.value}\n**Strategy:** {config.strategy.value}\n"
        f"**Replies:** {config.replies.value}\n"
        f"**Roster:** {roster}\n"
        f"**Limits:** {lim.daily_quota}/day, {lim.min_seconds_between:g} s between rounds, "
        f"audio ≤ {lim.audio_max_seconds:g} s and ≤ {megabytes(lim.audio_max_bytes)}, "
        f"comments ≤ {lim.comment_max_chars} chars, pair target {lim.pair_target}, "
        f"≤ {lim.max_turns} turns per battle\n"
        f"**Fast-vote flag:** reading at {lim.fast_vote_chars_per_second:g} chars/s, "
        f"listening {lim.fast_vote_listen_share:g} of spoken length, "
        f"at least {lim.fast_vote_floor_s:g} s"
    )


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


NOT_DISPATCHED = (
    "Sorry, I couldn't pass your message to the models right now. "
    "Please try again in a little while."
)

ClipAnswer = (
    TextOnly
    | NotAudio
    | Refusal
    | ConsentOutdated
    | TooBig
    | BadAudio
    | UnknownLength
    | TooLong
    | NotDispatched
    | StillAnswering
)


def clip_answer(outcome: ClipAnswer) -> str:
    """What to tell a participant whose voice message did not start a battle."""
    match outcome:
        case TextOnly(joined=joined):
            return TEXT_HINT if joined else NOT_JOINED
        case NotAudio(filename=filename):
            return not_audio(filename)
        case BadAudio(reason="corrupt"):
            return UNREADABLE_RECORDING
        case Refusal(message=message) | BadAudio(message=message):
            return message
        case ConsentOutdated(current=current):
            return consent_outdated(current)
        case TooBig(size=size, limit=limit):
            return too_big(size, limit)
        case UnknownLength():
            return unreadable_audio("its length is unknown")
        case TooLong(seconds=seconds, limit=limit):
            return too_long(seconds, limit)
        case NotDispatched():
            return NOT_DISPATCHED
        case StillAnswering():
            return STILL_ANSWERING
    raise TypeError(f"no text for the clip outcome {outcome!r}")


def votes_needed_text(gaps: Sequence[NeighbourGap], names: Mapping[str, str]) -> str:
    """Each adjacent pair of the running ranking and the further votes until the two separate."""
    lines = ["**Votes still needed** (adjacent models, at the current pace, 95% intervals):"]
    for gap in gaps:
        pair = f"{names.get(gap.upper, gap.upper)} > {names.get(gap.lower, gap.lower)}"
        if gap.votes_needed == 0:
            need = "separated"
        elif math.isinf(gap.votes_needed):
            need = "— (no difference yet)"
        else:
            need = f"about {math.ceil(gap.votes_needed):,} more votes"
        lines.append(f"• {pair}: {need}")
    return "\n".join(lines)
