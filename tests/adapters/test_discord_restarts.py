"""Discord: buttons and boxes (modals) outlive the process that drew them. A button or box from before a restart, one
left open for a long time, or one whose custom_id this bot does not read (an older version's, a forged one) is
answered: by doing what it says, or with one line; never Discord's "This interaction failed". So is a command a
person's Discord still lists after an update changed it, and a box sent back empty or by someone it is not for."""

from __future__ import annotations

import pytest

from bot.discord_adapter import build_client
from tests.adapters.test_discord import edit
from tests.support.chat import photo_bytes
from tests.support.translation import PhraseBookTranslator

FRENCH = "rends la photo enneigée"
OUT_OF_DATE = "That button is out of date."


@pytest.fixture
def translator() -> PhraseBookTranslator:
    return PhraseBookTranslator({FRENCH: "make the photo sunny"})


def forge(env, message, custom_id: str) -> None:
    """Give the first button under `message` another custom_id, as an older version of the bot (or a forger)
    might have left it."""
    stored = env.backend.get_message(message.channel_id, message.id)
    stored.components[0]["components"][0]["custom_id"] = custom_id


def answer_of(result) -> str:
    [message] = [result.response] if result.response is not None else result.followups
    assert message.ephemeral
    return message.content


@pytest.mark.parametrize("custom_id", [
    "editbot:Undo:1",  # not a Press: an upper-case action
    "editbot:" + "a" * 40 + ":1",  # an action longer than any
    "editbot:undo",  # no node
    "someone-else:42",  # not ours at all
])
async def test_a_button_whose_custom_id_nothing_reads_gets_one_line(world, editor, custom_id):
    env, _, channel, alice, _ = world
    [result] = (await edit(alice, channel)).followups
    forge(env, result, custom_id)

    pressed = await alice.click(result, custom_id=custom_id)

    assert pressed.acknowledged
    assert answer_of(pressed) == OUT_OF_DATE
    assert len(editor.calls) == 1


async def test_buttons_survive_a_restart(world, settings, engine):
    env, _, channel, alice, _ = world
    await edit(alice, channel)
    refined = (await alice.slash(channel, "refine", instruction="now add a rainbow")).followups[0]

    await env.restart_bot(build_client(settings, engine))
    pressed = await alice.click(refined, label="↶ Undo")

    assert pressed.followups[0].content.startswith("Undone.")


async def open_fix_translation(alice, channel):
    [result] = (await edit(alice, channel, FRENCH)).followups
    shown = await alice.click(result, label="✎ Fix translation")
    assert shown.modal is not None
    return shown


async def test_a_fix_translation_box_opened_before_a_restart_still_corrects(world, settings, engine, editor):
    env, _, channel, alice, _ = world
    shown = await open_fix_translation(alice, channel)

    await env.restart_bot(build_client(settings, engine))
    submitted = await alice.submit_modal(shown, {"english": "cover the photo in snow"})

    [corrected] = submitted.followups
    assert corrected.content.startswith("“cover the photo in snow” (from French)") and corrected.attachments
    assert editor.calls[-1][0] == "cover the photo in snow"


async def test_a_fix_translation_box_left_open_for_long_still_corrects(world, editor):
    env, _, channel, alice, _ = world
    shown = await open_fix_translation(alice, channel)

    await env.advance_time(20 * 60)  # longer than discord.py keeps a modal waiting
    submitted = await alice.submit_modal(shown, {"english": "cover the photo in snow"})

    assert submitted.followups[0].content.startswith("“cover the photo in snow”")
    assert editor.calls[-1][0] == "cover the photo in snow"


async def test_an_edit_this_image_box_opened_before_a_restart_still_edits(world, settings, engine, editor):
    env, _, channel, alice, _ = world
    message = await alice.send(channel, "look", attachments=[("cat.jpg", photo_bytes())])
    shown = await alice.context_menu(channel, "Edit this image", message)

    await env.restart_bot(build_client(settings, engine))
    submitted = await alice.submit_modal(shown, {"instruction": "make it a watercolour"})

    assert "make it a watercolour" in submitted.followups[0].content and submitted.followups[0].attachments
    assert [call[0] for call in editor.calls] == ["make it a watercolour"]


async def test_a_box_whose_custom_id_nothing_reads_gets_one_line(world, editor):
    _, _, channel, alice, _ = world
    message = await alice.send(channel, "look", attachments=[("cat.jpg", photo_bytes())])
    shown = await alice.context_menu(channel, "Edit this image", message)
    shown._interaction.modal["custom_id"] = "an-older-version:box"

    submitted = await alice.submit_modal(shown, {"instruction": "make it a watercolour"})

    assert submitted.acknowledged
    assert "out of date" in answer_of(submitted)
    assert editor.calls == []


async def test_an_edit_this_image_box_whose_picture_is_gone_says_so(world, settings, engine, editor):
    env, _, channel, alice, _ = world
    message = await alice.send(channel, "look", attachments=[("cat.jpg", photo_bytes())])
    shown = await alice.context_menu(channel, "Edit this image", message)
    await alice.delete(message)

    await env.restart_bot(build_client(settings, engine))
    submitted = await alice.submit_modal(shown, {"instruction": "make it a watercolour"})

    assert "choose Edit this image on it again" in answer_of(submitted)
    assert editor.calls == []


async def test_someone_else_s_fix_translation_box_is_refused_as_their_button(world, editor):
    _, _, channel, alice, bob = world
    [result] = (await edit(alice, channel, FRENCH)).followups
    shown = await bob.click(result, label="✎ Fix translation")

    submitted = await bob.submit_modal(shown, {"english": "cover the photo in snow"})

    assert "someone else's edits" in answer_of(submitted)
    assert len(editor.calls) == 1


async def test_a_command_discord_still_shows_after_an_update_gets_one_line(world):
    env, _, channel, alice, _ = world
    env.bot.tree.remove_command("undo")  # as if this version no longer had it, and Discord had not caught up

    result = await alice.slash(channel, "undo")

    assert "That command has changed" in answer_of(result)
    assert [type(error).__name__ for error in env.errors] == ["CommandNotFound"]  # what discord.py reports


async def test_an_empty_fix_translation_box_says_so(world, editor):
    _, _, channel, alice, _ = world
    shown = await open_fix_translation(alice, channel)

    submitted = await alice.submit_modal(shown, {"english": "   "})

    assert answer_of(submitted) == "The box was empty, so nothing changed: type the English you meant in it."
    assert len(editor.calls) == 1
