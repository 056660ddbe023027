"""A translator for engine tests: a phrase book, so a test knows exactly what English the model must get."""

from __future__ import annotations


class PhraseBookTranslator:
    """Translates the phrases it knows (placeholders such as "Z1" pass through, as a real model copies them);
    anything else comes back unchanged, which the engine treats as "could not translate". Records every call."""

    def __init__(self, phrases: dict[str, str]) -> None:
        self.phrases = phrases
        self.calls: list[tuple[str, str]] = []

    def translate(self, text: str, source_language: str) -> str:
        self.calls.append((text, source_language))
        return self.phrases.get(text, text)
