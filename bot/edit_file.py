"""`editbot edit IN "INSTRUCTION" -o OUT`: one image file, edited from the command line. Everything a person can get
wrong (the output path, the parameters, an instruction the model cannot read, the input) is checked before the model
costs any time."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.config import Settings
from core.domain import EditParams
from core.errors import UserError


def edit_command(settings: Settings, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from bot.bootstrap import build_editor
    from bot.local_files import read_photo_file
    from core.editing.transfer import full_size, shrink_for
    from core.images import load_untrusted
    from core.understanding import HeldBack, Understanding

    # Everything a person can get wrong is checked before the model costs any time.
    _check_output(args.output)
    data = read_photo_file(args.input, settings.limits.max_upload_bytes, files_only=False)
    params = EditParams(args.text_guidance, args.image_guidance, args.steps, args.seed,
                        args.scheduler or settings.editor.scheduler).validated()
    if not args.anyway:  # the chat's check, without translation: a one-off edit runs the words as given
        try:
            Understanding().understand(args.instruction)
        except HeldBack as problem:
            raise UserError(str(problem).replace("send /anyway", "add --anyway")) from None
    intake = load_untrusted(data, **settings.limits.intake)
    if intake.notice:
        print(intake.notice, file=sys.stderr)
    editor = build_editor(settings)
    full = settings.editor.output == "full"
    photo = intake.image
    small = shrink_for(editor, photo) if full else photo
    with tqdm(total=params.steps, desc="editing", unit="step", file=sys.stderr) as bar:
        result = editor.edit(small, args.instruction, params, on_step=lambda done, total: bar.update(1))
    try:
        (full_size(photo, small, result.image) if full else result.image).save(args.output)
    except (OSError, ValueError) as error:
        raise UserError(f"Cannot write {args.output}: {getattr(error, 'strerror', None) or error}.") from None
    print(f"{args.output}: {result.params.describe()} · {result.seconds:.1f} s")
    return 0


def _check_output(path: Path) -> None:
    """The output's folder exists and its extension names a format Pillow writes."""
    from PIL import Image

    if not path.parent.is_dir():
        raise UserError(f"Cannot write {path}: the folder {path.parent} does not exist.")
    if path.is_dir():
        raise UserError(f"Cannot write {path}: it is a folder; give a file name like {path / 'result.png'}.")
    Image.init()
    if path.suffix.lower() not in Image.registered_extensions() or \
            Image.registered_extensions()[path.suffix.lower()] not in Image.SAVE:
        raise UserError(f"Cannot write {path}: {path.suffix or 'no extension'} is not an image format I can "
                        "write; use .png, .jpg or .webp.")
