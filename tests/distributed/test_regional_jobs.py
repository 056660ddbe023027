"""A regional edit in the distributed mode: the front-end records the conversation's region (/only, /except) on the job,
the job table carries it to a worker, whose own segmenter finds the mask; the result keeps the parent's pixels exactly
outside it and its node records the region. Real Redis and job table, the fake editor (it tints every pixel it is
given) and a stand-in segmenter (the left half of any picture) on each side.

Skipped, like the others here (conftest.py), when Redis is not reachable.
"""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pytest

from core.domain import Region
from core.stored_images import decode_stored
from tests.support.chat import Chat, images, texts
from tests.support.cluster import person
from tests.support.fakes import FakeEditor
from tests.support.standins import MaskSegmenter, left_half_mask, photo_like

SIZE = (640, 480)
HALF = SIZE[0] // 2


@pytest.mark.parametrize(
    ("command", "region", "kept", "edited"),
    [
        # /only the left half: the right half stays; /except the left half: the left half stays.
        ("/only the sky", Region("the sky"), np.s_[:, HALF:], np.s_[:, : HALF - 20]),
        ("/except the person", Region("the person", inverse=True), np.s_[:, :HALF], np.s_[:, HALF + 20:]),
    ],
)
async def test_a_regional_job_is_edited_by_a_worker_inside_its_region_only(cluster, command, region, kept, edited):
    parent = photo_like(SIZE)
    upload = io.BytesIO()
    parent.save(upload, "PNG")
    front_segmenter, worker_segmenter = MaskSegmenter(left_half_mask()), MaskSegmenter(left_half_mask())
    engine = cluster.engine(segmenter=front_segmenter)
    await engine.start()
    try:
        chat = Chat(engine, person(1))
        await chat.photo(data=upload.getvalue())
        shown = images(await chat(command))
        assert [image.kind for image in shown] == ["mask"], texts(shown)
        async with cluster.worker_here(FakeEditor(), batch_size=1, segmenter=worker_segmenter):
            reply = await asyncio.wait_for(chat("make it pink"), timeout=20)
    finally:
        await engine.close()
    [result] = images(reply)
    assert region.describe() in result.caption
    [(job_id, state, *_)] = cluster.job_rows()
    assert state == "done" and cluster.jobs.get(job_id).job.region == region
    assert worker_segmenter.asked == [region.words]  # the worker found the mask itself, from the job's words
    head = cluster.history.node(cluster.history.conversation(person(1)).head_id)
    assert head.region == region
    pixels = np.asarray(decode_stored(cluster.images.get(head.image_hash)), np.int16)
    original = np.asarray(parent, np.int16)
    assert np.array_equal(pixels[kept], original[kept])  # outside the region: the parent's pixels exactly
    assert np.abs(pixels[edited] - original[edited]).mean() > 10  # well inside: edited
