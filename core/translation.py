"""Translating an instruction to English on this machine, with a translation model through transformers.

InstructPix2Pix reads English only. `TransformersTranslator` loads a sequence-to-sequence model on first use from the
same kinds of source as the editor (hub id, local folder) or builds one in code (`tiny` for tests, `full-random` for
benchmarks), translates one instruction at a time, and lets the model go after a while without use.

Three model families are understood, told apart by their vocabulary:
- M2M-100 (`facebook/m2m100_418M`, the default): the source is a `__fr__` token before the text, the target a forced
  first token `__en__`.
- NLLB-200 (`facebook/nllb-200-distilled-600M`): the same, with codes like `fra_Latn` / `eng_Latn`.
- Marian (`Helsinki-NLP/opus-mt-mul-en`, `opus-mt-fr-en`...): no language tokens; the model knows its pair.

On a CPU the linear layers run in int8 (`quantized_int8`), greedily; on a GPU in float16, with beams.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import threading
import warnings
from dataclasses import dataclass

import torch

from core.errors import ModelUnavailable
from core.load_retry import LoadRetry

log = logging.getLogger(__name__)

DEFAULT_TRANSLATION_MODEL = "facebook/m2m100_418M"
NO_TRANSLATION = "none"
TINY = "tiny"
FULL_RANDOM = "full-random"  # facebook/m2m100_418M's architecture, random weights
FULL_RANDOM_NLLB = "full-random-nllb"  # facebook/nllb-200-distilled-600M's architecture, random weights

# An instruction is a sentence: its English rarely needs more than 60 tokens, nor more than twice the tokens of the
# words it translates (plus a few). Longer output is a model going astray, and each token costs a decoder pass.
MAX_NEW_TOKENS = 96
# Beam search finds better wording than greedy decoding; on a GPU it costs little, on a CPU it triples the decoder's
# work, which the per-instruction budget (2 s) cannot afford.
GPU_BEAMS = 3
CPU_BEAMS = 1


def new_tokens_bound(source_tokens: int) -> int:
    return min(MAX_NEW_TOKENS, 2 * source_tokens + 8)


# Language names as core.hints reports them -> (M2M-100 code, NLLB-200 code).
LANGUAGE_CODES = {
    "English": ("en", "eng_Latn"),
    "Spanish": ("es", "spa_Latn"),
    "French": ("fr", "fra_Latn"),
    "German": ("de", "deu_Latn"),
    "Italian": ("it", "ita_Latn"),
    "Portuguese": ("pt", "por_Latn"),
    "Dutch": ("nl", "nld_Latn"),
    "Russian": ("ru", "rus_Cyrl"),
    "Ukrainian": ("uk", "ukr_Cyrl"),
    "Polish": ("pl", "pol_Latn"),
    "Turkish": ("tr", "tur_Latn"),
    "Indonesian": ("id", "ind_Latn"),
    "Vietnamese": ("vi", "vie_Latn"),
    "Japanese": ("ja", "jpn_Jpan"),
    "Chinese": ("zh", "zho_Hans"),
    "Korean": ("ko", "kor_Hang"),
    "Arabic": ("ar", "arb_Arab"),
    "Persian": ("fa", "pes_Arab"),
    "Hindi": ("hi", "hin_Deva"),
}


@dataclass
class _Loaded:
    model: torch.nn.Module
    tokenizer: object
    family: str  # "m2m100", "nllb" or "marian"


def language_token(family: str, language: str) -> str | None:
    """The token that names `language` to a model of `family`; None when the family uses none (or does not know it)."""
    codes = LANGUAGE_CODES.get(language)
    if codes is None or family == "marian":
        return None
    return f"__{codes[0]}__" if family == "m2m100" else codes[1]


def model_family(tokenizer) -> str:
    vocab = tokenizer.get_vocab()
    if "eng_Latn" in vocab:
        return "nllb"
    return "m2m100" if "__en__" in vocab else "marian"


class TransformersTranslator:
    """A `core.ports.Translator` over a transformers sequence-to-sequence model. Thread-safe; blocking.

    source: hub id or local folder of the model, or `tiny` / `full-random` / `full-random-nllb` (built in code,
        random weights).
    device: a torch device ("cpu", "cuda"...); float16 on CUDA, float32 elsewhere.
    idle_seconds: free the model after this long without a translation (it loads again on the next); None or 0
        keeps it.
    offline: never contact the hub; hub ids must already be in the local cache.
    new_tokens: for benchmarks: write exactly this many tokens, as long as a real translation (random weights
        would stop anywhere up to the limit). None: stop at the end of the sentence.
    int8: on a CPU, run the linear layers in int8 (dynamic quantization): decoding one token reads every weight of
        the decoder and the vocabulary projection, so a quarter of the bytes is most of the time saved (see
        docs/performance.md, Translation). False: float32.
    retry: how a failed load is remembered (core/load_retry.py: refused at once for a few minutes).
    """

    def __init__(self, source: str = DEFAULT_TRANSLATION_MODEL, *, device: str = "cpu",
                 idle_seconds: float | None = None, offline: bool = False, new_tokens: int | None = None,
                 int8: bool = True, retry: LoadRetry | None = None) -> None:
        self.source = source
        self.device = torch.device(device)
        self.int8 = int8 and self.device.type == "cpu"
        self.idle_seconds = idle_seconds
        self.offline = offline
        self.new_tokens = new_tokens
        self._lock = threading.Lock()
        self._retry = retry or LoadRetry()
        self._loaded: _Loaded | None = None
        self._idle_timer: threading.Timer | None = None

    @property
    def loaded(self) -> bool:
        return self._loaded is not None

    def translate(self, text: str, source_language: str) -> str:
        """The English of `text`, written in `source_language` (a name from LANGUAGE_CODES). A language the model
        does not know gives back the text unchanged, which the caller treats as "could not translate"."""
        with self._lock:
            self._cancel_idle_timer()
            loaded = self._loaded = self._loaded or self._retry.load(self._load)
            try:
                return self._generate(loaded, text, source_language)
            finally:
                self._start_idle_timer()

    def unload(self) -> None:
        """Free the model now (memory back to the system, or to the GPU)."""
        with self._lock:
            self._cancel_idle_timer()
            self._unload_locked()

    def _generate(self, loaded: _Loaded, text: str, source_language: str) -> str:
        output = self._output_ids(loaded, text, source_language)
        return text if output is None else loaded.tokenizer.decode(output, skip_special_tokens=True).strip()

    def _output_ids(self, loaded: _Loaded, text: str, source_language: str) -> list[int] | None:
        """The tokens the model writes for `text`; None when it does not know the language."""
        tokenizer, family = loaded.tokenizer, loaded.family
        source_token = language_token(family, source_language)
        target_token = language_token(family, "English")
        if family != "marian" and (source_token not in tokenizer.get_vocab()):
            return None
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        # Every family reads "[source language] text </s>" (Marian without the language).
        ids = ([tokenizer.convert_tokens_to_ids(source_token)] if source_token else []) + ids + [tokenizer.eos_token_id]
        options = {}
        if target_token:
            options["forced_bos_token_id"] = tokenizer.convert_tokens_to_ids(target_token)
        with torch.inference_mode():
            output = loaded.model.generate(
                torch.tensor([ids], device=self.device),
                max_new_tokens=self.new_tokens or new_tokens_bound(len(ids)),
                min_new_tokens=self.new_tokens or 0,
                num_beams=GPU_BEAMS if self.device.type == "cuda" else CPU_BEAMS,
                do_sample=False,
                use_cache=True,  # each new token attends to the kept keys and values, not the whole output again
                **options,
            )
        return output[0].tolist()

    def _load(self) -> _Loaded:
        log.info("loading translation model %s on %s", self.source, self.device)
        if self.source == TINY:
            model, tokenizer = build_tiny_translation_model()
        elif self.source in (FULL_RANDOM, FULL_RANDOM_NLLB):
            model, tokenizer = build_full_random_model(vocab_size=NLLB_VOCAB if self.source == FULL_RANDOM_NLLB
                                                       else M2M100_VOCAB)
        else:
            model, tokenizer = self._from_pretrained()
        dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        model = model.to(device=self.device, dtype=dtype).eval()
        if self.int8:
            model = quantized_int8(model)
            release_freed_memory()  # the float32 weights the int8 ones replaced
        return _Loaded(model, tokenizer, model_family(tokenizer))

    def _from_pretrained(self):
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(self.source, local_files_only=self.offline)
            model = AutoModelForSeq2SeqLM.from_pretrained(self.source, local_files_only=self.offline)
        except Exception as error:  # hub, network, file and missing-backend errors: all mean "cannot have it"
            log.warning("Could not load translation model %s: %s", self.source, error)
            raise ModelUnavailable(
                f"Could not load the translation model {self.source}; check EDITBOT_TRANSLATION_MODEL (a hub id or "
                "a local folder) and the network, or set it to none to hold non-English instructions back instead."
            ) from error
        return model, tokenizer

    def _start_idle_timer(self) -> None:
        if self.idle_seconds:
            self._idle_timer = threading.Timer(self.idle_seconds, self._unload_when_idle)
            self._idle_timer.daemon = True
            self._idle_timer.start()

    def _cancel_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _unload_when_idle(self) -> None:
        # A translation that started meanwhile holds the lock and cancels this timer; it waits, then finds it reset.
        with self._lock:
            if self._idle_timer is not None and self._idle_timer is threading.current_thread():
                self._idle_timer = None
                self._unload_locked()

    def _unload_locked(self) -> None:
        if self._loaded is None:
            return
        log.info("unloading translation model %s (idle)", self.source)
        self._loaded = None
        release_freed_memory()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


def release_freed_memory() -> None:
    """Hand memory freed by dropped weights back to the system. glibc keeps freed blocks of the size of a layer's
    weights for reuse, so without this a process that let a model go (or its float32 weights) keeps their RSS."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        pass


def quantized_int8(model: torch.nn.Module) -> torch.nn.Module:
    """The model with its linear layers (the vocabulary projection included) in int8, in place; activations are
    quantized on the fly. torch marks this eager API as deprecated in favour of torchao, which is not a dependency;
    without it (a future torch), the model stays float32."""
    try:
        from torch.ao.quantization import quantize_dynamic
    except ImportError:
        log.warning("this torch has no dynamic quantization: translating in float32")
        return model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)


# --- models built in code -------------------------------------------------------------------------------------


def build_tokenizer():
    """A byte-level tokenizer knowing every M2M-100 language token: encodes any text, like the real one does, with
    a tiny vocabulary. Special tokens sit where M2M-100 has them (<s> 0, <pad> 1, </s> 2, <unk> 3)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    vocab = {token: index for index, token in enumerate(specials)}
    for symbol in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[symbol] = len(vocab)
    language_tokens = [f"__{m2m}__" for m2m, _ in LANGUAGE_CODES.values()]
    for token in language_tokens:
        vocab[token] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", pad_token="<pad>",
                                        eos_token="</s>", unk_token="<unk>")
    tokenizer.add_special_tokens({"additional_special_tokens": language_tokens})
    return tokenizer


def _m2m100(tokenizer, seed: int, vocab_size: int, **shape):
    from transformers import M2M100Config, M2M100ForConditionalGeneration

    config = M2M100Config(vocab_size=vocab_size, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                          decoder_start_token_id=2, max_position_embeddings=1024, **shape)
    with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's random state
        torch.manual_seed(seed)
        model = M2M100ForConditionalGeneration(config)
    return model.eval(), tokenizer


def build_tiny_translation_model(seed: int = 0):
    """A tiny random M2M-100 (the default model's class) and its tokenizer: a few thousand weights, built in well
    under a second, deterministic for a seed. Its English is noise; it exercises the real loading and generation."""
    tokenizer = build_tokenizer()
    return _m2m100(tokenizer, seed, len(tokenizer), d_model=16, encoder_layers=1, decoder_layers=1,
                   encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32)


# facebook/m2m100_418M's shape; NLLB-200-distilled-600M is the same network with a 256,206-token vocabulary.
M2M100_418M_SHAPE = dict(d_model=1024, encoder_layers=12, decoder_layers=12, encoder_attention_heads=16,
                         decoder_attention_heads=16, encoder_ffn_dim=4096, decoder_ffn_dim=4096, scale_embedding=True)
M2M100_VOCAB = 128112
NLLB_VOCAB = 256206


def build_full_random_model(seed: int = 0, vocab_size: int = M2M100_VOCAB):
    """The real M2M-100 418M architecture with random weights, for benchmarks (a network's speed does not depend on
    its weights). `vocab_size=NLLB_VOCAB` gives NLLB-200-distilled-600M's size. About 2 GiB in float32."""
    return _m2m100(build_tokenizer(), seed, vocab_size, **M2M100_418M_SHAPE)
