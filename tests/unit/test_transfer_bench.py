"""`editbot bench --transfer` prints the figures issue 14 asks for: per-edit time of the transfer (CPU and wall) and
the peak memory it and a full-size node's storage path add (run here on a small picture: the figures' presence and
sense, not their size, which is the benchmark's business)."""

from __future__ import annotations

import json

from core.editing.transfer_bench import run_transfer_benchmark


def test_the_transfer_bench_prints_time_and_peak_memory(capsys) -> None:
    figures = run_transfer_benchmark(side=640, repeats=2, as_json=True)
    assert json.loads(capsys.readouterr().out) == figures
    cases = {case["case"]: case for case in figures["cases"]}
    for name in ("transfer: identity", "transfer: rectangle +40 red", "transfer: whole-picture tint"):
        assert cases[name]["cpu_ms"] >= 0 and cases[name]["wall_ms"] >= 0
    assert figures["rounds"] == 2
    assert figures["peak_added_mib"] >= 0
    peaks = figures["edit_peak_mib"]
    assert peaks["added"] == peaks["full_size"] - peaks["working_size_before"]
    assert figures["identity_psnr_db"] == float("inf") > figures["downscale_upscale_psnr_db"]


def test_the_table_names_both_figures(capsys) -> None:
    run_transfer_benchmark(side=640, repeats=1)
    table = capsys.readouterr().out
    assert "transfer: whole-picture tint" in table and "CPU ms" in table and "wall ms" in table
    assert "peak memory added by one transfer" in table and "storage path" in table
