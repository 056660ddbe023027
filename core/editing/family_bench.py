"""Benchmark of one family's editor against its stock diffusers pipeline (`editbot bench --family NAME`).

    editbot bench --family flux2-klein [--model tiny|full-random] [--size 256] [--steps 2] [--dtype bfloat16]

`tiny` (default): the family's tiny random twin, on CPU in seconds: checks the plumbing and our overhead.
`full-random`: the real architecture with random weights where it fits 24 GB (FLUX.2 [klein] 4B in bfloat16, about
16 GB; the speed of a network does not depend on its weights); on a CUDA machine the same command gives the
real-size figure. Prints seconds per edit for stock, our editor, and our editor rendering two seeds in one call
(per picture), with the largest pixel difference from the stock output (0..1 scale).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch

from core.benchstats import MachineLoad
from core.editing.bench import _max_diff, _measure, sample_photo
from core.editing.families import family_named
from core.editing.loading import build_editor, load_family_pipeline
from core.editing.sources import FULL_RANDOM, TINY, resolve_device

INSTRUCTION = "make it look like a watercolour painting"
SEED = 1234


def run_family_benchmark(
    family_name: str,
    *,
    model: str = TINY,
    device: str = "auto",
    dtype: str = "auto",
    size: int | None = None,
    steps: int | None = None,
    as_json: bool = False,
) -> dict:
    """Time stock vs our editor for a family and print the figures (a table, or one JSON object)."""
    family = family_named(family_name)
    torch_device = resolve_device(device)
    size = size or (64 if model == TINY else 256)
    if model == FULL_RANDOM and dtype == "auto":
        dtype = family.dtype  # the real size in float32 would not fit (FLUX.2 klein 4B: 32 GB)
    steps = steps or (2 if torch_device.type == "cpu" else family.defaults().steps)
    started = time.perf_counter()
    pipeline = load_family_pipeline(family.name, model, device=str(torch_device), dtype=dtype)
    build_seconds = time.perf_counter() - started
    options = {"auto_resize": False} if family.name == "kontext" else {}
    editor = build_editor(family.name, pipeline, max_side=size, **options)
    photo = sample_photo(size)
    params = family.with_value(family.with_value(family.defaults(), "steps", steps), "seed", SEED)
    width, height = editor.working_size(photo.size)
    stock_arguments = {**editor.pipeline_arguments(params), **editor.size_arguments(width, height)}

    def stock() -> np.ndarray:
        image = [photo] if family.name == "qwen-edit" else photo
        return pipeline(prompt=INSTRUCTION, image=image, num_inference_steps=steps,
                        generator=torch.Generator().manual_seed(SEED), output_type="np", **stock_arguments).images[0]

    def ours() -> np.ndarray:
        return editor.edit_to_array(photo, INSTRUCTION, params)[0]

    def two_seeds() -> np.ndarray:
        results = editor.edit_batch(photo, INSTRUCTION, [params, params.with_seed(SEED + 1)])
        return np.asarray(results[0].image, dtype=np.float32) / 255

    figures = {"family": family.name, "model": model, "device": str(torch_device), "dtype": str(pipeline.dtype),
               "size": f"{width}x{height}", "steps": steps, "threads": torch.get_num_threads(),
               "build_seconds": round(build_seconds, 1), "cases": []}
    reference = None
    with MachineLoad() as load:
        for name, run, pictures in (("stock", stock, 1), ("ours", ours, 1),
                                    ("ours, 2 seeds in one call", two_seeds, 2)):
            seconds, memory, output = _measure(run, torch_device)
            reference = output if reference is None else reference
            figures["cases"].append({
                "case": name, "seconds_per_picture": round(seconds / pictures, 3), "peak_memory_mib": round(memory),
                "max_pixel_diff_vs_stock": None if name == "stock" else float(f"{_max_diff(output, reference):.3g}"),
            })
    figures["machine"] = load.figures()
    if as_json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"{figures['family']} ({model}) · {figures['device']} {figures['dtype']} · {figures['size']} · "
              f"{steps} steps · {figures['threads']} threads · built in {figures['build_seconds']} s")
        print(f"{'case':<28}{'s/picture':>11}{'peak MiB':>10}{'max diff':>11}")
        for case in figures["cases"]:
            diff = "-" if case["max_pixel_diff_vs_stock"] is None else f"{case['max_pixel_diff_vs_stock']:.3g}"
            print(f"{case['case']:<28}{case['seconds_per_picture']:>11.2f}{case['peak_memory_mib']:>10}{diff:>11}")
        machine = figures["machine"]
        print(f"others' CPU share {machine['others_cpu_share']}, load average {machine['load_average_before']} "
              f"before, {machine['load_average_after']} after")
    if figures["machine"]["warning"]:
        print(figures["machine"]["warning"], file=sys.stderr)
    return figures

