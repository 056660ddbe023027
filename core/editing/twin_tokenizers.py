"""Tokenizers built in code for the tiny model twins (no hub): a T5-style one for FLUX.1 Kontext and a byte-level
Qwen2-style one (with Qwen's chat and vision tokens) for FLUX.2 [klein] and Qwen-Image-Edit.

Small vocabularies, real tokenizer classes: the pipelines call them exactly as they call the released ones.
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""The shape of Qwen's ChatML template (the released tokenizers carry a longer one with tool calls)."""


def build_t5_tokenizer() -> PreTrainedTokenizerFast:
    """A T5-like tokenizer: <pad>=0, </s>=1, <unk>=2, then one piece per printable ASCII character (Unigram, as
    T5's SentencePiece model), appending </s> like T5 does."""
    from tokenizers import processors

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [(chr(code), -1.0) for code in range(32, 127)] + [("▁", -1.0)]
    tokenizer = Tokenizer(models.Unigram(pieces, unk_id=2))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=512
    )


def build_qwen_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer over the 256 byte symbols plus Qwen's special tokens (ids after the bytes),
    padding with <|endoftext|> on the right and carrying a ChatML chat template, as Qwen2's tokenizer does."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {symbol: index for index, symbol in enumerate(alphabet)}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(list(QWEN_SPECIAL_TOKENS))
    built = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=32768,
        padding_side="right",
    )
    built.chat_template = QWEN_CHAT_TEMPLATE
    return built
