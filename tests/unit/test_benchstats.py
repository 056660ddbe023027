"""The paired statistics both benches report, and the machine-load reading beside them."""

import pytest

from core.benchstats import MachineLoad, paired_summary, round_order, spread


def test_spread_gives_median_quartiles_and_iqr_as_a_share_of_the_median():
    figures = spread([1.0, 2.0, 3.0, 4.0, 5.0])
    assert figures["median"] == 3.0
    assert (figures["q1"], figures["q3"]) == (2.0, 4.0)
    assert figures["iqr_pct"] == pytest.approx(66.7)


def test_one_value_has_no_spread():
    assert spread([2.5]) == {"median": 2.5, "q1": 2.5, "q3": 2.5, "iqr_pct": 0.0}


def test_paired_speedup_follows_each_pair_not_the_overall_medians():
    # a burst of load slows both halves of the third pair alike: its ratio stays 2
    stock = [10.0, 10.0, 40.0, 10.0]
    ours = [5.0, 5.0, 20.0, 5.0]
    summary = paired_summary(stock, ours)
    assert summary["ratio"]["median"] == 2.0
    assert summary["ratio"]["iqr_pct"] == 0.0
    assert summary["pairs"] == 4
    assert (summary["baseline_median"], summary["median"]) == (10.0, 5.0)


def test_throughput_gain_is_candidate_over_baseline():
    summary = paired_summary([4.0, 4.0], [12.0, 8.0], higher_is_better=True)
    assert summary["ratio"]["median"] == 2.5


def test_pairs_must_match():
    with pytest.raises(ValueError):
        paired_summary([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        paired_summary([], [])


def test_rounds_alternate_order():
    assert round_order(["a", "b", "c"], 0) == ["a", "b", "c"]
    assert round_order(["a", "b", "c"], 1) == ["c", "b", "a"]


def test_machine_load_reports_a_share_between_0_and_1():
    with MachineLoad() as load:
        sum(range(200_000))
    figures = load.figures()
    assert set(figures) == {"cpus", "load_average_before", "load_average_after", "others_cpu_share", "warning"}
    if figures["others_cpu_share"] is not None:  # Linux
        assert 0.0 <= figures["others_cpu_share"] <= 1.0


def test_machine_load_warns_only_above_the_threshold():
    load = MachineLoad(others_share=0.05)
    assert load.warning is None
    load.others_share = 0.4
    assert "40%" in load.warning
