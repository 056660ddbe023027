"""core.understanding: from what a person typed to the English the model gets, or a hint and nothing run."""

from __future__ import annotations

import pytest

from core.domain import Translation
from core.errors import ModelUnavailable
from core.understanding import (
    HeldBack,
    Understanding,
    mask_style_terms,
    unmask_style_terms,
)
from tests.support.translation import PhraseBookTranslator


def understanding(phrases: dict[str, str]) -> tuple[Understanding, PhraseBookTranslator]:
    translator = PhraseBookTranslator(phrases)
    return Understanding(translator), translator


def test_an_english_instruction_goes_through_untouched_and_costs_no_translation():
    subject, translator = understanding({})
    understood = subject.understand("  make it cyberpunk ")
    assert understood.english == "make it cyberpunk" and understood.translation is None
    assert translator.calls == []


def test_a_french_instruction_is_translated_and_keeps_the_persons_words():
    subject, translator = understanding({"rends la photo enneigée": "make the photo snowy"})
    understood = subject.understand("rends la photo enneigée")
    assert understood.english == "make the photo snowy"
    assert understood.translation == Translation("rends la photo enneigée", "French")
    assert translator.calls == [("rends la photo enneigée", "French")]


def test_style_words_travel_as_placeholders_and_come_back_as_written():
    subject, translator = understanding({"make it look like Z1, s'il vous plaît": "make it look like Z1, please"})
    understood = subject.understand("make it look like ukiyo-e, s'il vous plaît")
    assert understood.english == "make it look like ukiyo-e, please"
    assert translator.calls == [("make it look like Z1, s'il vous plaît", "French")]


def test_a_style_word_the_translator_dropped_is_added_back():
    masked, terms = mask_style_terms("peins-le comme Van Gogh en style noir")
    assert masked == "peins-le comme Z1 en style Z2" and terms == ["Van Gogh", "noir"]
    assert unmask_style_terms("paint it like Z1 in style", terms) == "paint it like Van Gogh in style, noir"


@pytest.mark.parametrize("returned", ["", "   ", "rends la photo enneigée", "Rends la photo enneigée."])
def test_an_empty_or_unchanged_translation_is_held_back_with_the_hint(returned):
    subject, _ = understanding({"rends la photo enneigée": returned})
    with pytest.raises(HeldBack, match="could not translate that from French.*/asis"):
        subject.understand("rends la photo enneigée")


@pytest.mark.parametrize("returned", ["^^^^^^^^xߤ\ufffd$$\ufffdwwww", "make the photo \ufffd\ufffd", "^^^^ ww $$ %% 12"])
def test_a_garbled_translation_is_held_back_with_the_hint(returned):
    # What a model gone astray writes (the tiny random one: symbols and bytes that decode to no character).
    subject, _ = understanding({"rends la photo enneigée": returned})
    with pytest.raises(HeldBack, match="could not translate that from French.*/asis"):
        subject.understand("rends la photo enneigée")


def test_a_translation_with_numbers_and_signs_still_goes_through():
    subject, _ = understanding({"rends-la 50% plus claire": "make it 50% brighter!"})
    assert subject.understand("rends-la 50% plus claire").english == "make it 50% brighter!"


def test_a_translator_that_cannot_load_holds_the_instruction_back_instead_of_failing():
    class Broken:
        def translate(self, text, source_language):
            raise ModelUnavailable("no weights here")

    with pytest.raises(HeldBack, match="could not translate"):
        Understanding(Broken()).understand("haz que sea de noche")


def test_length_is_checked_on_the_english_the_model_would_read():
    subject, _ = understanding({"fais-le très long": "make it " + "very " * 80 + "long"})
    with pytest.raises(HeldBack, match="In English .* too long for the model"):
        subject.understand("fais-le très long")


def test_without_a_translator_other_languages_are_held_back_as_before():
    with pytest.raises(HeldBack, match="looks like Spanish.*/anyway"):
        Understanding(None).understand("haz que sea de noche")
    with pytest.raises(HeldBack, match="Tell me what to change"):
        Understanding(None).understand("   ")
