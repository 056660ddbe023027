"""Benchmark: what translating an instruction costs, in time per instruction and in memory.

    editbot bench-translation [--model full-random|full-random-nllb] [--device cpu] [--tokens 16] [--repeats 3]
                              [--threads N] [--float32] [--check-int8]
    (also python -m core.translation_bench)

Builds the real architecture with random weights (speed does not depend on the weights): `full-random` is
facebook/m2m100_418M (the default), `full-random-nllb` facebook/nllb-200-distilled-600M. Random weights never stop on
their own, so each translation writes exactly --tokens tokens, as long as the English of a typical instruction.
Prints the first translation (load included), seconds (and CPU seconds) per instruction after it, the RSS (and on CUDA the GPU memory)
the model added, and what an English instruction costs (detection only: no translation). On a CPU the linear layers
run in int8, as the bot runs them (--float32: the float32 model; --check-int8 also builds that one and counts the
tokens both write the same). Figures on a shared machine
are noisy; there, --threads 1 avoids the CPU threads of one matrix product waiting for each other (torch's default
is one per core, and a core shared with other work stalls them all).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

# The random-weight builds of core.translation (named here so that `editbot --help` does not import torch).
MODELS = ("full-random", "full-random-nllb")

INSTRUCTIONS = (
    ("rends la photo enneigée", "French"),
    ("haz que sea de noche y añade nieve", "Spanish"),
    ("füge einen roten Hut hinzu", "German"),
)
ENGLISH = "make it look like a Van Gogh painting"


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", choices=MODELS, default=MODELS[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--tokens", type=int, default=16, help="English tokens written per instruction (default 16)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds over the instructions (default 3)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's, one per core)")
    parser.add_argument("--float32", action="store_true",
                        help="on a CPU, float32 weights instead of the int8 linear layers the bot runs")
    parser.add_argument("--check-int8", action="store_true",
                        help="also build the float32 model and count the tokens int8 writes the same (CPU)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run_benchmark(model: str = MODELS[0], device: str = "cpu", tokens: int = 16, repeats: int = 3,
                  as_json: bool = False, threads: int | None = None, float32: bool = False,
                  check_int8: bool = False) -> dict:
    import os

    import psutil  # installed with accelerate
    import torch

    from core.translation import TransformersTranslator
    from core.understanding import Understanding

    if threads:
        torch.set_num_threads(threads)
    process = psutil.Process()
    cuda = torch.device(device).type == "cuda"
    load_before = os.getloadavg()[0]
    rss_before = process.memory_info().rss
    translator = TransformersTranslator(model, device=device, new_tokens=tokens, int8=not float32)
    counted = CountedTranslator(translator)
    understanding = Understanding(counted)

    start = time.perf_counter()
    translator.translate(*INSTRUCTIONS[0])
    first = time.perf_counter() - start
    rss_added = process.memory_info().rss - rss_before

    timings, cpu_timings = [], []
    for _ in range(max(repeats, 1)):
        for text, language in INSTRUCTIONS:
            start, cpu_start = time.perf_counter(), time.process_time()
            translator.translate(text, language)
            if cuda:
                torch.cuda.synchronize()
            timings.append(time.perf_counter() - start)
            cpu_timings.append(time.process_time() - cpu_start)

    understanding.understand(ENGLISH)  # the detector's one-off start-up is not an instruction's cost
    calls_before_english = counted.calls
    start = time.perf_counter()
    understanding.understand(ENGLISH)
    english = time.perf_counter() - start

    result = {
        "model": model,
        "device": device,
        "weights": "int8 linear layers" if translator.int8 else ("float16" if cuda else "float32"),
        "threads": torch.get_num_threads(),
        # Other work on the machine: the wall times wait for it, the CPU times much less.
        "load_average": f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after",
        "parameters_millions": round(parameter_count(translator._loaded.model) / 1e6),
        "new_tokens": tokens,
        "first_translation_s": round(first, 2),
        "seconds_per_instruction": round(statistics.median(timings), 3),
        "fastest_s": round(min(timings), 3),
        # CPU time the process spent per instruction: what the wall time is on a machine with nothing else to do.
        "cpu_seconds_per_instruction": round(statistics.median(cpu_timings), 3),
        "rss_added_mib": round(rss_added / 2**20),
        "gpu_allocated_mib": round(torch.cuda.max_memory_allocated() / 2**20) if cuda else None,
        "english_instruction_s": round(english, 4),
        # Whether the English instruction started the translator: it must not (nothing is added for English).
        "english_translated": counted.calls != calls_before_english,
    }
    if check_int8 and translator.int8:
        result["int8_tokens_as_float32"] = same_tokens_as_float32(translator, model, tokens)
    if as_json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")
    return result


def parameter_count(model) -> int:
    """The model's parameters, int8 linear layers included (torch no longer lists them as parameters); the vocabulary
    projection shares the embeddings' weights, so it is counted once, like in float32."""
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

    count = sum(parameter.numel() for parameter in model.parameters())
    for module in model.modules():
        if isinstance(module, Int8Linear) and module is not model.get_output_embeddings():
            count += module.weight().numel() + (module.bias().numel() if module.bias() is not None else 0)
    return count


class CountedTranslator:
    """The translator, counting the instructions it is asked to translate."""

    def __init__(self, translator) -> None:
        self.translator = translator
        self.calls = 0

    def translate(self, text: str, source_language: str) -> str:
        self.calls += 1
        return self.translator.translate(text, source_language)


def same_tokens_as_float32(translator, model: str, tokens: int) -> str:
    """How many of the English tokens the int8 model wrote the float32 one writes too, position by position, over
    the benchmark's instructions (random weights: a like-for-like check of the arithmetic, not of the wording)."""
    from core.translation import TransformersTranslator

    reference = TransformersTranslator(model, new_tokens=tokens, int8=False)
    same = total = 0
    for text, language in INSTRUCTIONS:
        reference.translate(text, language)  # loads it
        ours, theirs = (t._output_ids(t._loaded, text, language) for t in (translator, reference))
        same += sum(a == b for a, b in zip(ours, theirs))
        total += max(len(ours), len(theirs))
    reference.unload()
    return f"{same} of {total}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_options(parser)
    args = parser.parse_args()
    run_benchmark(args.model, args.device, args.tokens, args.repeats, args.json, args.threads, args.float32,
                  args.check_int8)


if __name__ == "__main__":
    main()
