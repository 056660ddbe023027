"""Several models behind one chat, through the engine with tiny random twins (core/editing/twins.py): /model
listing and switching, per-family settings, Stronger/Weaker and sweeps, reference pictures, and /retry repeating
the family a node was made by. FLUX.2 klein's twin stands for the families taking several pictures (Qwen's tiny twin
takes about two minutes an edit on 2 cores, so Qwen is tested here through its settings only)."""

from __future__ import annotations

import io

import pytest

from bot.console_adapter import ConsoleChat
from core.conversation.engine import ConversationEngine
from core.domain import ChatKey
from core.editing.loading import build_editor
from core.editing.registry import ModelRegistry, ModelSpec
from core.editing.twins import build_tiny
from core.messages import Incoming
from core.queue import EditQueue
from core.runner import EditRunner
from tests.support.chat import Chat, images, photo_bytes, texts
from tests.support.translation import PhraseBookTranslator

SPECS = [ModelSpec("ip2p", "pix2pix", "tiny"), ModelSpec("klein", "flux2-klein", "tiny"),
         ModelSpec("qwen", "qwen-edit", "tiny")]


def load_twin(spec: ModelSpec):
    pipeline = build_tiny(spec.family)
    pipeline.set_progress_bar_config(disable=True)
    return build_editor(spec.family, pipeline, max_side=64 if spec.family == "pix2pix" else 96)


@pytest.fixture
def models() -> ModelRegistry:
    return ModelRegistry(SPECS, load_twin, keep_loaded=2)


@pytest.fixture
async def engine(history, image_store, models):
    runner = EditRunner(None, history, image_store, models=models)
    engine = ConversationEngine(history, image_store, EditQueue(runner), models=models)
    await engine.start()
    yield engine
    await engine.close()


async def say(chat: Chat, text: str) -> str:
    """The one text reply a command gets."""
    [reply] = texts(await chat(text))
    return reply.text


async def reference(chat: Chat, colour=(200, 30, 30)) -> list:
    """A photo captioned /ref, as every front-end sends it."""
    return await chat._send(Incoming(chat.key, text="/ref", image=photo_bytes(colour=colour)))


async def test_model_lists_the_enabled_models_marking_the_current_one(chat):
    listing = await say(chat, "/model")
    assert "• ip2p — pix2pix, 1 picture · current" in listing
    assert "• klein — flux2-klein, up to 4 pictures (your photo and 3 references with /ref)" in listing
    assert "• qwen — qwen-edit, up to 3 pictures" in listing


async def test_an_unknown_model_is_one_clear_line(chat, history):
    [reply] = await chat("/model dall-e")
    assert reply.error and reply.text == "There is no model called 'dall-e'; choose one of: ip2p, klein, qwen."
    assert history.conversation(chat.key).settings.model == ""


async def test_a_switch_of_family_keeps_the_tree_and_retry_repeats_the_earlier_family(chat, history, models):
    await say(chat, "/steps 2")
    [first] = images(await chat.photo("make it night"))
    made_by_ip2p = history.node(first.node_id)
    assert made_by_ip2p.params.family == "pix2pix" and made_by_ip2p.source == "tiny"

    switched = await say(chat, "/model klein")
    assert "Switched to klein (flux2-klein" in switched and "not loaded yet" in switched
    assert not models.is_loaded("klein")  # lazily: loaded by the edit, not the switch
    await say(chat, "/steps 1")
    [second] = images(await chat("add snow"))
    made_by_klein = history.node(second.node_id)
    assert made_by_klein.parent_id == made_by_ip2p.id  # the tree goes on
    assert (made_by_klein.params.family, made_by_klein.params.model) == ("flux2-klein", "klein")
    assert "flux2-klein · guidance 1 · 1 steps" in second.caption and "model klein" in second.caption

    await say(chat, "/model ip2p")
    await chat("/undo")  # back to the pix2pix edit: /retry repeats pix2pix, whatever the conversation uses
    assert (await say(chat, "/model klein")).startswith("Switched to klein")
    [again] = images(await chat("/retry"))
    retried = history.node(again.node_id)
    assert retried.parent_id == made_by_ip2p.parent_id
    assert (retried.params.family, retried.params.model, retried.params.steps) == ("pix2pix", "", 2)


async def test_settings_and_their_commands_follow_the_family(chat, history):
    await say(chat, "/model qwen")
    shown = await say(chat, "/settings")
    assert "True cfg scale: 4 (how strongly to follow the instruction; /guidance)" in shown
    assert "Negative prompt: none (what the picture should not look like; /negative)" in shown
    await say(chat, "/model klein")
    assert ("Guidance: 1 (how strongly to follow the instruction, on the klein Base models only: the distilled 4B "
            "and 9B ignore it; /guidance)") in await say(chat, "/settings")
    await say(chat, "/model qwen")
    assert "Model: qwen (qwen-edit; /model)" in shown and "Reference pictures: 0 waiting (/ref)" in shown
    assert "Text guidance" not in shown

    assert "negative prompt Blurry, NO Text" in await say(chat, "/negative Blurry, NO Text")
    settings = history.conversation(chat.key).settings
    assert settings.extra("negative_prompt") == "Blurry, NO Text"  # as typed, case kept
    assert "true cfg scale 6" in await say(chat, "/guidance 6")
    [refused] = await chat("/guidance 15")
    assert refused.error and refused.text == "True cfg scale must be a number from 1 to 10."
    [refused] = await chat("/text 5")
    assert refused.error and refused.text == "qwen-edit has no text guidance; /settings lists what it takes."
    settings = history.conversation(chat.key).settings
    assert settings.extra("true_cfg_scale") == 6 and settings.extra("negative_prompt") == "Blurry, NO Text"

    await say(chat, "/model ip2p")
    [refused] = await chat("/negative blurry")
    assert refused.error and refused.text == "pix2pix takes no negative prompt; /settings lists what it takes."
    [refused] = await chat("/guidance 3")
    assert refused.error and "/text and /image" in refused.text


async def test_stronger_and_a_sweep_move_the_one_guidance_of_a_flux_family(chat, history):
    await say(chat, "/model klein")
    await say(chat, "/steps 1")
    await say(chat, "/guidance 3")
    [result] = images(await chat.photo("make it night"))
    edited = history.node(result.node_id)

    replies = await chat.press("stronger", edited.id)
    assert texts(replies)[0].text == "More change: now guidance 3.5 (same seed)."
    stronger = history.node(images(replies)[0].node_id)
    assert stronger.params.extra("guidance") == 3.5 and stronger.params.seed == edited.params.seed
    assert history.conversation(chat.key).settings.extra("guidance") == 3.5
    assert texts(await chat("less"))[0].text == "Less change: now guidance 3 (same seed)."

    [grid] = images(await chat("/sweep"))
    assert len(grid.buttons) == 9  # 1x9: klein has one guidance
    cells = [history.node(button.press.node_id) for button in grid.buttons]
    assert [cell.params.extra("guidance") for cell in cells] == [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0]
    assert all(cell.params.family == "flux2-klein" for cell in cells)


async def test_a_reference_picture_goes_with_the_next_edit_as_picture_2(chat, history, image_store):
    await say(chat, "/model klein")
    await say(chat, "/steps 1")
    [added] = texts(await reference(chat))
    assert added.text.startswith("Reference picture 2 added.") and "“picture 2”" in added.text
    [waiting] = history.conversation(chat.key).references
    assert image_store.exists(waiting)

    [result] = images(await chat.photo("put the hat from picture 2 on her"))
    node = history.node(result.node_id)
    assert node.inputs == (waiting,) and "(with 2 pictures)" in result.caption
    assert history.conversation(chat.key).references == ()  # for the next edit only
    assert f"Reference pictures: picture 2 ({waiting[:12]})" in await say(chat, "/info")
    assert "(klein, +1 reference picture)" in texts(await chat("/history"))[0].text
    [again] = images(await chat("/retry"))
    assert history.node(again.node_id).inputs == (waiting,)


async def test_a_reference_on_a_one_picture_model_is_one_clear_reply(chat, history):
    [reply] = await reference(chat)
    assert reply.error and reply.text.startswith("This model (pix2pix) edits one picture only")
    assert history.conversation(chat.key).references == ()
    assert history.conversation(chat.key).head_id is None  # nor is it taken for a new photo


async def test_too_many_references_and_a_switch_to_a_one_picture_model(chat, history):
    await say(chat, "/model qwen")
    for colour in ((1, 2, 3), (4, 5, 6)):
        await reference(chat, colour)
    [refused] = await reference(chat, (7, 8, 9))
    assert refused.error and "at most 2 reference pictures" in refused.text
    assert len(history.conversation(chat.key).references) == 2
    switched = await say(chat, "/model ip2p")
    assert "The reference pictures waiting were dropped" in switched
    assert history.conversation(chat.key).references == ()


async def test_the_terminal_chat_sends_ref_path_as_a_photo_captioned_ref(tmp_path):
    received = []

    class Recorder:
        async def handle(self, incoming, send):
            received.append(incoming)

    picture = tmp_path / "hat.jpg"
    picture.write_bytes(photo_bytes())
    output = io.StringIO()
    console = ConsoleChat(Recorder(), tmp_path / "out", output=output, key=ChatKey("console", "t", "me"))
    await console.say(f"/ref {picture}")
    await console.say("/ref clear")
    await console.say(f"/ref {tmp_path / 'missing.jpg'}")
    assert [(incoming.text, incoming.image) for incoming in received] == [("/ref", picture.read_bytes()),
                                                                         ("/ref clear", None)]
    assert "! Cannot read" in output.getvalue()


async def test_a_single_model_bot_lists_its_one_model_and_says_references_have_no_use(history, image_store, editor):
    engine = ConversationEngine(history, image_store, EditQueue(EditRunner(editor, history, image_store)))
    await engine.start()
    try:
        chat = Chat(engine, ChatKey("test", "chat-1", "alice"))
        assert await say(chat, "/model") == ("Models (/model NAME switches; your next edit uses it):\n"
                                             "• default — pix2pix, 1 picture · current")
        [reply] = await reference(chat)
        assert reply.error and reply.text == ("This model (pix2pix) edits one picture only, so it takes no reference "
                                              "pictures: none of the models on this bot takes several.")
        assert "Model:" not in await say(chat, "/settings")
    finally:
        await engine.close()


async def test_the_bootstrap_loads_the_default_model_and_the_others_on_their_first_edit(monkeypatch, history,
                                                                                      image_store, segmenter):
    from bot.bootstrap import build_engine
    from core.config import Settings

    monkeypatch.setenv("EDITBOT_MODELS", "ip2p=tiny, klein=flux2-klein:tiny")
    monkeypatch.setenv("EDITBOT_DEVICE", "cpu")
    monkeypatch.setenv("EDITBOT_SAFETY_CHECKER", "false")
    monkeypatch.setenv("EDITBOT_WARMUP", "false")
    monkeypatch.setenv("EDITBOT_TRANSLATION_MODEL", "none")
    engine = build_engine(Settings(), storage=(history, image_store), segmenter=segmenter)
    await engine.start()
    try:
        models = engine._core.models
        assert models.loaded() == ["ip2p"]  # the default, at start-up as always
        chat = Chat(engine, ChatKey("test", "chat-1", "alice"))
        assert "not loaded yet" in await say(chat, "/model klein")
        await say(chat, "/steps 1")
        [result] = images(await chat.photo("make it night"))
        node = history.node(result.node_id)
        assert (node.params.family, node.params.model, node.source) == ("flux2-klein", "klein", "tiny")
        assert models.loaded() == ["klein"]  # EDITBOT_MODELS_LOADED=1: the default made room for it
    finally:
        await engine.close()


async def test_a_translation_corrected_after_a_switch_runs_on_the_model_that_made_the_edit(history, image_store,
                                                                                          models):
    translator = PhraseBookTranslator({"rends la photo enneigée": "make the photo snowy"})
    runner = EditRunner(None, history, image_store, models=models)
    engine = ConversationEngine(history, image_store, EditQueue(runner), models=models, translator=translator)
    await engine.start()
    try:
        chat = Chat(engine, ChatKey("test", "chat-1", "alice"))
        await say(chat, "/model klein")
        await say(chat, "/steps 1")
        [translated] = images(await chat.photo("rends la photo enneigée"))
        made = history.node(translated.node_id)
        await say(chat, "/model ip2p")  # the conversation moves on; the correction is still klein's edit

        [corrected] = images(await chat("/meant cover the photo in snow"))
        again = history.node(corrected.node_id)
        assert again.parent_id == made.parent_id and again.instruction == "cover the photo in snow"
        assert again.params == made.params  # model, family, steps and seed: only the words changed
    finally:
        await engine.close()


async def test_a_reference_picture_counts_toward_the_persons_storage(chat, history, image_store):
    await say(chat, "/model klein")
    await chat.photo()
    before = history.stored_bytes(chat.key.person)
    await reference(chat)
    [digest] = history.conversation(chat.key).references
    assert history.stored_bytes(chat.key.person) == before + len(image_store.get(digest))
