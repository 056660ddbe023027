"""`editbot bench`'s options, apart from the bench itself so the command line can offer them without importing
torch and diffusers."""

from __future__ import annotations

import argparse

DEFAULT_REPEATS = 5
"""Paired rounds: enough for a speed-up spread (IQR) under 10% on the 2-core CI machine when it is otherwise idle."""


def add_options(parser: argparse.ArgumentParser) -> None:
    """The bench's options, shared by `python -m core.editing.bench` and `editbot bench`."""
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument(
        "--fast", action=argparse.BooleanOptionalAction, default=True, help="also time fast mode (default: yes)"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    parser.add_argument("--size", type=int, help="square test image side (default 256 on CPU, 512 on CUDA)")
    parser.add_argument("--steps", type=int, help="denoising steps (default 4 on CPU, 20 on CUDA)")
    parser.add_argument(
        "--image-guidance", type=float, nargs="+", default=[1.5, 1.0], help="image guidance values (default 1.5 1.0)"
    )
    parser.add_argument(
        "--repeats", type=int, default=DEFAULT_REPEATS, help=f"paired rounds (default {DEFAULT_REPEATS})"
    )
    parser.add_argument("--dtype", default="auto", help="auto (float16 on CUDA, float32 on CPU), float32, float16, "
                        "bfloat16")
    parser.add_argument("--threads", type=_threads, help="torch CPU threads for every case (default: torch's, one "
                        "per core; as EDITBOT_THREADS)")
    parser.add_argument("--compile", action="store_true", help="torch.compile our editors' UNet (CUDA only)")


def _threads(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of threads, 1 or more (got {value!r})")
    return int(value)
