"""Buttons carry the node they act on; the engine checks it belongs to the person pressing."""

from __future__ import annotations

from core.domain import ChatKey
from tests.support.chat import Chat, images


async def test_undo_button_goes_to_the_parent_of_its_node(chat, history):
    [first] = images(await chat.photo("make it night"))
    [second] = images(await chat("add stars"))
    [shown] = images(await chat.press("undo", second.node_id))
    assert shown.node_id == first.node_id
    assert history.conversation(chat.key).head_id == first.node_id


async def test_redo_button_returns_to_the_undone_edit(chat, history):
    [first] = images(await chat.photo("make it night"))
    [undone] = images(await chat.press("undo", first.node_id))
    [redone] = images(await chat.press("redo", undone.node_id))
    assert redone.node_id == first.node_id


async def test_retry_button_repeats_that_results_settings_with_a_new_seed(chat, history):
    await chat("/text 9")
    [first] = images(await chat.photo("make it night"))
    await chat("/text 3")
    [again] = images(await chat.press("retry", first.node_id))
    a, b = history.node(first.node_id), history.node(again.node_id)
    assert a.parent_id == b.parent_id
    assert b.params.text_guidance == 9 and b.params.seed != a.params.seed


async def test_stronger_and_weaker_retune_keep_the_seed_and_become_the_settings(chat, history):
    [first] = images(await chat.photo("make it night"))
    [stronger] = images(await chat.press("stronger", first.node_id))
    a, b = history.node(first.node_id).params, history.node(stronger.node_id).params
    assert b.text_guidance > a.text_guidance and b.image_guidance < a.image_guidance
    assert b.seed == a.seed
    assert "text guidance 9" in stronger.caption
    settings = history.conversation(chat.key).settings
    assert (settings.text_guidance, settings.image_guidance) == (b.text_guidance, b.image_guidance)

    [weaker] = images(await chat.press("weaker", stronger.node_id))
    c = history.node(weaker.node_id).params
    assert c.text_guidance < b.text_guidance and c.image_guidance > b.image_guidance


async def test_a_strangers_press_is_refused_and_changes_nothing(engine, history, editor):
    alice = Chat(engine, ChatKey("test", "group", "alice"))
    mallory = Chat(engine, ChatKey("test", "group", "mallory"))
    [result] = images(await alice.photo("make it night"))
    before = history.conversation(alice.key)
    calls = len(editor.calls)

    for action in ("undo", "retry", "stronger", "redo"):
        [reply] = await mallory.press(action, result.node_id)
        assert reply.error and "someone else" in reply.text
    assert history.conversation(alice.key) == before
    assert len(editor.calls) == calls
    assert history.conversation(mallory.key).head_id is None


async def test_a_stale_or_forged_press_is_answered_and_changes_nothing(chat, history):
    [result] = images(await chat.photo("make it night"))
    before = history.conversation(chat.key)
    [reply] = await chat.press("undo", 999_999)
    assert reply.error and "out of date" in reply.text
    [reply] = await chat.press("explode", result.node_id)
    assert reply.error and "out of date" in reply.text
    assert history.conversation(chat.key) == before


async def test_a_result_reads_its_tree_once_for_its_label_and_its_redo_button(chat, history, monkeypatch):
    reads = []
    for name in ("tree", "children"):
        read = getattr(history, name)
        monkeypatch.setattr(history, name, lambda node_id, read=read, name=name: reads.append(name) or read(node_id))
    [first] = images(await chat.photo("make it night"))
    assert reads == ["tree"]
    assert first.label == "1" and "redo" not in actions(first)
    [undone] = images(await chat.press("undo", first.node_id))
    assert undone.label == "0" and "redo" in actions(undone)


def actions(reply) -> list[str]:
    return [button.press.action for button in reply.buttons]
