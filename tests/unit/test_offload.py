"""Database calls and image work run in separate bounded pools: a flood of photos never delays a database answer,
and one person's photos in intake count toward their limit."""

from __future__ import annotations

import asyncio
import threading

from core.offload import in_image_thread, in_thread
from tests.support.chat import texts

FLOOD = 64  # more than any default thread pool has threads


async def _flood_image_pool() -> tuple[threading.Event, list[asyncio.Task]]:
    release = threading.Event()
    blocked = [asyncio.create_task(in_image_thread(release.wait, 30)) for _ in range(FLOOD)]
    await asyncio.sleep(0.1)
    return release, blocked


async def test_a_database_answer_never_waits_behind_image_work(chat):
    await chat.photo()
    release, blocked = await _flood_image_pool()
    try:
        replies = await asyncio.wait_for(chat("/settings"), timeout=10)
        assert texts(replies) and not texts(replies)[0].error
        assert await asyncio.wait_for(in_thread(lambda: "database answer"), timeout=10) == "database answer"
    finally:
        release.set()
        await asyncio.gather(*blocked)


async def test_photo_intake_counts_toward_the_per_person_limit(chat):
    release, blocked = await _flood_image_pool()
    try:
        first = asyncio.create_task(chat.photo())
        await asyncio.sleep(0.1)  # the first photo waits for an image thread
        second = await asyncio.wait_for(chat.photo(), timeout=10)
        assert [reply.text for reply in texts(second)] == [
            "I'm still reading your last photo: send this one again once it is in."]
        assert texts(second)[0].error
    finally:
        release.set()
        await asyncio.gather(*blocked)
    assert "Got your photo" in texts(await first)[0].text
    assert "Got your photo" in texts(await chat.photo())[0].text  # the limit is freed once the photo is in


async def test_steps_run_together_raise_as_one_after_the_other_would():
    from core.offload import together

    second_ran = threading.Event()

    async def first():
        await asyncio.sleep(0.05)  # ends last: its error still comes first
        raise ValueError("first")

    async def second():
        second_ran.set()
        raise KeyError("second")

    try:
        await together(first(), second())
    except ValueError as error:
        assert str(error) == "first" and second_ran.is_set()
    else:
        raise AssertionError("no error")
    assert await together(in_thread(lambda: 1), in_image_thread(lambda: 2)) == [1, 2]
