"""The soak's verdict: flat means no growth after the warm-up minute, whatever the saw-tooth within each minute."""

from bot.distributed.soak import flatness

SLACK = {"stream_length": 12, "own_keys_kb": 64}


def _samples(stream_length, own_keys_kb=lambda at: 15.0, minutes: int = 5) -> list[dict]:
    """One sample every 5 s, then the one after the drain."""
    samples = [{"at_s": at, "stream_length": stream_length(at), "own_keys_kb": own_keys_kb(at)}
               for at in range(0, minutes * 60, 5)]
    return samples + [{"at_s": minutes * 60 + 30, "stream_length": 0, "own_keys_kb": 1.0}]


def test_a_saw_tooth_that_does_not_grow_is_flat():
    assert flatness(_samples(lambda at: 6 + (40 if at % 60 == 5 else 0)), SLACK) == {
        "stream_length": True, "own_keys_kb": True}


def test_a_stream_refilling_more_each_minute_is_not_flat():
    verdict = flatness(_samples(lambda at: at // 2), SLACK)
    assert verdict == {"stream_length": False, "own_keys_kb": True}


def test_memory_growing_past_the_slack_is_not_flat():
    verdict = flatness(_samples(lambda at: 6, own_keys_kb=lambda at: at), SLACK)
    assert verdict == {"stream_length": True, "own_keys_kb": False}


def test_a_run_without_a_minute_after_the_warm_up_cannot_tell():
    assert flatness(_samples(lambda at: 6, minutes=1), SLACK) is None
