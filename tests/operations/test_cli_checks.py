"""`editbot`'s option checks: every mistake is found before any model time, in one line naming what to fix."""

from __future__ import annotations

import pytest

from bot.cli import SAMPLE_PHOTO, main


def failure(args: list[str], capsys) -> str:
    try:
        status = main(args)
    except SystemExit as exit:
        status = exit.code
    error = capsys.readouterr().err
    assert status == 2 and error.count("\n") == 1 and "Traceback" not in error, error
    return error


@pytest.fixture
def no_model(monkeypatch):
    """Any model load fails the test: the checks must come first."""
    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the options were checked")

    monkeypatch.setattr("bot.bootstrap.build_editor", refuse)
    monkeypatch.setattr("bot.bootstrap.build_engine", refuse)


@pytest.mark.parametrize("output, expected", [
    ("no/such/folder/out.png", "the folder no/such/folder does not exist"),
    ("out.xyz", ".xyz is not an image format I can write"),
    ("out", "no extension is not an image format"),
])
def test_edit_checks_the_output_path_before_loading_the_model(output, expected, capsys, tmp_path, monkeypatch,
                                                              no_model):
    monkeypatch.chdir(tmp_path)
    assert expected in failure(["edit", str(SAMPLE_PHOTO), "make it night", "-o", output], capsys)


@pytest.mark.parametrize("value", ["10", "9000"])
def test_max_side_is_checked_like_the_setting(value, capsys, tmp_path, no_model):
    error = failure(["edit", str(SAMPLE_PHOTO), "make it night", "-o", str(tmp_path / "o.png"), "--max-side", value],
                    capsys)
    assert f"--max-side {value}: must be a whole number from 64 to 2048 (default 512)" in error


def test_a_non_english_instruction_is_held_back_unless_anyway(capsys, tmp_path, no_model):
    error = failure(["edit", str(SAMPLE_PHOTO), "haz que sea de noche por favor", "-o", str(tmp_path / "o.png")],
                    capsys)
    assert "Spanish" in error and "--anyway" in error and "/anyway" not in error


def test_every_edit_option_says_its_range_and_default(capsys):
    with pytest.raises(SystemExit):
        main(["edit", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for fragment in ("instruction, 1 to 20 (default 7.5)", "keep, 0 to 5 (default 1.5)", "steps, 1 to 100 (default 20)",
                     "0 to 4294967295", "64 to 2048 (default 512", "folder must exist"):
        assert fragment in text, fragment


def test_chat_help_lists_open_buttons_and_quit(capsys):
    with pytest.raises(SystemExit):
        main(["chat", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for fragment in ("/open PATH", "!button", "!pick 3", "/quit", "/cancel", "Ctrl+C"):
        assert fragment in text, fragment


def test_chat_instruction_without_a_photo_is_an_error(capsys, no_model):
    assert "--instruction needs a photo" in failure(["chat", "--instruction", "make it night"], capsys)


@pytest.mark.parametrize("variable, value, expected", [
    ("TELEGRAM_ALLOWED_IDS", "123abc", "TELEGRAM_ALLOWED_IDS must be a JSON list of ids, e.g. [123, -100456]"),
    ("DISCORD_ALLOWED_IDS", '["x"]', "DISCORD_ALLOWED_IDS must be a JSON list of ids"),
    ("EDITBOT_MAX_SIDE", "9000", "EDITBOT_MAX_SIDE must be a whole number from 64 to 2048 (default 512)"),
    ("EDITBOT_THREADS", "-1", "EDITBOT_THREADS must be a whole number from 0 to 1024 (default 0)"),
    ("EDITBOT_THREADS", "two", "EDITBOT_THREADS must be a whole number from 0 to 1024 (default 0)"),
    ("EDITBOT_LOG_FORMAT", "xml", "EDITBOT_LOG_FORMAT must be one of text, json"),
    ("EDITBOT_ADMIN_IDS", "telegram:1", "EDITBOT_ADMIN_IDS must be a JSON list of names"),
])
def test_a_bad_setting_names_its_variable_and_the_form_it_expects(variable, value, expected, capsys, monkeypatch,
                                                                  no_model):
    monkeypatch.setenv(variable, value)
    error = failure(["chat"], capsys)
    assert expected in error and "allowed_ids" not in error and "max_side" not in error


def test_a_tiny_pixel_limit_is_not_called_zero(capsys, tmp_path, monkeypatch, no_model):
    from core.errors import UserError
    from core.images import load_untrusted

    with pytest.raises(UserError) as refused:
        load_untrusted(SAMPLE_PHOTO.read_bytes(), max_pixels=1000)
    assert "0 MP" not in str(refused.value) and "0.001 MP" in str(refused.value)
