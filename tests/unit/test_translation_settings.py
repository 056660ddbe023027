"""EDITBOT_TRANSLATION_* settings: which translator the bootstrap wires into the engine, and where it runs."""

from __future__ import annotations

from bot.bootstrap import build_translator
from core.config import Settings
from core.translation import DEFAULT_TRANSLATION_MODEL, TransformersTranslator


def test_the_default_translator_is_the_chosen_model_loaded_lazily_and_freed_when_idle(monkeypatch):
    monkeypatch.delenv("EDITBOT_TRANSLATION_MODEL", raising=False)
    monkeypatch.setenv("EDITBOT_DEVICE", "cpu")
    translator = build_translator(Settings())
    assert isinstance(translator, TransformersTranslator)
    assert translator.source == DEFAULT_TRANSLATION_MODEL == Settings().translation.translation_model
    assert str(translator.device) == "cpu" and translator.idle_seconds == 600 and not translator.loaded
    assert translator.int8


def test_none_keeps_the_hold_back_and_settings_choose_model_device_and_idle_time(monkeypatch):
    monkeypatch.setenv("EDITBOT_TRANSLATION_MODEL", "none")
    assert build_translator(Settings()) is None
    monkeypatch.setenv("EDITBOT_TRANSLATION_MODEL", "tiny")
    monkeypatch.setenv("EDITBOT_TRANSLATION_DEVICE", "cpu")
    monkeypatch.setenv("EDITBOT_DEVICE", "auto")
    monkeypatch.setenv("EDITBOT_TRANSLATION_IDLE_SECONDS", "0")
    monkeypatch.setenv("EDITBOT_OFFLINE", "true")
    monkeypatch.setenv("EDITBOT_TRANSLATION_INT8", "false")
    translator = build_translator(Settings())
    assert (translator.source, str(translator.device), translator.idle_seconds, translator.offline,
            translator.int8) == ("tiny", "cpu", 0, True, False)


def test_the_tiny_editor_brings_the_tiny_translator_and_segmenter_unless_others_are_set(monkeypatch):
    """README's try-it set-up (EDITBOT_MODEL=tiny) downloads nothing for any feature."""
    from bot.bootstrap import build_segmenter

    for name in ("EDITBOT_TRANSLATION_MODEL", "EDITBOT_SEGMENTATION_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EDITBOT_MODEL", "tiny")
    monkeypatch.setenv("EDITBOT_DEVICE", "cpu")
    assert build_translator(Settings()).source == "tiny"
    assert build_segmenter(Settings()).source == "tiny"
    monkeypatch.setenv("EDITBOT_TRANSLATION_MODEL", "none")
    monkeypatch.setenv("EDITBOT_SEGMENTATION_MODEL", "CIDAS/clipseg-rd64-refined")
    assert build_translator(Settings()) is None
    assert build_segmenter(Settings()).source == "CIDAS/clipseg-rd64-refined"
