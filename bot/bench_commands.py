"""`editbot bench`, `bench-queue`, `bench-images` and `bench-translation`: each checks its options and runs its
benchmark, imported only when asked for (they load torch, Redis clients or models)."""

from __future__ import annotations

import argparse

from core.config import Settings
from core.errors import UserError


def bench_command(settings: Settings, args: argparse.Namespace) -> int:
    if args.repeats < 1:
        raise UserError("--repeats must be at least 1.")
    if args.transfer:
        from core.editing.transfer_bench import run_transfer_benchmark

        run_transfer_benchmark(repeats=args.repeats, as_json=args.json)
        return 0
    if args.family:
        from core.editing.family_bench import run_family_benchmark
        from core.errors import BadParams, ModelUnavailable

        try:
            run_family_benchmark(args.family, model=args.model or "tiny", device=args.device, dtype=args.dtype,
                                 size=args.size, steps=args.steps, as_json=args.json)
        except (BadParams, ModelUnavailable) as error:
            raise UserError(str(error)) from error
    elif args.pipeline:
        from bot.pipeline_bench import run_from_args as run_pipeline_bench

        run_pipeline_bench(args)
    else:
        from core.editing.bench import run_from_args

        run_from_args(args)
    return 0


def bench_queue_command(settings: Settings, args: argparse.Namespace) -> int:
    from bot.distributed.bench import run_benchmark

    if args.jobs < 1 or args.hold <= 0 or min(args.workers) < 1 or args.repeats < 1:
        raise UserError("--jobs, --hold, --workers and --repeats must be positive.")
    if args.soak is not None:
        from bot.distributed.soak import run_soak

        if args.soak <= 0:
            raise UserError("--soak takes a positive number of minutes.")
        run_soak(args.soak, args.hold, max(args.workers), args.json)
        return 0
    run_benchmark(args.jobs, args.hold, tuple(args.workers), args.json, args.repeats)
    return 0


def bench_images_command(settings: Settings, args: argparse.Namespace) -> int:
    from bot.images_bench import run_benchmark

    if args.side < 64 or args.scans < 1:
        raise UserError("--side must be at least 64 and --scans positive.")
    if args.storage:
        import json

        from bot.storage_bench import print_storage, run_storage_benchmark

        figures = run_storage_benchmark()
        if args.json:
            print(json.dumps(figures))
        else:
            print_storage(figures)
        return 0
    run_benchmark(args.side, args.scans, args.json)
    return 0


def bench_translation_command(settings: Settings, args: argparse.Namespace) -> int:
    from core.translation_bench import run_benchmark

    if args.tokens < 1 or args.repeats < 1 or (args.threads is not None and args.threads < 1):
        raise UserError("--tokens, --repeats and --threads must be positive.")
    run_benchmark(args.model, args.device, args.tokens, args.repeats, args.json, args.threads, args.float32,
                  args.check_int8)
    return 0
