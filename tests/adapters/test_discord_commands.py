"""Discord's command tree: generated from the engine's commands (descriptions, option limits), and /admin, which
only server managers see and only the engine's admins may use. SimCord as in test_discord.py."""

from __future__ import annotations

import discord
import pytest
import simcord

from bot.discord_adapter import build_client
from core.commands import unknown_command
from core.conversation.admin import AdminCommands
from core.conversation.engine import ConversationEngine
from core.queue import EditQueue
from core.runner import EditRunner
from tests.adapters.test_discord import edit


async def test_descriptions_come_from_the_engine(simcord_bot, engine):
    summaries = {info.name: info.summary for info in engine.commands}
    commands = {command.name: command for command in simcord_bot.tree.get_commands()}

    assert commands["undo"].description == summaries["undo"]
    assert commands["edit"].description.startswith("Edit a photo")
    # Every public engine command exists here, so Discord's /help lists only commands Discord has.
    slash = {command.name for command in simcord_bot.tree.get_commands(type=discord.AppCommandType.chat_input)}
    assert set(summaries) <= slash and slash - set(summaries) == {"edit", "refine", "admin"}


def test_option_limits_come_from_the_engine_s_constants(simcord_bot):
    from core.conversation.grids import MAX_CELLS, MAX_VARIATIONS
    from core.domain import STEPS_RANGE

    def limits(name: str) -> tuple:
        [option] = simcord_bot.tree.get_command(name).parameters
        return option.min_value, option.max_value, option.required

    assert limits("variations") == (1, MAX_VARIATIONS, False)
    assert limits("pick") == (1, MAX_CELLS, True)
    [label] = simcord_bot.tree.get_command("goto").parameters
    assert label.type.name == "string" and not label.required and not label.choices  # a free label, like 2b
    assert limits("steps") == (*STEPS_RANGE, True)
    [direction] = simcord_bot.tree.get_command("flip").parameters
    assert [(choice.name, choice.value) for choice in direction.choices] == [("left to right", "h"),
                                                                             ("top to bottom", "v")]
    assert simcord_bot.tree.get_command("crop").parameters == []  # its one choice is filled in


@pytest.fixture
async def admin_world(world, settings, editor, history, image_store):
    """The world plus two server managers, `admin` (listed in EDITBOT_ADMIN_IDS) and `manager` (not listed), and the
    bot restarted over an engine with the admin commands."""
    env, guild, channel, _, _ = world
    managers = guild.create_role("managers", permissions=discord.Permissions(manage_guild=True))
    admin = guild.add_member(env.create_user("admin"), roles=[managers])
    manager = guild.add_member(env.create_user("manager"), roles=[managers])
    queue = EditQueue(EditRunner(editor, history, image_store))
    engine = ConversationEngine(history, image_store, queue,
                                command_groups=[AdminCommands(queue, history, {f"discord:{admin.id}"})])
    await engine.start()
    await env.restart_bot(build_client(settings, engine))
    yield env, channel, admin, manager, queue
    await engine.close()


async def test_admin_command_answers_an_admin_privately(admin_world):
    env, channel, admin, _, queue = admin_world

    status = await admin.slash(channel, "admin", command="queue")
    paused = await admin.slash(channel, "admin", command="pause")

    assert status.ephemeral and status.response.content.startswith("Queue: taking edits.")
    assert paused.ephemeral and paused.response.content.startswith("Paused:")
    assert queue.status.paused


async def test_admin_usage_takes_the_number(admin_world):
    env, channel, admin, _, _ = admin_world
    await edit(admin, channel)

    usage = await admin.slash(channel, "admin", command="usage", number=1)

    assert usage.response.content == f"Edits in the last 7 days:\n1. discord:{admin.id}: 1"


async def test_admin_command_refuses_a_manager_not_listed_as_unknown(admin_world):
    env, channel, _, manager, queue = admin_world

    refused = await manager.slash(channel, "admin", command="pause")

    assert refused.ephemeral and refused.response.content == str(unknown_command("pause"))
    assert not queue.status.paused


async def test_admin_command_is_hidden_from_members_who_do_not_manage_the_server(admin_world, world):
    env, channel, _, _, queue = admin_world
    alice = world[3]

    with pytest.raises(simcord.SetupError, match="not visible"):
        await alice.slash(channel, "admin", command="pause")
    assert not queue.status.paused
