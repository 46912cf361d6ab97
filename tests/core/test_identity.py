"""The identity guard: golden cases of replies that name a model, and ones that must not fire."""

from __future__ import annotations

import pytest

from bot.core.identity import EXTRA, MASK, IdentityGuard

GUARD = IdentityGuard.for_models(
    [
        ("qwen2-audio", "Qwen2-Audio", ["Qwen", "Alibaba", "Tongyi"]),
        ("gpt4o", "GPT-4o audio", ["GPT-4o", "OpenAI", "ChatGPT"]),
        ("gemini", "Gemini 2.0 Flash", ["Gemini", "Google", "DeepMind", "Bard"]),
    ],
    extra_words=["Anthropic"],
)


@pytest.mark.parametrize(
    ("reply", "named", "shown"),
    [
        (
            "I am Qwen, created by Alibaba Cloud.",
            {"qwen2-audio"},
            f"I am {MASK}, created by {MASK} Cloud.",
        ),
        ("As ChatGPT, I think so.", {"gpt4o"}, f"As {MASK}, I think so."),
        ("gpt 4o here", {"gpt4o"}, f"{MASK} here"),
        ("I'm GPT4o.", {"gpt4o"}, f"I'm {MASK}."),
        ("I was trained by google deepmind.", {"gemini"}, f"I was trained by {MASK} {MASK}."),
        ("Q\u200bwen speaking", {"qwen2-audio"}, f"{MASK} speaking"),
        ("\uff31\uff57\uff45\uff4e speaking", {"qwen2-audio"}, f"{MASK} speaking"),  # fullwidth
        ("Qwen2-Audio at your service", {"qwen2-audio"}, f"{MASK} at your service"),
        ("Not made by Anthropic either.", {EXTRA}, f"Not made by {MASK} either."),
        (
            "Qwen and Gemini walk into a bar",
            {"qwen2-audio", "gemini"},
            f"{MASK} and {MASK} walk into a bar",
        ),
    ],
)
def test_names_are_masked_and_reported(reply: str, named: set[str], shown: str) -> None:
    guarded = GUARD.check(reply)
    assert guarded.named == named
    assert guarded.text == shown
    assert guarded.leaked


@pytest.mark.parametrize(
    "reply",
    [
        "Paris is the capital of France.",
        "Qwentin Tarantino made films.",  # a name inside a longer word
        "Googled it: 42.",  # 'Google' inside 'Googled'
        "The gemstone shone.",
        "Use an AI assistant.",
        "**bold** and \u200b zero width but no name",  # shown exactly as written
    ],
)
def test_ordinary_replies_pass_unchanged(reply: str) -> None:
    guarded = GUARD.check(reply)
    assert not guarded.leaked
    assert guarded.text == reply


def test_short_words_are_not_used_alone() -> None:
    guard = IdentityGuard({"m": ["AI", "Go", "m"]})
    assert not guard.check("AI can Go far, m.").leaked


def test_model_id_is_a_name_too() -> None:
    guard = IdentityGuard.for_models([("demo-pipeline", "Whisper tiny.en → SmolLM2", [])])
    assert guard.check("this is demo-pipeline talking").named == {"demo-pipeline"}
    assert guard.check("I am whisper tiny en → smollm2").named == {"demo-pipeline"}
