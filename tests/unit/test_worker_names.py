"""A worker's name (its Redis consumer and lease) is never a dead worker's, even with the same host and pid."""

from __future__ import annotations

import os
import socket

from bot.distributed.worker import EditWorker


def test_two_workers_with_the_same_host_and_pid_have_different_names():
    first, second = (EditWorker(None, None, None, queue_name="editbot").name for _ in range(2))
    assert first != second
    for name in (first, second):  # host first, pid last: what operators read in logs
        assert name.startswith(f"{socket.gethostname()}:") and name.endswith(f":{os.getpid()}")


def test_a_name_given_is_kept():
    assert EditWorker(None, None, None, queue_name="editbot", name="gpu-1").name == "gpu-1"
