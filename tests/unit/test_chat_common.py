"""The pieces every chat front-end shares: admission, upload pre-checks, progress throttling."""

from __future__ import annotations

import pytest

from bot.chat_common import ProgressThrottle, admitted, over_limit, refuse_declared_size
from core.errors import BadImage


def test_an_empty_allowlist_admits_everyone_else_one_id_must_be_on_it():
    assert admitted(set(), 1, 2)
    assert admitted({2}, 1, 2) and admitted({1}, 1, None)
    assert not admitted({3}, 1, 2)


def test_a_declared_size_over_the_limit_is_refused_showing_the_real_difference():
    refuse_declared_size(None, 10)
    refuse_declared_size(10, 10)
    with pytest.raises(BadImage, match=r"That file is 20\.01 MB; the most I accept is 20\.00 MB\."):
        refuse_declared_size(20 * 1024 * 1024 + 10_000, 20 * 1024 * 1024, "file")
    assert over_limit(20 * 1024 * 1024) == "That file is over 20 MB, the most I can take."


def test_progress_is_redrawn_at_most_once_per_interval_per_key():
    throttle = ProgressThrottle(interval=60)
    assert throttle.due("chat")
    throttle.drawn("chat")
    assert not throttle.due("chat") and throttle.due("other chat")
    assert ProgressThrottle(interval=0).due("chat")
