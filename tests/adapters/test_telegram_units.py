"""Units of the Telegram adapter that need no emulator: photo or document, long texts, the webhook's options."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from bot.telegram_photos import fits_as_photo
from bot.telegram_replies import split_text
from core.config import TelegramSettings


@pytest.mark.parametrize(
    ("size", "fits"),
    [((512, 512), True), ((9000, 999), True), ((9000, 1001), False), ((2000, 100), True), ((2100, 100), False)],
)
def test_photo_limits_decide_photo_or_document(size, fits):
    buffer = io.BytesIO()
    Image.new("1", size).save(buffer, "PNG")
    assert fits_as_photo(buffer.getvalue()) is fits


def test_results_over_ten_megabytes_go_as_documents():
    assert not fits_as_photo(b"\x89PNG" + bytes(10 * 1024 * 1024))


def test_long_texts_are_split_at_line_breaks():
    lines = [f"line {i:04d} " + "x" * 90 for i in range(100)]
    chunks = split_text("\n".join(lines))
    assert all(len(chunk) <= 4096 for chunk in chunks) and len(chunks) > 1
    assert "\n".join(chunks).splitlines() == lines


def test_webhook_serves_the_public_path_and_checks_a_secret_that_is_not_the_token():
    from bot.telegram_adapter import webhook_options

    telegram = TelegramSettings(bot_token="42:SECRET-part", webhook_url="https://bot.example/hooks/telegram",
                                webhook_listen="127.0.0.1", webhook_port=8080)
    options = webhook_options(telegram)

    assert options["url_path"] == "hooks/telegram" and options["webhook_url"] == telegram.webhook_url
    assert (options["listen"], options["port"]) == ("127.0.0.1", 8080)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,256}", options["secret_token"])
    assert "SECRET" not in options["secret_token"] and "SECRET" not in options["url_path"]
    assert options["secret_token"] != webhook_options(telegram.model_copy(update={"bot_token": "42:other"}))[
        "secret_token"
    ]
