"""From what a person typed to what the model gets: the one step between an instruction and an edit.

    understood = Understanding(translator).understand("rends la photo enneigée")
    understood.english      -> "make the photo snowy"   (what the model gets)
    understood.translation  -> Translation("rends la photo enneigée", "French")   (None when typed in English)

An instruction the model could not read well is held back with one line saying why and what to do (`HeldBack`):
empty, not English with no translator, not translatable (the translator returned nothing, the text unchanged, or
garbage: undecodable bytes or mostly symbols), or too long for CLIP once in English. Nothing reaches the model that the person will not see in the caption.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from core.domain import Translation
from core.errors import ModelUnavailable, UserError
from core.hints import (
    MAX_INSTRUCTION_TOKENS,
    estimate_tokens,
    non_english,
    style_terms_in,
)
from core.ports import Translator

log = logging.getLogger(__name__)

EXAMPLE = "for example “make it night”"


class HeldBack(UserError):
    """An instruction not sent to the model, with the line that says why; /asis (or /anyway) runs it as it is."""


@dataclass(frozen=True)
class Understood:
    english: str
    """What the model gets."""
    translation: Translation | None = None
    """The person's own words and their language, when `english` is a translation of them."""


class Understanding:
    """translator: None keeps non-English instructions back (EDITBOT_TRANSLATION_MODEL=none).
    count_tokens: the editor's token count for a text (CLIP's when known), markers included."""

    def __init__(self, translator: Translator | None = None,
                 count_tokens: Callable[[str], int] = estimate_tokens) -> None:
        self.translator = translator
        self.count_tokens = count_tokens

    def understand(self, text: str) -> Understood:
        """Blocking (translation runs a model): call it from a worker thread. Raises HeldBack."""
        text = text.strip()
        if not text:
            raise HeldBack(f"Tell me what to change, {EXAMPLE}.")
        language = non_english(text)
        if language is None:
            self.check_length(text)
            return Understood(text)
        if self.translator is None:
            raise HeldBack(f"That looks like {language}, but the model only understands English: please write the "
                           f"instruction in English ({EXAMPLE}), or send /anyway to try it as it is.")
        english = self._translate(text, language)
        self.check_length(english, translated=True)
        return Understood(english, Translation(text, language))

    def check_length(self, english: str, *, translated: bool = False) -> None:
        """HeldBack when CLIP would cut the end of the English off."""
        tokens = self.count_tokens(english)
        if tokens > MAX_INSTRUCTION_TOKENS + 2:
            what = f"In English (“{english}”) that instruction" if translated else "That instruction"
            raise HeldBack(f"{what} is too long for the model ({tokens - 2} tokens; it reads "
                           f"{MAX_INSTRUCTION_TOKENS}) and the end would be ignored: please shorten it, or send "
                           f"/anyway to try it as it is.")

    def _translate(self, text: str, language: str) -> str:
        masked, terms = mask_style_terms(text)
        try:
            english = self.translator.translate(masked, language)
        except ModelUnavailable as error:  # the operator's problem (logged); the person gets the usual way out
            log.warning("translation unavailable: %s", error)
            english = ""
        # Control characters and runs of spaces from a model going astray never reach a caption.
        english = "".join(char for char in english if char.isprintable() or char.isspace())
        english = unmask_style_terms(" ".join(english.split()), terms)
        if not english or _same_words(english, text) or _unreadable(english):
            raise HeldBack(f"I could not translate that from {language}: please write the instruction in English "
                           f"({EXAMPLE}), or send /asis to try it as it is.")
        return english


# Names and style words travel through the translator as placeholders it copies as they are ("Z1"), so "Van Gogh"
# does not come back as "Van Go" nor "noir" as "black".
def mask_style_terms(text: str) -> tuple[str, list[str]]:
    terms = style_terms_in(text)
    for number, term in enumerate(terms, start=1):
        text = re.sub(re.escape(term), f"Z{number}", text, count=1)
    return text, terms


def unmask_style_terms(english: str, terms: list[str]) -> str:
    """Put the terms back; one the translator dropped is added at the end, so none is lost."""
    missing = []
    for number, term in reversed(list(enumerate(terms, start=1))):  # Z12 before Z1
        english, found = re.subn(rf"\bZ{number}\b", term.replace("\\", "\\\\"), english, count=1)
        if not found:
            missing.insert(0, term)
    if missing and english:
        english = f"{english.rstrip('.')}, {', '.join(missing)}"
    return english


def _unreadable(english: str) -> bool:
    """A model gone astray: bytes that decode to no character (U+FFFD), or more symbols than letters."""
    visible = [char for char in english if not char.isspace()]
    return "\ufffd" in english or sum(char.isalpha() for char in visible) * 2 < len(visible)


def _same_words(english: str, text: str) -> bool:
    def words(value: str) -> list[str]:
        return re.findall(r"\w+", value.casefold())

    return words(english) == words(text)
