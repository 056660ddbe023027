"""Benchmark: our editor against the stock diffusers pipeline, in one process, on the same inputs.

    python -m core.editing.bench [--json] [--no-fast] [--device cpu] [--size 256] [--steps 4] [--repeats 5]

Builds the `full-random` model (the real SD1.5 InstructPix2Pix architecture with random weights: speed does not
depend on the weights), warms each path up once, then runs every case once per round, stock included, and pairs
each of our cases with the stock run of its round (core.benchstats). Prints, per case, the median seconds per edit,
the median of the per-pair speed-ups over stock with its interquartile range, peak memory and the largest pixel
difference from the stock output (0..1 scale), and the share of the CPU other processes took meanwhile.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
import torch
from PIL import Image

from core.benchstats import (
    MachineLoad,
    paired_summary,
    peak_memory_mib,
    reset_peak_memory,
    round_order,
)
from core.domain import EditParams
from core.editing.bench_options import DEFAULT_REPEATS, add_options
from core.editing.pix2pix import Pix2PixEditor
from core.editing.sources import FULL_RANDOM, load_pipeline, resolve_device

INSTRUCTION = "make it look like a watercolour painting"
TEXT_GUIDANCE = 7.5
SEED = 1234


def run_benchmark(
    *,
    device: str = "auto",
    size: int | None = None,
    steps: int | None = None,
    image_guidance: Sequence[float] = (1.5, 1.0),
    fast: bool = True,
    repeats: int = DEFAULT_REPEATS,
    as_json: bool = False,
    model: str = FULL_RANDOM,
    dtype: str = "auto",
    compile: bool = False,
    threads: int | None = None,
) -> dict:
    """Time stock vs our editor (exact, cached retry and, when `fast`, fast mode) in interleaved pairs.

    size/steps default to 256 px and 4 steps on CPU, 512 px and 20 steps on CUDA. repeats: rounds; each round runs
    every case once, stock included (the order reverses every other round, so slow drift hits both sides alike),
    and each of our cases is paired with the stock run of its round and guidance. A case's figure is the median of
    its per-pair speed-ups with their interquartile range, and its median seconds. Prints a table, or one JSON
    object when as_json; returns the same figures as a dict. `model`: `full-random` (default) or `tiny` (tests).
    dtype: as EDITBOT_DTYPE (auto: float16 on CUDA); compile: torch.compile our editors' UNet (CUDA only).
    threads: torch's CPU threads for every case, stock included (as EDITBOT_THREADS; None: torch's default).
    """
    if threads:
        torch.set_num_threads(threads)
    torch_device = resolve_device(device)
    on_cuda = torch_device.type == "cuda"
    size = size or (512 if on_cuda else 256)
    steps = steps or (20 if on_cuda else 4)
    pipeline = load_pipeline(model, device=str(torch_device), dtype=dtype)
    photo = sample_photo(size)
    exact = Pix2PixEditor(pipeline, max_side=size, safety_checker=False, compile=compile)

    def stock(guidance: float) -> np.ndarray:
        return pipeline(
            INSTRUCTION,
            image=photo,
            num_inference_steps=steps,
            guidance_scale=TEXT_GUIDANCE,
            image_guidance_scale=guidance,
            generator=torch.Generator().manual_seed(SEED),
            output_type="np",
        ).images[0]

    def ours(editor: Pix2PixEditor, guidance: float, *, cached: bool = False) -> np.ndarray:
        if not cached:
            editor.clear_caches()
        params = EditParams(text_guidance=TEXT_GUIDANCE, image_guidance=guidance, steps=steps, seed=SEED)
        return editor.edit_to_array(photo, INSTRUCTION, params)[0]

    cases: list[tuple[str, Callable[[], np.ndarray], float]] = []  # (name, run, image guidance)
    for guidance in image_guidance:
        cases.append((f"stock g_i={guidance:g}", partial(stock, guidance), guidance))
        cases.append((f"exact g_i={guidance:g}", partial(ours, exact, guidance), guidance))
        if guidance == image_guidance[0]:
            # the exact editor's caches always hold this photo and instruction from its previous (cold) edit
            retry = partial(ours, exact, guidance, cached=True)
            cases.append((f"exact cached retry g_i={guidance:g}", retry, guidance))
    if fast:
        fast_editor = Pix2PixEditor(pipeline, max_side=size, safety_checker=False, fast=True, compile=compile)
        cases += [(f"fast g_i={g:g}", partial(ours, fast_editor, g), g) for g in image_guidance]

    outputs: dict[str, np.ndarray] = {}
    for name, run, _ in cases:  # warm-ups: first calls pay for allocation and kernel selection
        if _is_first(cases, name):
            outputs[name] = run()

    seconds: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    peak: dict[str, float] = {}
    with MachineLoad() as load:
        for round_index in range(max(1, repeats)):
            for name, run, _ in round_order(cases, round_index):
                elapsed, memory, outputs[name] = _measure(run, torch_device)
                seconds[name].append(elapsed)
                peak[name] = max(memory, peak.get(name, 0.0))

    figures: dict = {
        "device": str(torch_device),
        "torch": torch.__version__,
        "model": model,
        "dtype": str(pipeline.unet.dtype).removeprefix("torch."),
        "compile": compile,
        "size": size,
        "steps": steps,
        "threads": torch.get_num_threads(),
        "repeats": max(1, repeats),
        "machine": load.figures(),
        "cases": [],
    }
    for name, _, guidance in cases:
        stock_name = f"stock g_i={guidance:g}"
        diff = None if name == stock_name else _max_diff(outputs[name], outputs[stock_name])
        figures["cases"].append(_case(name, seconds[stock_name], seconds[name], peak[name], diff))

    if as_json:
        print(json.dumps(figures, indent=2))
    else:
        _print_table(figures)
    return figures


def _is_first(cases: list, name: str) -> bool:
    """Whether `name` is the first case of its kind (stock, exact or fast): only those need a warm-up."""
    kind = name.split()[0]
    return next(case for case, _, _ in cases if case.split()[0] == kind) == name


def sample_photo(size: int) -> Image.Image:
    """A deterministic photo-like picture: smooth gradients plus a little noise."""
    y, x = np.mgrid[0:size, 0:size] / size
    rgb = np.stack([x, y, 0.5 + 0.5 * np.sin(6 * x * y)], axis=-1)
    rgb += np.random.default_rng(0).normal(0, 0.03, rgb.shape)
    return Image.fromarray((rgb.clip(0, 1) * 255).astype(np.uint8))


def _measure(run: Callable[[], np.ndarray], device: torch.device) -> tuple[float, float, np.ndarray]:
    """(seconds, peak memory in MiB during the run, output)."""
    reset_peak_memory(device)
    started = time.perf_counter()
    output = run()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started, peak_memory_mib(device), output


def _max_diff(output: np.ndarray, reference: np.ndarray) -> float:
    return float(np.abs(output.astype(np.float32) - reference.astype(np.float32)).max())


def _case(name: str, stock: list[float], ours: list[float], memory: float, diff: float | None) -> dict:
    paired = paired_summary(stock, ours)
    return {
        "case": name,
        "seconds": round(paired["median"], 3),
        "seconds_all": [round(value, 3) for value in ours],
        "speedup_vs_stock": round(paired["ratio"]["median"], 2),
        "speedup_iqr_pct": paired["ratio"]["iqr_pct"],
        "speedup_quartiles": [round(paired["ratio"]["q1"], 2), round(paired["ratio"]["q3"], 2)],
        "peak_memory_mib": round(memory),
        "max_pixel_diff_vs_stock": None if diff is None else float(f"{diff:.3g}"),
    }


def _print_table(figures: dict) -> None:
    print(
        f"device {figures['device']} · torch {figures['torch']} · {figures['size']}x{figures['size']} · "
        f"{figures['steps']} steps · {figures['threads']} threads · text guidance {TEXT_GUIDANCE:g} · "
        f"{figures['repeats']} paired rounds"
    )
    print(f"{'case':<28}{'s/edit':>9}{'x stock':>9}{'IQR %':>7}{'peak MiB':>10}{'max diff':>11}")
    for case in figures["cases"]:
        diff = "-" if case["max_pixel_diff_vs_stock"] is None else f"{case['max_pixel_diff_vs_stock']:.3g}"
        print(
            f"{case['case']:<28}{case['seconds']:>9.2f}{case['speedup_vs_stock']:>9.2f}{case['speedup_iqr_pct']:>7.1f}"
            f"{case['peak_memory_mib']:>10}{diff:>11}"
        )
    machine = figures["machine"]
    print(f"others' CPU share {machine['others_cpu_share']}, load average {machine['load_average_before']} before, "
          f"{machine['load_average_after']} after")
    if machine["warning"]:
        print(machine["warning"], file=sys.stderr)


def run_from_args(args: argparse.Namespace) -> dict:
    return run_benchmark(
        device=args.device,
        size=args.size,
        steps=args.steps,
        image_guidance=tuple(args.image_guidance),
        fast=args.fast,
        repeats=args.repeats,
        as_json=args.json,
        dtype=args.dtype,
        compile=args.compile,
        threads=args.threads,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_options(parser)
    run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    main()
