"""`editbot`: the command line. Every subcommand reads the same settings (environment and .env); flags override.

    editbot                    run the bots whose tokens are set, or the web chat when none is
    editbot edit IN "INSTR" -o OUT [options]
    editbot chat [IMAGE] [--instruction TEXT]
    editbot web                the web chat on http://127.0.0.1:7860/ (EDITBOT_WEB_HOST, EDITBOT_WEB_PORT)
    editbot telegram | discord | bots   (bots: every platform whose token is set, and the web chat if EDITBOT_WEB)
    editbot bench [--json] [--fast] [--repeats N] [--pipeline | --transfer | --family NAME [--model M]]
    editbot worker             distributed mode: run edit jobs from Redis (one process per GPU)
    editbot bench-queue | bench-images | bench-translation [--help for their options]
    editbot db upgrade | db sweep | db purge --older-than DAYS | db backup PATH

Bad input ends with exit status 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import warnings
from pathlib import Path

from pydantic import ValidationError
from pydantic_settings import SettingsError

from bot import bench_commands
from bot.chat_common import SAMPLE_PHOTO
from bot.edit_file import edit_command
from bot.logging_setup import configure_logging
from bot.setting_errors import setting_problem, unreadable_setting
from core.config import Settings
from core.domain import (
    IMAGE_GUIDANCE_RANGE,
    SCHEDULERS,
    SEED_RANGE,
    STEPS_RANGE,
    TEXT_GUIDANCE_RANGE,
    EditParams,
)
from core.errors import UserError


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr (and exit status 2)."""

    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def _editor_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="hub id, local folder, .ckpt/.safetensors file, 'tiny' or 'full-random'")
    parser.add_argument("--max-side", type=int, help="longest side of the working resolution, 64 to 2048 "
                        "(default 512, or EDITBOT_MAX_SIDE)")
    parser.add_argument("--fast", action="store_true", default=None, help="opt-in speed-ups (slightly different maths)")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="editbot", description="Conversational image editing with InstructPix2Pix.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details, libraries' warnings included")
    commands = parser.add_subparsers(dest="command", parser_class=OneLineParser)

    run = commands.add_parser("run", help="run the bots whose tokens are set, else the web chat (the default)")
    _editor_options(run)

    edit = commands.add_parser("edit", help="edit one image file")
    edit.add_argument("input", type=Path, help="the photo to edit")
    edit.add_argument("instruction", help="what to change, in English, e.g. \"make it night\"")
    edit.add_argument("-o", "--output", type=Path, required=True,
                      help="where to write the result; its folder must exist, its extension names the format "
                           "(.png, .jpg, .webp…)")
    _editor_options(edit)
    edit.add_argument("--text-guidance", type=float, default=EditParams.text_guidance,
                      help="how strongly to follow the instruction, %g to %g (default %%(default)s)"
                           % TEXT_GUIDANCE_RANGE)
    edit.add_argument("--image-guidance", type=float, default=EditParams.image_guidance,
                      help="how much of the photo to keep, %g to %g (default %%(default)s)" % IMAGE_GUIDANCE_RANGE)
    edit.add_argument("--steps", type=int, default=EditParams.steps,
                      help="denoising steps, %d to %d (default %%(default)s)" % STEPS_RANGE)
    edit.add_argument("--seed", type=int, help="%d to %d, to repeat a result (default: a new random one)"
                      % SEED_RANGE)
    edit.add_argument("--scheduler", choices=SCHEDULERS, help="the sampler (default: the model's own, or "
                      "EDITBOT_SCHEDULER)")
    edit.add_argument("--anyway", action="store_true",
                      help="edit even when the instruction looks like it is not English or is too long")
    edit.add_argument("--keep-size", action="store_true", default=None, help="return the result at the input's size")

    chat = commands.add_parser(
        "chat", help="talk to the bot in this terminal; reads standard input line by line",
        description="Talk to the bot in this terminal. Each line is a message: an instruction (\"make it night\"), "
                    "a /command (/help lists them), /open PATH [instruction] to send a photo, !button to press a "
                    "button under the last result (!undo, !stronger, !pick 3 under a grid), /cancel (or Ctrl+C) "
                    "to stop a running edit, /quit (or a second Ctrl+C) to leave. Results are written to --out as "
                    "step-LABEL.png, the labels /history and /goto use.")
    chat.add_argument("image", nargs="?", type=Path, help="a photo to start with")
    chat.add_argument("--instruction", help="a first instruction for that photo")
    chat.add_argument("--out", type=Path, default=Path("out"), help="folder for result files (default ./out)")
    _editor_options(chat)

    for name in ("telegram", "discord"):
        _editor_options(commands.add_parser(name, help=f"run the {name.capitalize()} bot"))
    _editor_options(commands.add_parser("web", help="serve the web chat (a page for your browser)"))
    _editor_options(commands.add_parser(
        "bots", help="run the bots whose tokens are set, and the web chat if EDITBOT_WEB=true, in one process"))

    from core.editing.bench_options import add_options as add_bench_options

    bench = commands.add_parser("bench", help="time our editor against the stock diffusers pipeline, in pairs")
    add_bench_options(bench)
    bench.add_argument("--pipeline", action="store_true",
                       help="instead: time one whole edit through the engine, phase by phase")
    bench.add_argument("--family", help="time this model family instead of pix2pix's full benchmark "
                       "(pix2pix-xl, kontext, flux2-klein, qwen-edit)")
    bench.add_argument("--model", choices=("tiny", "full-random"),
                       help="with --family (default tiny) or --pipeline (default full-random): the tiny twin or the "
                       "real architecture with random weights (the pipeline's non-model phases need no real model)")
    bench.add_argument("--transfer", action="store_true",
                       help="instead: what full-size results add per edit of a 12 MP photo (no model)")

    worker = commands.add_parser("worker", help="distributed mode: load the model once, then run edit jobs from Redis")
    _editor_options(worker)

    from bot.distributed.bench import add_options as add_bench_queue_options

    add_bench_queue_options(commands.add_parser(
        "bench-queue", help="distributed queue throughput with 1, 2 and 4 workers (needs Redis)"))

    from bot.images_bench import add_options as add_bench_images_options

    add_bench_images_options(commands.add_parser(
        "bench-images", help="cost of hostile progressive JPEGs and memory of a /history sheet"))

    from core.translation_bench import add_options as add_bench_translation_options

    add_bench_translation_options(commands.add_parser(
        "bench-translation", help="seconds and memory a translated instruction costs (random weights, real size)"))

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, parser_class=OneLineParser)
    db_commands.add_parser("upgrade", help="apply database migrations")
    db_commands.add_parser("sweep", help="delete image files that no history refers to")
    purge = db_commands.add_parser("purge", help="delete edit trees untouched for DAYS days, then their images")
    purge.add_argument("--older-than", type=_positive_days, required=True, metavar="DAYS")
    backup = db_commands.add_parser("backup", help="copy the SQLite database to PATH while bots keep running")
    backup.add_argument("path", type=Path)
    return parser


def _positive_days(raw: str) -> float:
    try:
        days = float(raw)
    except ValueError:
        days = 0.0
    if not days > 0 or days == float("inf"):
        raise argparse.ArgumentTypeError(f"needs a number of days above 0, not {raw!r}")
    return days


def _apply(settings: Settings, args: argparse.Namespace) -> Settings:
    """Flags override settings, checked as the settings are (--max-side like EDITBOT_MAX_SIDE)."""
    for flag, field in (("model", "model"), ("max_side", "max_side"), ("fast", "fast"), ("keep_size", "keep_original_size")):
        value = getattr(args, flag, None)
        if value is not None:
            try:
                settings.editor = type(settings.editor).model_validate({**settings.editor.model_dump(), field: value})
            except ValidationError as error:
                raise UserError(f"--{flag.replace('_', '-')} {value}: {setting_problem(error, name_only=True)}") \
                    from None
    return settings


def _quiet_libraries() -> None:
    """Keep model libraries' advice and deprecation chatter off the terminal: a person sees our one line."""
    for variable in ("TRANSFORMERS_VERBOSITY", "DIFFUSERS_VERBOSITY", "HF_HUB_VERBOSITY"):
        os.environ.setdefault(variable, "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.verbose:
        _quiet_libraries()
    try:
        settings = _apply(Settings(), args)
    except ValidationError as error:
        print(f"editbot: {setting_problem(error)}", file=sys.stderr)
        return 2
    except SettingsError as error:
        print(f"editbot: {unreadable_setting(error)}", file=sys.stderr)
        return 2
    except UserError as error:
        print(f"editbot: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.ops.log_format, logging.INFO if args.verbose else logging.ERROR,
                      secrets=[settings.telegram.bot_token, settings.discord.bot_token])
    try:
        return COMMANDS[args.command or "run"](settings, args)
    except UserError as error:
        print(f"editbot: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # a start-up failure (token refused, database unreachable...): one line, no traceback
        from bot.startup_failures import explain

        line, status = explain(error, database_url=settings.storage.url, verbose=args.verbose,
                               secrets=[settings.telegram.bot_token, settings.discord.bot_token])
        print(f"editbot: {line}", file=sys.stderr)
        return status


def chat_command(settings: Settings, args: argparse.Namespace) -> int:
    from bot.bootstrap import build_engine
    from bot.console_adapter import run_console
    from bot.local_files import read_photo_file

    image = getattr(args, "image", None)
    instruction = getattr(args, "instruction", None)
    if image is None and instruction is not None:
        raise UserError("--instruction needs a photo to edit: editbot chat PHOTO --instruction TEXT.")
    if image is not None:  # the photo's problems before the model costs any time (the chat reads it again)
        read_photo_file(image, settings.limits.max_upload_bytes, files_only=True)
    engine = build_engine(settings, frontend="console", jpeg_previews=False)
    if image is None and sys.stdin.isatty():  # after the model loaded: no tip above a failure
        print(f"Tip: /open {SAMPLE_PHOTO} make it winter", file=sys.stderr)
    asyncio.run(run_console(engine, getattr(args, "out", Path("out")), image=image, instruction=instruction,
                            upload_limit=settings.limits.max_upload_bytes))
    return 0


def telegram_command(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.telegram.bot_token:
        raise UserError("Set TELEGRAM_BOT_TOKEN to run the Telegram bot.")
    settings.discord.bot_token = None
    return bots_command(settings, args)


def discord_command(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.discord.bot_token:
        raise UserError("Set DISCORD_BOT_TOKEN to run the Discord bot.")
    settings.telegram.bot_token = None
    return bots_command(settings, args)


def web_command(settings: Settings, args: argparse.Namespace) -> int:
    settings.web.web = True
    settings.telegram.bot_token = settings.discord.bot_token = None
    return bots_command(settings, args)


def bots_command(settings: Settings, args: argparse.Namespace) -> int:
    """The bots whose tokens are set, and the web chat if asked, in one process: one model and one queue behind
    every platform."""
    from bot.bootstrap import bot_service, build_storage
    from bot.platforms import serve_platforms

    platforms = [name for name, on in (("discord", settings.discord.bot_token),
                                       ("telegram", settings.telegram.bot_token), ("web", settings.web.web)) if on]
    if not platforms:
        raise UserError("Set TELEGRAM_BOT_TOKEN and/or DISCORD_BOT_TOKEN (or EDITBOT_WEB=true) to run the bots.")
    logging.getLogger().setLevel(logging.INFO)
    if settings.web.web:
        print(f"Loading the model, then serving the web chat on {settings.web.web_host}:{settings.web.web_port}…",
              file=sys.stderr, flush=True)
    storage = build_storage(settings)
    # The front-end's name lets a restarted process re-attach to its own edits in distributed mode.
    with bot_service(settings, frontend="+".join(platforms), storage=storage) as engine:
        try:
            asyncio.run(_until_terminated(serve_platforms(settings, engine, storage, on_web_started=_announce_page)))
        except (KeyboardInterrupt, asyncio.CancelledError):
            pass
    return 0


async def _until_terminated(serving) -> None:
    """Run `serving`; SIGTERM (docker stop, systemd) stops it the way Ctrl+C does: the engine closes first, so no
    new edit starts, the waiting ones are told, and the running one may finish within
    EDITBOT_SHUTDOWN_GRACE_SECONDS and its result still reaches the person."""
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
    await serving


def _announce_page(url: str) -> None:
    """Say where the web chat is; open it in the browser where there is a desktop to open it on (elsewhere Python's
    webbrowser would start a text browser in this terminal)."""
    print(f"The web chat is ready: open {url} in your browser (Ctrl+C stops it).", file=sys.stderr, flush=True)
    desktop = sys.platform in ("darwin", "win32") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if desktop and sys.stdin.isatty():
        import webbrowser

        webbrowser.open(url)


def run_command(settings: Settings, args: argparse.Namespace) -> int:
    """The README's run command: the bots whose tokens are set, else the web chat."""
    if settings.telegram.bot_token or settings.discord.bot_token:
        return bots_command(settings, args)
    return web_command(settings, args)


def worker_command(settings: Settings, args: argparse.Namespace) -> int:
    try:
        from bot.distributed.worker import run_worker
    except ImportError:
        raise UserError("editbot worker needs taskiq-redis: pip install 'editbot[distributed]'.") from None

    logging.getLogger().setLevel(logging.INFO)
    run_worker(settings)
    return 0


def db_command(settings: Settings, args: argparse.Namespace) -> int:
    from bot.bootstrap import build_storage
    from bot.ops import backup_sqlite, purge_history
    from bot.startup_failures import mask_database_url

    if args.db_command == "backup":  # before build_storage: a backup must not migrate the database it copies
        size = backup_sqlite(settings.storage.url, args.path)
        print(f"Backed up {mask_database_url(settings.storage.url)} to {args.path} ({size} bytes).")
        return 0
    history, images = build_storage(settings)  # applies migrations
    if args.db_command == "upgrade":
        print(f"Database is up to date: {mask_database_url(settings.storage.url)}")
    elif args.db_command == "purge":
        result = purge_history(history, images, args.older_than)
        print(f"Deleted {result.nodes} history node(s) and {result.images} image file(s).")
    else:
        removed = images.sweep(history.referenced_images())
        print(f"Removed {removed} unreferenced image file(s).")
    return 0


COMMANDS = {
    "run": run_command,
    "edit": edit_command,
    "chat": chat_command,
    "telegram": telegram_command,
    "discord": discord_command,
    "bots": bots_command,
    "web": web_command,
    "bench": bench_commands.bench_command,
    "db": db_command,
    "worker": worker_command,
    "bench-queue": bench_commands.bench_queue_command,
    "bench-images": bench_commands.bench_images_command,
    "bench-translation": bench_commands.bench_translation_command,
}

if __name__ == "__main__":
    sys.exit(main())
