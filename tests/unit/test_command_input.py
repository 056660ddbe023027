"""Whatever a person types after a slash gets a clear answer: never an internal error, never a model instruction."""

from __future__ import annotations

import pytest

from core.commands import Arg
from core.errors import BadParams
from core.messages import Press
from tests.support.chat import images, progress


@pytest.mark.parametrize("text", ["/steps ²", "/steps ١٢", "/steps " + "9" * 1000, "/text 1e1", "/text ∞",
                                  "/seed " + "1" * 40, "/goto -1", "/pick ²", "/variations 0", "/rotate " + "9" * 999,
                                  "/image ²", "/image nan", "/text inf", "/steps 1_0", "/goto ٣", "/flip ²",
                                  "/variations " + "4" * 500, "/seed -1", "/steps 0x10", "/meant " + "x" * 1000])
async def test_strange_arguments_get_one_clear_line(chat, history, text):
    await chat.photo()
    before = history.conversation(chat.key)
    [reply] = await chat(text)
    assert reply.error and "\n" not in reply.text and "went wrong" not in reply.text, reply.text
    assert len(reply.text) < 200
    assert history.conversation(chat.key) == before


@pytest.mark.parametrize("text", ["/", "/ undo", "/   ", "/@bot"])
async def test_a_bare_slash_is_never_an_instruction(chat, history, editor, text):
    await chat.photo()
    replies = await chat(text)
    assert not progress(replies) and not images(replies)
    [reply] = replies
    assert reply.error and "/help" in reply.text
    assert len(history.children(history.conversation(chat.key).head_id)) == 0


async def test_an_unknown_command_in_another_script_is_named_safely(chat):
    [reply] = await chat("/ündo")
    assert reply.error and "/help" in reply.text and "went wrong" not in reply.text


@pytest.mark.parametrize("data", ["undo:²", "undo:١٢", "undo:" + "9" * 1000, "ündo:1", "undo", ":1", "undo:-1"])
def test_forged_button_payloads_are_refused(data):
    assert Press.parse(data) is None


def test_arguments_parse_to_typed_values():
    steps = Arg.whole("n", 1, 100, "steps")
    assert steps.parse("30", "steps") == 30
    assert Arg.number("x", 1.0, 20.0, "guidance").parse("7,5", "text") == 7.5
    seed = Arg.whole("n", 0, 9, "seed", words=(("random", None),))
    assert seed.parse("RANDOM", "seed") is None
    with pytest.raises(BadParams, match="from 1 to 100"):
        steps.parse("101", "steps")
    assert Arg.whole("n", 1, 4, "count", default=4).parse("", "variations") == 4


def test_free_text_is_kept_as_typed_and_refused_when_too_long():
    english = Arg.text("english", "The English you meant", usage="ENGLISH", max_chars=30)
    assert english.parse("  Paint it like Van Gogh ", "meant") == "Paint it like Van Gogh"
    with pytest.raises(BadParams, match="/meant needs the English you meant"):
        english.parse("  ", "meant")
    with pytest.raises(BadParams, match="at most 30 characters"):
        english.parse("x" * 31, "meant")


@pytest.mark.parametrize("text", ["make it\x00 night", "make it night\x1b[31m", "add \x7f stars", "make it \x85night",
                                  "\u202eevil", "make it \u2066night"])
async def test_control_characters_are_refused_before_any_model_time(chat, history, editor, text):
    await chat.photo()
    before = history.conversation(chat.key)
    [reply] = await chat(text)
    assert reply.error and "control character" in reply.text
    assert editor.calls == [] and history.conversation(chat.key) == before
    [anyway] = await chat("/anyway")  # nothing was held back either
    assert anyway.error and editor.calls == []


async def test_line_breaks_and_tabs_are_part_of_an_instruction(chat, editor):
    await chat.photo()
    assert images(await chat("make it night\nand\tadd stars"))


async def test_a_seed_out_of_range_names_its_limit_in_full(chat):
    [reply] = await chat("/seed -1")
    assert reply.error and "from 0 to 4294967295" in reply.text
