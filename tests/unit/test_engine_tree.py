"""The whole tree, reachable: /history with branches, /goto any label, the /tree picture, /photos."""

from __future__ import annotations

import io

from PIL import Image

from tests.support.chat import images, photo_bytes, texts


def picture(reply) -> Image.Image:
    return Image.open(io.BytesIO(reply.image))


async def moon_branch(chat):
    """The issue's case: an edit, /undo, a new edit; then an abandoned branch is out of /redo's reach."""
    [night] = images(await chat.photo("make it night"))
    [moon] = images(await chat("add a moon"))
    await chat("/undo")
    [stars] = images(await chat("add stars"))
    return night, moon, stars


async def test_history_lists_the_branches_leaving_the_line_with_labels_goto_takes(chat, history):
    night, moon, stars = await moon_branch(chat)

    listing, sheet = await chat("/history")
    lines = listing.text.splitlines()[1:]
    assert lines == ["0. original photo", "1. “make it night”", "   ↳ 2. “add a moon”",
                     "2b. “add stars”  ◀ you are here"]
    assert sheet.kind == "history"

    [jumped] = images(await chat("/goto 2"))
    assert jumped.node_id == moon.node_id and jumped.label == "2"
    assert "Step 2:" in jumped.caption
    [back] = images(await chat("/goto 2B"))
    assert back.node_id == stars.node_id
    # Labels are stable: from the moon, the stars are the branch now, under the same label.
    await chat("/goto 2")
    listing, _ = await chat("/history")
    assert "   ↳ 2b. “add stars”" in listing.text.splitlines()


async def test_goto_refuses_what_is_not_a_label_of_this_tree_in_one_line(chat):
    await moon_branch(chat)
    for bad in ("/goto 3", "/goto 2c", "/goto x", "/goto", "/goto 1.5"):
        [reply] = await chat(bad)
        assert reply.error and "0 to 2b" in reply.text and "\n" not in reply.text, bad


async def test_a_long_line_is_folded_and_many_branches_are_counted(chat):
    await chat.photo("edit 1")
    for number in range(2, 31):
        await chat(f"edit {number}")
    listing, _ = await chat("/history")
    lines = listing.text.splitlines()[1:]
    assert lines[0] == "0. original photo" and lines[-1] == "30. “edit 30”  ◀ you are here"
    assert any("folded" in line for line in lines) and len(lines) < 12
    [reply] = images(await chat("/goto 5"))  # a folded step is still reachable
    assert reply.label == "5"

    await chat("/goto 29")
    for number in range(5):
        await chat(f"branch {number}")
        await chat("/undo")
    listing, _ = await chat("/history")
    assert "   ↳ and 2 more branches here (/tree draws them)" in listing.text  # 30 and 30b-30e; 30f follows


async def test_tree_draws_every_image_small_enough_for_the_chat_platforms(chat, history):
    night, moon, stars = await moon_branch(chat)
    [drawing] = images(await chat("/tree"))
    assert drawing.kind == "tree" and drawing.node_id == stars.node_id and drawing.label == "2b"
    assert "/goto" in drawing.caption
    small = picture(drawing)

    for number in range(12):
        await chat(f"more {number}")
    for number in range(14):
        await chat("/undo")
        await chat(f"side {number}")
    [big] = images(await chat("/tree"))
    width, height = picture(big).size
    assert width > small.width and width + height < 10_000 and max(width, height) <= 2560


async def test_photos_lists_every_tree_and_resumes_one_where_it_was_left(chat, history):
    night, moon, stars = await moon_branch(chat)
    await chat("/reset")
    [second] = images(await chat.photo("make it snowy", data=photo_bytes(colour=(200, 30, 30))))
    await chat.photo(data=photo_bytes(colour=(30, 200, 30)))

    listing, sheet = await chat("/photos")
    rows = listing.text.splitlines()[1:]
    assert len(rows) == 3
    assert rows[0].startswith("1. ") and "0 edits" in rows[0] and "here now" in rows[0]
    assert rows[1].startswith("2. ") and "· 1 edit ·" in rows[1] and "left at 1: “make it snowy”" in rows[1]
    assert rows[2].startswith("3. ") and "3 edits" in rows[2] and "left at 2b: “add stars”" in rows[2]
    assert sheet.kind == "photos" and [button.label for button in sheet.buttons] == ["Open 1", "Open 2", "Open 3"]

    [resumed] = images(await chat("/photos 3"))
    assert resumed.node_id == stars.node_id and "2b" in resumed.caption
    assert history.conversation(chat.key).head_id == stars.node_id
    [pressed] = images(await chat.press("resume", sheet.buttons[1].press.node_id))
    assert pressed.node_id == second.node_id

    [reply] = await chat("/photos 4")
    assert reply.error and "1 to 3" in reply.text


async def test_photos_before_any_photo_says_so(chat):
    [reply] = await chat("/photos")
    assert reply.error and "photo" in reply.text
    [reply] = texts(await chat("/reset"))
    assert "/photos" in reply.text
