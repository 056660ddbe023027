"""core.translation on the tiny random M2M-100 built in code: the real loading, encoding and generation paths."""

from __future__ import annotations

import time

import pytest
import torch

from core.errors import ModelUnavailable
from core.load_retry import LoadRetry
from core.translation import (
    MAX_NEW_TOKENS,
    TINY,
    TransformersTranslator,
    build_tiny_translation_model,
    language_token,
    model_family,
    new_tokens_bound,
)

FEW = 4  # English tokens each translation writes: the tiny model's words are noise, fewer make the tests quicker


class Vocab:
    def __init__(self, *tokens: str) -> None:
        self.tokens = {token: index for index, token in enumerate(tokens)}

    def get_vocab(self) -> dict[str, int]:
        return self.tokens


def test_the_family_comes_from_the_vocabulary_and_names_the_languages_its_way():
    assert model_family(Vocab("<s>", "__en__", "__fr__")) == "m2m100"
    assert model_family(Vocab("<s>", "eng_Latn", "fra_Latn")) == "nllb"
    assert model_family(Vocab("<s>", "▁la")) == "marian"
    assert language_token("m2m100", "French") == "__fr__"
    assert language_token("nllb", "Chinese") == "zho_Hans"
    assert language_token("marian", "French") is None
    assert language_token("m2m100", "Klingon") is None


def test_the_model_loads_on_first_use_only():
    translator = TransformersTranslator(TINY, new_tokens=FEW)
    assert not translator.loaded
    english = translator.translate("rends la photo enneigée", "French")
    assert isinstance(english, str) and translator.loaded


def test_the_model_reads_source_language_text_end_and_is_forced_to_write_english():
    translator = TransformersTranslator(TINY, new_tokens=FEW)
    translator.translate("warm up", "French")
    model = translator._loaded.model
    tokenizer = translator._loaded.tokenizer
    seen = {}
    real_generate = model.generate

    def spy(input_ids, **options):
        seen["ids"], seen["options"] = input_ids[0].tolist(), options
        return real_generate(input_ids, **options)

    model.generate = spy
    translator.translate("fais pleuvoir", "French")
    ids = seen["ids"]
    assert ids[0] == tokenizer.convert_tokens_to_ids("__fr__") and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids[1:-1]) == "fais pleuvoir"
    assert seen["options"]["forced_bos_token_id"] == tokenizer.convert_tokens_to_ids("__en__")


def test_a_language_the_model_does_not_know_comes_back_unchanged():
    assert TransformersTranslator(TINY, new_tokens=FEW).translate("qapla'", "Klingon") == "qapla'"


def test_a_saved_model_folder_loads_through_transformers_and_translates_like_the_model_built_in_code(tmp_path):
    model, tokenizer = build_tiny_translation_model()
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    from_folder = TransformersTranslator(str(tmp_path), offline=True, new_tokens=FEW)
    built = TransformersTranslator(TINY, new_tokens=FEW)
    assert from_folder.translate("haz que llueva", "Spanish") == built.translate("haz que llueva", "Spanish")


def test_a_model_that_cannot_be_had_is_one_clear_line(tmp_path):
    with pytest.raises(ModelUnavailable, match="EDITBOT_TRANSLATION_MODEL"):
        TransformersTranslator(str(tmp_path / "missing"), offline=True).translate("fais pleuvoir", "French")


def test_an_idle_model_is_let_go_and_comes_back_when_needed():
    translator = TransformersTranslator(TINY, idle_seconds=0.2, new_tokens=FEW)
    first = translator.translate("fais pleuvoir", "French")
    deadline = time.monotonic() + 10
    while translator.loaded and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not translator.loaded
    assert translator.translate("fais pleuvoir", "French") == first and translator.loaded
    translator.unload()
    assert not translator.loaded


def test_the_benchmark_offers_the_random_builds_the_translator_knows():
    from core.translation import FULL_RANDOM, FULL_RANDOM_NLLB
    from core.translation_bench import MODELS

    assert set(MODELS) == {FULL_RANDOM, FULL_RANDOM_NLLB}


def test_on_a_cpu_the_linear_layers_run_in_int8_unless_turned_off():
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

    quantized = TransformersTranslator(TINY, new_tokens=FEW)
    assert quantized.translate("fais pleuvoir", "French")
    assert isinstance(quantized._loaded.model.lm_head, Int8Linear)
    plain = TransformersTranslator(TINY, new_tokens=FEW, int8=False)
    plain.translate("fais pleuvoir", "French")
    assert type(plain._loaded.model.lm_head) is torch.nn.Linear
    assert not TransformersTranslator(TINY, device="cuda").int8  # a GPU runs float16


def test_a_translation_is_written_with_the_kept_keys_and_values_and_bounded_by_the_input_length():
    translator = TransformersTranslator(TINY)
    translator.translate("warm up", "French")
    seen = {}
    real_generate = translator._loaded.model.generate

    def spy(input_ids, **options):
        seen["ids"], seen["options"] = input_ids[0].tolist(), options
        return real_generate(input_ids, **options)

    translator._loaded.model.generate = spy
    translator.translate("fais pleuvoir", "French")
    assert seen["options"]["use_cache"] and seen["options"]["num_beams"] == 1
    assert seen["options"]["max_new_tokens"] == new_tokens_bound(len(seen["ids"])) == 2 * len(seen["ids"]) + 8
    assert new_tokens_bound(200) == MAX_NEW_TOKENS


def test_a_model_that_could_not_be_had_is_refused_at_once_for_a_while_then_tried_again(tmp_path):
    """Without the hub each load waits out its retries (about 45 s): people writing meanwhile get the answer at once."""
    now = [0.0]
    folder = tmp_path / "model"
    translator = TransformersTranslator(str(folder), offline=True, new_tokens=FEW,
                                        retry=LoadRetry(retry_after=300, clock=lambda: now[0]))
    with pytest.raises(ModelUnavailable, match="EDITBOT_TRANSLATION_MODEL"):
        translator.translate("fais pleuvoir", "French")
    model, tokenizer = build_tiny_translation_model()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    now[0] = 299
    with pytest.raises(ModelUnavailable, match="EDITBOT_TRANSLATION_MODEL"):  # not loaded again yet
        translator.translate("fais pleuvoir", "French")
    now[0] = 300
    assert translator.translate("fais pleuvoir", "French") and translator.loaded
