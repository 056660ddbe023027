"""Checks on an instruction before it costs GPU time: InstructPix2Pix only understands English, and its text encoder
reads 77 tokens at most (the rest is silently cut). Each check answers with a suggestion, or None when all is well.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable

# CLIP's context is 77 tokens, two of which are the start and end markers.
MAX_INSTRUCTION_TOKENS = 75

# Short, common words of English instructions. Language detectors are unsure on three-word texts ("make it
# cyberpunk" reads as German to them); a text made of enough of these is English whatever they say.
ENGLISH_WORDS = frozenset("""
a an the it its this that these those him her his them their me my you your he she they we our
make turn add remove give put change replace let keep set paint draw show use convert transform swap
into to in on of with from at as like by for and or but not no more less very much bit little
look looks style styled be is are was more same than then
""".split())

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


def non_english(text: str) -> str | None:
    """The name of the language the text seems to be in, when it is clearly not English; else None."""
    letters = [char for char in text if char.isalpha()]
    if not letters:
        return None
    latin = sum("LATIN" in unicodedata.name(char, "") for char in letters)
    words = re.findall(r"[^\W\d_]+", text.lower())
    english_share = sum(word in ENGLISH_WORDS for word in words) / max(len(words), 1)
    if latin == len(letters) and (english_share >= 0.3 or (len(words) < 3 and text.isascii())):
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


def control_character(text: str) -> str | None:
    """The first control character (NUL, escape, ...) of the text, as U+XXXX; None if it has none. Line breaks and tabs
    are allowed: people type them. The others cannot be stored (NUL, on PostgreSQL) or mean nothing to a model."""
    for char in text:
        if unicodedata.category(char) == "Cc" and char not in "\n\t":
            return f"U+{ord(char):04X}"
    return None


def instruction_problem(text: str, count_tokens: Callable[[str], int] = estimate_tokens) -> str | None:
    """One line with a suggestion when the instruction would not work well as written; None when it is fine."""
    if not text.strip():
        return "Tell me what to change, for example “make it night”."
    language = non_english(text)
    if language is not None:
        return (f"That looks like {language}, but the model only understands English: please write the instruction "
                f"in English (for example “make it night”), or send /anyway to try it as it is.")
    tokens = count_tokens(text)
    if tokens > MAX_INSTRUCTION_TOKENS + 2:
        return (f"That instruction is too long for the model ({tokens - 2} tokens; it reads {MAX_INSTRUCTION_TOKENS}) "
                f"and the end would be ignored: please shorten it, or send /anyway to try it as it is.")
    return None
