"""The GPU measurement, unattended: `scripts/gpu-bench.sh` runs it on a CUDA machine and keeps its one JSON file.

    python -m core.editing.gpu_bench --out gpu-bench.json [--size 512] [--steps 20] [--repeats 3]

On the `full-random` model (the real SD1.5 InstructPix2Pix architecture with random weights):

1. the paired bench (core.editing.bench) in float16;
2. float16 against float32 on the same edit: the largest pixel difference (0..1 scale) and whether the VAE gave
   any NaN (the SD1.5 VAE is known to overflow in float16 on some inputs);
3. batched throughput: `edit_many` with 1, 4 and 8 jobs, edits per second;
4. the paired bench again with torch.compile (EDITBOT_COMPILE), image guidance 1.5; its compile time is in
   `part_seconds`.

Targets reported against: 0.3 s per edit or better, and 6 edits per second batched.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from pathlib import Path

import numpy as np
import torch

from core.domain import EditParams
from core.editing.bench import (
    INSTRUCTION,
    SEED,
    TEXT_GUIDANCE,
    run_benchmark,
    sample_photo,
)
from core.editing.pix2pix import Pix2PixEditor
from core.editing.sources import FULL_RANDOM, load_pipeline

TARGET_SECONDS_PER_EDIT = 0.3
TARGET_BATCHED_EDITS_PER_SECOND = 6.0
BATCH_SIZES = (1, 4, 8)


def float16_check(size: int, steps: int, *, model: str = FULL_RANDOM, device: str = "cuda") -> dict:
    """The same edit in float32 and float16 (bfloat16 on CPU, which refuses float16): the largest pixel difference
    and the NaN count of the half-precision output."""
    half_dtype = "float16" if device.startswith("cuda") else "bfloat16"
    params = EditParams(text_guidance=TEXT_GUIDANCE, image_guidance=1.5, steps=steps, seed=SEED)
    photo = sample_photo(size)
    outputs = {}
    for dtype in ("float32", half_dtype):
        editor = Pix2PixEditor(load_pipeline(model, device=device, dtype=dtype), max_side=size, safety_checker=False)
        outputs[dtype] = editor.edit_to_array(photo, INSTRUCTION, params)[0]
        del editor
        _free_memory()
    half = outputs[half_dtype]
    return {
        "half_dtype": half_dtype,
        "max_pixel_diff_half_vs_float32": float(np.nanmax(np.abs(half - outputs["float32"]))),
        "nan_pixels_half": int(np.isnan(half).sum()),
    }


def batched_throughput(size: int, steps: int, *, model: str = FULL_RANDOM, device: str = "cuda",
                       dtype: str = "auto", batch_sizes=BATCH_SIZES, repeats: int = 3) -> list[dict]:
    """Edits per second with `edit_many` over n different seeds of one photo and instruction (median of repeats,
    after one warm-up per batch size)."""
    editor = Pix2PixEditor(load_pipeline(model, device=device, dtype=dtype), max_side=size, safety_checker=False)
    photo = sample_photo(size)
    results = []
    for count in batch_sizes:
        requests = [(photo, INSTRUCTION, EditParams(text_guidance=TEXT_GUIDANCE, image_guidance=1.5, steps=steps,
                                                     seed=SEED + n)) for n in range(count)]
        editor.edit_many(requests)
        timings = []
        for _ in range(repeats):
            _synchronize(device)
            started = time.perf_counter()
            editor.edit_many(requests)
            _synchronize(device)
            timings.append(time.perf_counter() - started)
        seconds = float(np.median(timings))
        results.append({"jobs": count, "seconds": round(seconds, 3), "edits_per_s": round(count / seconds, 2)})
    del editor
    _free_memory()
    return results


def run(out: Path, *, size: int = 512, steps: int = 20, repeats: int = 3, model: str = FULL_RANDOM,
        device: str = "cuda") -> dict:
    """Everything in the module docstring, written to `out` as one JSON object (rewritten after each part, so a
    run cut short still leaves what it measured)."""
    report: dict = {"torch": torch.__version__, "size": size, "steps": steps, "targets": {
        "seconds_per_edit": TARGET_SECONDS_PER_EDIT, "batched_edits_per_s": TARGET_BATCHED_EDITS_PER_SECOND}}
    if torch.cuda.is_available():
        report["gpu"] = torch.cuda.get_device_name()
    # The compiled bench runs last: its compile time is the one part that is hard to predict, and a run stopped by
    # the time limit then still holds every other figure. It times image guidance 1.5 only, one compile.
    parts = {
        "bench_float16": lambda: run_benchmark(device=device, size=size, steps=steps, repeats=repeats, model=model),
        "float16_vs_float32": lambda: float16_check(size, steps, model=model, device=device),
        "batched": lambda: batched_throughput(size, steps, model=model, device=device),
        "bench_float16_compiled": lambda: run_benchmark(device=device, size=size, steps=steps, repeats=repeats,
                                                        model=model, compile=True, image_guidance=(1.5,)),
    }
    for name, part in parts.items():
        started = time.perf_counter()
        try:
            report[name] = part()
        except Exception as error:  # one failing part must not lose the others' figures
            report[name] = {"error": f"{type(error).__name__}: {error}"}
        report.setdefault("part_seconds", {})[name] = round(time.perf_counter() - started, 1)
        _free_memory()
        out.write_text(json.dumps(report, indent=2))
    return report


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("gpu-bench.json"), help="the JSON file to write")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="paired rounds of the bench (default 3)")
    parser.add_argument("--model", default=FULL_RANDOM, help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cuda", help=argparse.SUPPRESS)
    args = parser.parse_args()
    run(args.out, size=args.size, steps=args.steps, repeats=args.repeats, model=args.model, device=args.device)


if __name__ == "__main__":
    main()
