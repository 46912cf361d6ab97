"""The identity guard: a reply that names a model of the roster is masked before anyone sees it.

A real model often names itself ("I am Qwen, created by Alibaba Cloud"); shown as is, that reply
ends the anonymity the comparison rests on. Chatbot Arena keeps only anonymous votes; Parley keeps
every vote but flags the battle (`identity_leak`) and masks the names in what the participant
reads, so the analysis can drop the flagged battles by default and still has them on request.

The guard knows, per model: its id, its display name and the `aliases` of the models file (vendor
and family words such as "Alibaba", "Qwen"); a study may add words that name no single model
(`extra_words`). Matching ignores case, zero-width characters and width variants (NFKC), and
lets up to three non-word characters stand between the parts of a name ("GPT-4o" also catches
"gpt 4o" and "GPT4o"), so a reply cannot slip a name past the guard by spelling it oddly.

Pure and synchronous: no Redis, no Discord.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from contract.modelsfile import ModelsFile

MASK = "[name hidden]"
# The key under which study-wide words are reported: they name no model of the roster.
EXTRA = "*"
# Invisible characters a reply could put inside a name to break a plain match.
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u180e\u200b\u200c\u200d\u2060\ufeff"), None)
_SEPARATORS = r"[\W_]{0,3}"  # up to three non-word characters between the parts of a name
# Words shorter than this would mask ordinary words ("AI", "Go"); say them as a phrase instead.
MIN_WORD_CHARS = 3


@dataclass(frozen=True)
class Guarded:
    """A reply after the guard: the text to show, and the models (ids) whose names it held."""

    text: str
    named: frozenset[str]

    @property
    def leaked(self) -> bool:
        return bool(self.named)


def clean(text: str) -> str:
    """The text as a reader sees it: invisible characters dropped, width variants folded."""
    return unicodedata.normalize("NFKC", text).translate(_INVISIBLE)


def _pattern(word: str) -> str:
    tokens = re.findall(r"\w+", clean(word), flags=re.UNICODE)
    body = _SEPARATORS.join(re.escape(t) for t in tokens)
    # Not inside a longer word: "Qwen" must not fire inside "Qwentin", but "Qwen2" is a name.
    return rf"(?<![^\W_]){body}(?![^\W\d_])"


class IdentityGuard:
    """Masks every name of every model in `names` (model id -> its words) in a reply."""

    def __init__(self, names: Mapping[str, Iterable[str]], extra_words: Iterable[str] = ()) -> None:
        self._patterns: list[tuple[str, re.Pattern[str]]] = []
        for owner, words in [*names.items(), (EXTRA, extra_words)]:
            kept = sorted(
                {w.strip() for w in words if len(clean(w).strip()) >= MIN_WORD_CHARS},
                key=len,
                reverse=True,  # longest first, so "Qwen2-Audio" wins over "Qwen"
            )
            usable = [w for w in kept if re.search(r"\w", w)]
            if usable:
                regex = "|".join(_pattern(w) for w in usable)
                self._patterns.append((owner, re.compile(regex, re.IGNORECASE)))

    @classmethod
    def for_models(
        cls,
        models: Iterable[tuple[str, str, Iterable[str]]],
        extra_words: Iterable[str] = (),
    ) -> IdentityGuard:
        """From (model id, display name, aliases) triples, as the models file holds them."""
        return cls(
            {model_id: (model_id, display, *aliases) for model_id, display, aliases in models},
            extra_words,
        )

    def check(self, text: str) -> Guarded:
        """The reply with every name masked, and which models it named."""
        shown = clean(text)
        named: set[str] = set()
        for owner, pattern in self._patterns:
            shown, hits = pattern.subn(MASK, shown)
            if hits:
                named.add(owner)
        # A reply that names nobody is shown exactly as written.
        return Guarded(shown if named else text, frozenset(named))


def guard_for(models: ModelsFile) -> IdentityGuard:
    """The guard of a study: every model of the models file (the roster is a subset, and a
    model taken off the roster mid-study still gives itself away), with its id, display name
    and `aliases`, plus the file's `[identity] extra_words`."""
    return IdentityGuard.for_models(
        ((spec.id, spec.display_name, spec.aliases) for spec in models.models.values()),
        models.identity_words,
    )


def shown_partial(guard: IdentityGuard, text: str) -> str:
    """A partial reply as it may be shown while it streams: masked, and cut before its last,
    perhaps unfinished word (the start of a name is not yet a name the guard can catch)."""
    if text and not text[-1].isspace():
        cut = max(text.rfind(" "), text.rfind("\n"))
        text = text[: cut + 1] if cut >= 0 else ""
    return guard.check(text).text
