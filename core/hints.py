"""Reading an instruction before it costs GPU time: InstructPix2Pix only understands English, and its text encoder
reads 77 tokens at most (the rest is silently cut). core/understanding.py acts on what these functions find.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import Counter

from core.vocabulary import ENGLISH_WORDS, FOREIGN_WORDS, STYLE_TERMS

# CLIP's context is 77 tokens, two of which are the start and end markers.
MAX_INSTRUCTION_TOKENS = 75

# The languages people most often write to a bot in. Fewer languages make the detector lighter and surer.
_LANGUAGES = (
    "ENGLISH", "SPANISH", "FRENCH", "GERMAN", "ITALIAN", "PORTUGUESE", "DUTCH", "RUSSIAN", "UKRAINIAN", "POLISH",
    "TURKISH", "INDONESIAN", "VIETNAMESE", "JAPANESE", "CHINESE", "KOREAN", "ARABIC", "PERSIAN", "HINDI",
)

_detector = None
_detector_lock = threading.Lock()


def _language_detector():
    """Built on first use (about 2 s and 300 MB): a bot that never sees a suspicious text never pays for it."""
    global _detector
    with _detector_lock:
        if _detector is None:
            from lingua import Language, LanguageDetectorBuilder

            languages = [getattr(Language, name) for name in _LANGUAGES]
            _detector = LanguageDetectorBuilder.from_languages(*languages).build()
        return _detector


def estimate_tokens(text: str) -> int:
    """A CLIP-like count when no tokenizer is at hand: words, numbers and punctuation marks, plus the two markers."""
    return len(re.findall(r"\w+|[^\w\s]", text)) + 2


def without_style_terms(text: str) -> str:
    """The text less its names and style words ("Van Gogh", "ukiyo-e", "trompe l'oeil"): they read the same in
    every language, so they say nothing about the language the rest is in."""
    return _STYLE_PATTERN.sub(" ", text)


def style_terms_in(text: str) -> list[str]:
    """The names and style words in the text, as written there, in order."""
    return [match.group(0) for match in _STYLE_PATTERN.finditer(text)]


_STYLE_PATTERN = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(term) for term in STYLE_TERMS) + r")(?!\w)",
                            re.IGNORECASE)


def non_english(text: str) -> str | None:
    """The name of the language the text seems to be in, when it is clearly not English; else None."""
    text = without_style_terms(text)
    letters = [char for char in text if char.isalpha()]
    if not letters:
        return None
    latin = sum("LATIN" in unicodedata.name(char, "") for char in letters)
    words = re.findall(r"[^\W\d_]+", text.lower())
    english_words = sum(word in ENGLISH_WORDS for word in words)
    foreign = Counter(language for word in set(words) for language in FOREIGN_WORDS.get(word, ()))
    if latin == len(letters) and len(set(words) & FOREIGN_WORDS.keys()) >= 2:
        # Two words of instructions in another language ("rends la photo enneigée", "fais pleuvoir"): sure even when
        # mixed with English ("make it look like ukiyo-e, s'il vous plaît"); one alone may be a name ("Dale").
        return _likeliest(text, [language for language, hits in foreign.items() if hits == max(foreign.values())])
    if latin == len(letters) and (english_words / len(words) >= 0.3 or (len(words) < 3 and text.isascii())):
        # Mostly English words, or one or two plain words ("cyberpunk", "snowy"): too little to doubt.
        return None
    from lingua import Language

    values = _language_detector().compute_language_confidence_values(text)
    top = values[0]
    english = next((value.value for value in values if value.language == Language.ENGLISH), 0.0)
    if top.language == Language.ENGLISH:
        return None
    # Short Latin texts with accents ("zrób noc") are judged only when the detector is sure.
    sure = 0.25 if len(words) >= 3 else 0.9
    if latin < len(letters) / 2 or (english < 0.2 and top.value >= sure):
        return top.language.name.capitalize()
    return None


def _likeliest(text: str, candidates: list[str]) -> str:
    """Of languages the words point to equally ("la" is French, Spanish and Italian), the detector's favourite."""
    if len(candidates) == 1:
        return candidates[0]
    values = _language_detector().compute_language_confidence_values(text)
    ranked = [value.language.name.capitalize() for value in values]
    return min(candidates, key=lambda name: ranked.index(name) if name in ranked else len(ranked))


def control_character(text: str) -> str | None:
    """The first control character (NUL, escape, ...) of the text, as U+XXXX; None if it has none. Line breaks and tabs
    are allowed: people type them. The others cannot be stored (NUL, on PostgreSQL) or mean nothing to a model; the
    bidirectional overrides and isolates also reorder how captions show the text on every front-end."""
    for char in text:
        if (unicodedata.category(char) == "Cc" and char not in "\n\t") or char in BIDI_CONTROLS:
            return f"U+{ord(char):04X}"
    return None


BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
"""Embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069); the marks people do type (LRM, RLM, ZWJ) pass."""
