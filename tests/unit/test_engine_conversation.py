"""Conversations as tests: what a person sends, what the engine answers, what the history becomes."""

from __future__ import annotations

from core.domain import ChatKey
from tests.support.chat import Chat, images, progress, texts


async def head(chat: Chat, history):
    conversation = history.conversation(chat.key)
    return history.node(conversation.head_id) if conversation.head_id else None


async def test_photo_with_caption_edits_it_and_says_what_was_done(chat, history):
    replies = await chat.photo("make it night")

    steps = [reply for reply in progress(replies) if reply.total]
    assert [reply.step for reply in steps] == list(range(1, 21))
    [result] = images(replies)
    assert "“make it night”" in result.caption
    for fact in ("text guidance 7.5", "image guidance 1.5", "20 steps", "seed ", " s"):
        assert fact in result.caption
    node = history.node(result.node_id)
    assert node.instruction == "make it night" and node.params.seed is not None
    assert str(node.params.seed) in result.caption
    root = history.node(node.parent_id)
    assert root.parent_id is None and root.instruction is None
    assert (await head(chat, history)).id == node.id
    assert {button.press.action for button in result.buttons} == {"undo", "retry", "stronger", "weaker", "compare"}
    assert all(button.press.node_id == node.id for button in result.buttons)


async def test_photo_alone_asks_what_to_change_then_text_edits_it(chat, history):
    replies = await chat.photo()
    assert not images(replies)
    assert "What should I change" in texts(replies)[0].text
    root = await head(chat, history)

    [result] = images(await chat("add snow"))
    assert history.node(result.node_id).parent_id == root.id


async def test_a_photo_captioned_with_a_command_runs_the_command_on_it(chat, history, editor):
    replies = await chat.photo("/rotate 90")
    [rotated] = images(replies)
    node = history.node(rotated.node_id)
    assert node.instruction == "rotate 90" and history.node(node.parent_id).parent_id is None
    assert editor.calls == []


async def test_text_without_a_photo_asks_for_one(chat, history):
    [reply] = await chat("make it night")
    assert reply.error and reply.text == "Send me a photo first."
    assert history.conversation(chat.key).head_id is None


async def test_each_instruction_refines_the_last_result(chat, history):
    [first] = images(await chat.photo("make it night"))
    [second] = images(await chat("add stars"))
    assert history.node(second.node_id).parent_id == first.node_id
    assert [node.instruction for node in history.path(second.node_id)] == [None, "make it night", "add stars"]


async def test_undo_and_redo_walk_the_history(chat, history):
    [first] = images(await chat.photo("make it night"))
    [second] = images(await chat("add stars"))

    [undone] = images(await chat("/undo"))
    assert undone.node_id == first.node_id and "Undone" in undone.caption
    assert (await head(chat, history)).id == first.node_id
    assert "redo" in {button.press.action for button in undone.buttons}

    [redone] = images(await chat("/redo"))
    assert redone.node_id == second.node_id
    [reply] = await chat("/redo")
    assert reply.error and reply.text == "Nothing to redo."


async def test_undo_past_the_original_says_so(chat):
    await chat.photo()
    [reply] = await chat("/undo")
    assert reply.error and "original photo" in reply.text


async def test_a_new_edit_after_undo_starts_a_branch_and_keeps_the_old_one(chat, history):
    [night] = images(await chat.photo("make it night"))
    root_id = history.node(night.node_id).parent_id
    await chat("/undo")
    [snow] = images(await chat("add snow"))

    assert history.node(snow.node_id).parent_id == root_id
    assert [child.id for child in history.children(root_id)] == [night.node_id, snow.node_id]
    # Redo follows the branch we most recently came back from.
    await chat("/undo")
    [redone] = images(await chat("/redo"))
    assert redone.node_id == snow.node_id


async def test_history_numbers_the_path_and_goto_jumps(chat, history):
    await chat.photo("make it night")
    [stars] = images(await chat("add stars"))
    await chat("/undo")

    listing, sheet = await chat("/history")
    lines = listing.text.splitlines()[1:]
    assert lines == ["0. original photo", "1. “make it night”  ◀ you are here", "2. “add stars”"]

    [jumped] = images(await chat("/goto 2"))
    assert jumped.node_id == stars.node_id
    [zero] = images(await chat("/goto 0"))
    assert history.node(zero.node_id).parent_id is None

    for bad in ("/goto 3", "/goto x", "/goto"):
        [reply] = await chat(bad)
        assert reply.error and "0 to 2" in reply.text and "\n" not in reply.text


async def test_retry_makes_a_sibling_with_a_new_seed(chat, history, editor):
    [first] = images(await chat.photo("make it night"))
    [again] = images(await chat("/retry"))
    a, b = history.node(first.node_id), history.node(again.node_id)
    assert a.parent_id == b.parent_id and a.id != b.id
    assert b.instruction == "make it night" and a.params.seed != b.params.seed


async def test_original_and_reset(chat, history):
    await chat.photo("make it night")
    await chat("add stars")
    [original] = images(await chat("/original"))
    assert history.node(original.node_id).parent_id is None

    await chat("/text 12")
    [reply] = await chat("/reset")
    assert not reply.error
    conversation = history.conversation(chat.key)
    assert conversation.head_id is None and conversation.settings.text_guidance == 7.5
    [reply] = await chat("more stars")
    assert reply.text == "Send me a photo first."


async def test_settings_commands_change_the_next_edit(chat, history, editor):
    for command in ("/text 9", "/image 1.2", "/steps 5", "/seed 42"):
        [reply] = await chat(command)
        assert not reply.error, reply.text
    [shown] = await chat("/settings")
    for fact in ("Text guidance: 9", "Image guidance: 1.2", "Steps: 5", "Seed: 42"):
        assert fact in shown.text

    [result] = images(await chat.photo("make it night"))
    params = history.node(result.node_id).params
    assert (params.text_guidance, params.image_guidance, params.steps, params.seed) == (9, 1.2, 5, 42)

    await chat("/seed random")
    assert history.conversation(chat.key).settings.seed is None


async def test_bad_arguments_get_one_line_saying_what_is_allowed(chat, history):
    before = history.conversation(chat.key).settings
    cases = {
        "/text abc": "from 1 to 20",
        "/text 99": "from 1 to 20",
        "/text nan": "from 1 to 20",
        "/image -1": "from 0 to 5",
        "/steps 0": "from 1 to 100",
        "/steps 2.5": "from 1 to 100",
        "/seed -3": "random",
        "/frobnicate": "/help",
    }
    for command, hint in cases.items():
        [reply] = await chat(command)
        assert reply.error, command
        assert hint in reply.text and "\n" not in reply.text, (command, reply.text)
    assert history.conversation(chat.key).settings == before


async def test_help_lists_every_command_from_its_docstring(chat, engine):
    [reply] = await chat("/help")
    names = {info.name for info in engine.commands}
    assert {"start", "help", "undo", "redo", "history", "goto", "retry", "original", "reset", "settings",
            "text", "image", "steps", "seed", "cancel"} <= names
    for info in engine.commands:
        assert f"{info.usage} — {info.summary}" in reply.text


async def test_telegram_help_says_what_anonymous_admins_share(chat, engine):
    [telegram] = await Chat(engine, ChatKey("telegram", "-100", "-100"))("/help")
    assert "anonymous admins share one" in telegram.text
    [elsewhere] = await chat("/help")
    assert "anonymous" not in elsewhere.text


async def test_a_broken_photo_is_refused_in_one_line_and_records_nothing(chat, history):
    replies = await chat.photo("make it night", data=b"<html>not a photo</html>")
    [reply] = replies
    assert reply.error and "\n" not in reply.text
    assert history.conversation(chat.key).head_id is None


async def test_an_empty_instruction_edits_nothing(chat, history):
    await chat.photo()
    [reply] = await chat("   ")
    assert not reply.error and "Send me a photo" in reply.text


async def test_conversations_in_a_group_are_per_person(engine, history):
    alice = Chat(engine, ChatKey("test", "group", "alice"))
    bob = Chat(engine, ChatKey("test", "group", "bob"))
    await alice.photo("make it night")
    [reply] = await bob("add snow")
    assert reply.text == "Send me a photo first."
