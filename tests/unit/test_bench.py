"""`editbot bench` and `editbot bench --pipeline` on the tiny model: the code paths the real figures come from,
and the JSON fields they print."""

import json

import pytest

from bot.pipeline_bench import run_pipeline_benchmark
from core.editing.bench import run_benchmark

pytestmark = pytest.mark.slow


def test_paired_bench_reports_each_case_against_stock(capsys):
    figures = run_benchmark(model="tiny", device="cpu", size=32, steps=2, image_guidance=(1.5,), repeats=2,
                            as_json=True)
    assert json.loads(capsys.readouterr().out) == figures
    assert figures["repeats"] == 2
    assert set(figures["machine"]) >= {"others_cpu_share", "load_average_before", "warning"}
    cases = {case["case"]: case for case in figures["cases"]}
    assert list(cases) == ["stock g_i=1.5", "exact g_i=1.5", "exact cached retry g_i=1.5", "fast g_i=1.5"]
    for case in cases.values():
        assert len(case["seconds_all"]) == 2  # one timing per round
        assert case["seconds"] > 0
        assert case["speedup_quartiles"][0] <= case["speedup_vs_stock"] <= case["speedup_quartiles"][1]
        assert case["speedup_iqr_pct"] >= 0
    assert cases["stock g_i=1.5"]["speedup_vs_stock"] == 1.0
    assert cases["stock g_i=1.5"]["max_pixel_diff_vs_stock"] is None
    assert cases["exact g_i=1.5"]["max_pixel_diff_vs_stock"] < 1e-4  # exact mode computes what stock computes


def test_pipeline_bench_times_every_phase_of_an_edit_through_the_engine(capsys):
    figures = run_pipeline_benchmark(model="tiny", device="cpu", size=64, steps=1, edits=1, as_json=True)
    assert json.loads(capsys.readouterr().out) == figures
    phases = figures["phases_ms"]
    for name in ("whole edit (handle)", "text encoder", "image encoder", "denoising steps", "VAE decode",
                 "image store write + fsync", "database", "intake (decode, EXIF, checks)",
                 "store upload (strip metadata, check pixels)", "encode node (lossless JPEG XL)",
                 "encode reply (JPEG preview)", "encode PNG (/file only)", "in handle: encode node (lossless JPEG XL)",
                 "beside the node: encode reply (JPEG preview)", "in handle: full-resolution transfer",
                 "in handle: store upload (strip metadata, check pixels)"):
        assert phases[name] > 0, name
    import core.runner

    assert core.runner.full_size.__module__ == "core.editing.transfer"  # the bench's wrappers are gone after it
    assert core.runner.encode_preview.__module__ == "core.stored_images"
    assert "in handle: encode reply (JPEG preview)" not in phases  # the runner made it: the reply did not wait
    for name in ("reply encode, Telegram", "reply encode, Discord"):  # a preview that fits is sent as it is: ~0 ms
        assert phases[name] >= 0, name
    assert phases["whole edit (handle)"] > phases["editor, all"] > phases["denoising steps"]
    assert figures["peak_memory_mib"]["denoising steps"] > 0
    assert figures["model_ms"] + figures["non_model_ms"] >= phases["whole edit (handle)"]
    assert figures["phases_cpu_ms"]["in handle: full-resolution transfer"] > 0
    assert "denoising steps" not in figures["phases_cpu_ms"]  # the model runs on several threads
    assert figures["edits"] == 1 and figures["photo"] == [1280, 960]
    follow_up = figures["follow_up"]  # an instruction on the result: no intake, no stored upload
    assert follow_up["phases_ms"]["in handle: full-resolution transfer"] > 0
    assert "in handle: store upload (strip metadata, check pixels)" not in follow_up["phases_ms"]
    assert follow_up["model_ms"] > 0 and follow_up["non_model_ms"] > 0


def test_gpu_bench_writes_one_json_file_with_every_part(tmp_path):
    # the GPU script's code path, on the tiny model and the CPU (compile applies on CUDA only)
    from core.editing.gpu_bench import run

    out = tmp_path / "gpu-bench.json"
    run(out, size=32, steps=1, repeats=1, model="tiny", device="cpu")
    report = json.loads(out.read_text())
    for part in ("bench_float16", "bench_float16_compiled", "float16_vs_float32", "batched"):
        assert "error" not in report[part], report[part]
    assert report["float16_vs_float32"]["half_dtype"] == "bfloat16"  # the CPU refuses float16
    assert report["float16_vs_float32"]["nan_pixels_half"] == 0
    assert [row["jobs"] for row in report["batched"]] == [1, 4, 8]
    assert all(row["edits_per_s"] > 0 for row in report["batched"])
    assert report["targets"] == {"seconds_per_edit": 0.3, "batched_edits_per_s": 6.0}


def test_family_bench_times_the_editor_against_its_stock_pipeline(capsys):
    from core.editing.family_bench import run_family_benchmark

    figures = run_family_benchmark("flux2-klein", device="cpu", size=64, steps=1, as_json=True)
    assert json.loads(capsys.readouterr().out) == figures
    cases = {case["case"]: case for case in figures["cases"]}
    assert list(cases) == ["stock", "ours", "ours, 2 seeds in one call"]
    assert cases["ours"]["max_pixel_diff_vs_stock"] < 1e-4  # our editor computes what the stock pipeline computes
    assert all(case["seconds_per_picture"] > 0 and case["peak_memory_mib"] > 0 for case in cases.values())
    assert set(figures["machine"]) >= {"others_cpu_share", "load_average_before", "load_average_after"}
