"""Retrying through outages (bot/distributed/outage.py): the backoff every caller of a service shares must not take
away a caller's own retries once the service is back."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis

from bot.distributed.outage import Outages



def _long_outage() -> Outages:
    """Outages after Redis failed many times: its next wait has grown to the longest (5 s)."""
    outages = Outages()
    for _ in range(10):
        outages.failed(redis.exceptions.ConnectionError("refused"))
    return outages


def _fails_once():
    calls = []

    def call() -> str:
        calls.append(time.monotonic())
        if len(calls) == 1:  # a connection left stale by the restart
            raise redis.exceptions.ConnectionError("Connection closed by server.")
        return "queued"

    return call, calls


def test_a_call_after_a_long_outage_gets_its_second_try_within_its_allowance():
    call, calls = _fails_once()
    started = time.monotonic()
    assert _long_outage().retry(call, "Redis", give_up_after=1.0) == "queued"
    assert len(calls) == 2 and time.monotonic() - started < 1.5  # waited the time left, not the 5 s backoff


def test_the_async_retry_also_keeps_its_second_try():
    call, calls = _fails_once()

    async def call_async() -> str:
        return call()

    assert asyncio.run(_long_outage().retry_async(call_async, "Redis", give_up_after=1.0)) == "queued"
    assert len(calls) == 2


def test_a_service_still_out_is_given_up_once_the_allowance_is_spent():
    calls = []

    def call() -> None:
        calls.append(1)
        raise redis.exceptions.ConnectionError("refused")

    started = time.monotonic()
    with pytest.raises(redis.exceptions.ConnectionError):
        Outages().retry(call, "Redis", give_up_after=0.5)
    assert 0.45 < time.monotonic() - started < 1.5 and len(calls) >= 3


def test_other_errors_are_raised_at_once():
    def call() -> None:
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError):
        Outages().retry(call, "Redis", give_up_after=10)
