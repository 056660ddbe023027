"""Pictures and guidance help: compare, history sheet, sweep, variations, pick, squash, tuning words, hints and exact
edits, as conversations."""

from __future__ import annotations

import io

from PIL import Image

from core.domain import ChatKey
from core.messages import Incoming
from tests.support.chat import Chat, images, texts


def picture(reply) -> Image.Image:
    return Image.open(io.BytesIO(reply.image))


async def test_compare_shows_before_and_after_side_by_side(chat, history):
    [result] = images(await chat.photo("make it night"))
    [shown] = images(await chat("/compare"))
    assert shown.kind == "compare" and shown.node_id == result.node_id and "make it night" in shown.caption
    sheet = picture(shown)
    assert sheet.width > 2 * 96 and sheet.height > 64  # two 96x64 panels and labels

    [pressed] = images(await chat.press("compare", result.node_id))
    assert pressed.kind == "compare"


async def test_compare_on_the_original_says_there_is_nothing_yet(chat):
    await chat.photo()
    [reply] = await chat("/compare")
    assert reply.error and "nothing to compare" in reply.text


async def test_history_sends_a_contact_sheet_of_the_path(chat):
    await chat.photo("make it night")
    listing, sheet = await chat("/history")
    assert sheet.kind == "history" and "/goto" in sheet.caption
    small = picture(sheet)
    await chat("add stars")
    await chat("add a moon")
    _, bigger = await chat("/history")
    assert picture(bigger).width > small.width  # three and four thumbnails side by side


async def test_sweep_renders_nine_cells_in_one_batch_and_pick_adopts_one(chat, history, editor):
    await chat("/text 8")
    [result] = images(await chat.photo("make it night"))
    edited = history.node(result.node_id)
    [grid] = images(await chat("/sweep"))

    assert editor.batches == [9]
    assert grid.kind == "grid" and len(grid.buttons) == 9
    cells = [history.node(button.press.node_id) for button in grid.buttons]
    assert {cell.parent_id for cell in cells} == {edited.parent_id}
    assert {cell.params.seed for cell in cells} == {edited.params.seed}
    assert [(cell.params.text_guidance, cell.params.image_guidance) for cell in cells[:4]] == [
        (6, 1.2), (6, 1.5), (6, 1.8), (8, 1.2)]
    assert history.conversation(chat.key).head_id == edited.id  # nothing adopted yet

    [picked] = images(await chat("/pick 9"))
    assert picked.node_id == cells[8].id
    conversation = history.conversation(chat.key)
    assert conversation.head_id == cells[8].id
    assert (conversation.settings.text_guidance, conversation.settings.image_guidance) == (10, 1.8)

    [by_button] = images(await chat.press("pick", cells[0].id))
    assert by_button.node_id == cells[0].id


async def test_a_stranger_cannot_pick_from_my_sweep(engine, history):
    alice = Chat(engine, ChatKey("test", "g", "alice"))
    mallory = Chat(engine, ChatKey("test", "g", "mallory"))
    await alice.photo("make it night")
    [grid] = images(await alice("/sweep"))
    before = history.conversation(alice.key)
    [reply] = await mallory.press("pick", grid.buttons[0].press.node_id)
    assert reply.error and "someone else" in reply.text
    assert history.conversation(alice.key) == before


async def test_variations_render_new_seeds_together(chat, history, editor):
    [result] = images(await chat.photo("make it night"))
    [grid] = images(await chat("/variations 3"))
    assert editor.batches == [3] and len(grid.buttons) == 3
    seeds = {history.node(button.press.node_id).params.seed for button in grid.buttons}
    assert len(seeds) == 3 and history.node(result.node_id).params.seed not in seeds

    for bad in ("/variations 5", "/variations 0", "/variations x"):
        [reply] = await chat(bad)
        assert reply.error and "from 1 to 4" in reply.text


async def test_an_unpicked_variation_is_labelled_as_it_would_be_once_picked(chat, engine, history):
    # A grid job a distributed queue re-attaches after a restart delivers each cell as a picture of its own.
    await chat.photo("make it night")
    await chat("/undo")
    await chat("make it dark")
    [grid] = images(await chat("/variations 2"))
    _, second = (history.node(button.press.node_id) for button in grid.buttons)
    shown = await engine._core.show(second, "a cell")
    assert shown.label == "1c"  # after the night (1) and the dark (1b) edits
    [picked] = images(await chat.press("pick", second.id))
    assert picked.label == "1c"


async def test_sweep_and_pick_need_something_to_work_on(chat):
    [reply] = await chat("/pick 1")
    assert reply.error and "/sweep" in reply.text
    await chat.photo()
    [reply] = await chat("/sweep")
    assert reply.error and "send an instruction first" in reply.text
    await chat("make it night")
    await chat("/variations 2")
    [reply] = await chat("/pick 3")
    assert reply.error and "from 1 to 2" in reply.text


async def test_plain_words_tune_the_last_edit_and_say_the_values(chat, history):
    [result] = images(await chat.photo("make it night"))
    first = history.node(result.node_id)

    replies = await chat("a bit stronger please")
    assert texts(replies)[0].text == "More change: now text guidance 9, image guidance 1.25 (same seed)."
    [stronger] = images(replies)
    tuned = history.node(stronger.node_id)
    assert tuned.parent_id == first.parent_id and tuned.params.seed == first.params.seed
    assert tuned.instruction == "make it night"

    replies = await chat("Keep more of the photo!")
    assert texts(replies)[0].text.startswith("Less change: now text guidance 7.5, image guidance 1.5")

    [instruction] = images(await chat("more stars"))  # not a tuning phrase: an instruction
    assert history.node(instruction.node_id).instruction == "more stars"


async def test_squash_redoes_the_chain_as_one_edit_of_the_original(chat, history):
    [night] = images(await chat.photo("make it night"))
    await chat("add snow")
    await chat("/rotate 90")
    replies = await chat("/squash")
    squashed, rotated = images(replies)
    root_id = history.node(night.node_id).parent_id
    node = history.node(squashed.node_id)
    assert node.parent_id == root_id and node.instruction == "make it night and add snow"
    assert history.node(rotated.node_id).instruction == "rotate 90"
    assert history.conversation(chat.key).head_id == rotated.node_id
    assert picture(rotated).size == (64, 96)

    await chat("/original")
    await chat("make it day")
    [reply] = await chat("/squash")
    assert reply.error and "two or more" in reply.text


async def test_an_instruction_the_model_cannot_read_is_held_back_until_anyway(chat, history, editor):
    await chat.photo()
    calls = len(editor.calls)
    [reply] = await chat("haz que sea de noche")
    assert reply.error and "Spanish" in reply.text and "/anyway" in reply.text
    [reply] = await chat("make it " + "very " * 80 + "dark")
    assert reply.error and "too long" in reply.text
    assert len(editor.calls) == calls

    [result] = images(await chat("/anyway"))
    assert history.node(result.node_id).instruction.startswith("make it very")
    [reply] = await chat("/anyway")
    assert reply.error and "no instruction waiting" in reply.text


async def test_a_photo_with_a_foreign_caption_is_kept_and_the_caption_held_back(chat, history, editor):
    replies = await chat.photo("сделай ночь")
    assert texts(replies)[-1].error and "Russian" in texts(replies)[-1].text
    assert history.node(history.conversation(chat.key).head_id).parent_id is None
    assert editor.calls == []


async def test_exact_edits_are_lossless_nodes(chat, history):
    await chat.photo(data=_two_colour_photo())
    [rotated] = images(await chat("/rotate 90"))
    node = history.node(rotated.node_id)
    assert node.instruction == "rotate 90" and node.params is None
    assert "Rotated 90° clockwise" in rotated.caption
    assert picture(rotated).size == (64, 96)
    # 90° clockwise: the left (red) half becomes the top.
    assert picture(rotated).getpixel((32, 10)) == (255, 0, 0)

    [flipped] = images(await chat("/flip h"))
    assert picture(flipped).getpixel((32, 10)) == (255, 0, 0)  # symmetric left-right after rotation
    [cropped] = images(await chat("/crop square"))
    assert picture(cropped).size == (64, 64)
    assert {button.press.action for button in cropped.buttons} == {"undo", "compare"}

    [reply] = await chat("/retry")
    assert reply.error and "exact edit" in reply.text
    for bad, hint in (("/rotate 45", "90, 180 or 270"), ("/flip x", "h (left to right)"), ("/crop round", "square")):
        [reply] = await chat(bad)
        assert reply.error and hint in reply.text
    [undone] = images(await chat("/undo"))
    assert undone.node_id == flipped.node_id


async def test_a_reply_to_an_older_result_edits_that_result(chat, history, engine):
    [first] = images(await chat.photo("make it night"))
    await chat("add snow")
    replies = []

    async def send(reply):
        replies.append(reply)

    await engine.handle(Incoming(chat.key, text="add a moon", reply_to=first.node_id), send)
    [result] = images(replies)
    assert history.node(result.node_id).parent_id == first.node_id

    replies.clear()
    await engine.handle(Incoming(chat.key, text="add a moon", reply_to=123456), send)
    assert replies[0].error and "can't find" in replies[0].text


def _two_colour_photo() -> bytes:
    image = Image.new("RGB", (96, 64), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 48, 64))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


async def test_pictures_shown_small_are_never_decoded_whole(chat, monkeypatch):
    """/history, /compare and grids hand stored bytes to core.pictures, which decodes each straight to the size shown:
    24 full-size photos then never sit in memory at once (`editbot bench-images` measures it)."""
    await chat.photo("make it night")  # its picture, kept decoded, is what /variations edits
    import core.picture_cache as picture_cache

    def whole_decode(data):
        raise AssertionError("a picture shown small was decoded at full size")

    monkeypatch.setattr(picture_cache, "decode_stored", whole_decode)
    assert [reply.kind for reply in images(await chat("/history"))] == ["history"]
    assert [reply.kind for reply in images(await chat("/compare"))] == ["compare"]
    assert [reply.kind for reply in images(await chat("/variations 2"))] == ["grid"]
