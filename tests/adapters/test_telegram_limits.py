"""Telegram's text limits, counted as Telegram counts them: in UTF-16 code units, where an emoji (any character past
U+FFFF) is two."""

from __future__ import annotations

from bot.telegram_replies import CAPTION_MAX_CHARS, MESSAGE_MAX_CHARS, shorten, split_text


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def test_a_caption_of_emoji_is_cut_to_what_telegram_accepts():
    # 1024 emoji make a 2048-unit caption, which Telegram refuses.
    caption = shorten("“make it 🌙" + "🌙" * 2000 + "”", CAPTION_MAX_CHARS)
    assert caption.endswith("…") and CAPTION_MAX_CHARS - 2 <= utf16_length(caption) <= CAPTION_MAX_CHARS
    assert shorten("🌙" * 512, CAPTION_MAX_CHARS) == "🌙" * 512  # exactly at the limit: kept whole


def test_a_long_message_of_emoji_is_split_into_messages_telegram_accepts():
    text = "🌙" * 5000
    chunks = split_text(text)
    assert all(utf16_length(chunk) <= MESSAGE_MAX_CHARS for chunk in chunks) and "".join(chunks) == text
