"""The InstructPix2Pix editor on the tiny random model: equivalence with the stock diffusers pipeline, guidance,
caching, progress, cancel, sizes, safety, fast mode."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionInstructPix2PixPipeline
from PIL import Image

from core.domain import EditParams
from core.editing.deepcache import DeepCacheUNet
from core.editing.pix2pix import Pix2PixEditor
from core.editing.pix2pix_parts import bfloat16_copy, guidance_rows, working_size
from core.editing.sources import build_tiny_pipeline
from core.errors import BadParams, EditCancelled, UnsafeImage

INSTRUCTION = "make it snowy"
MAX_SIDE = 64
STEPS = 3


@pytest.fixture(scope="module")
def pipeline():
    return build_tiny_pipeline()


@pytest.fixture()
def editor(pipeline):
    return Pix2PixEditor(pipeline, max_side=MAX_SIDE)


@pytest.fixture(scope="module")
def photo():
    rng = np.random.default_rng(7)
    return Image.fromarray(rng.integers(0, 256, (53, 70, 3), dtype=np.uint8))


def stock_output(pipeline, editor, photo, params: EditParams) -> np.ndarray:
    """The stock pipeline's float output at our working size, with the scheduler our editor used."""
    scheduler = editor._scheduler(params.scheduler)
    stock = StableDiffusionInstructPix2PixPipeline(
        **{**pipeline.components, "scheduler": type(scheduler).from_config(scheduler.config)},
        requires_safety_checker=False,
    )
    stock.set_progress_bar_config(disable=True)
    resized = photo.resize(working_size(*photo.size, MAX_SIDE), Image.Resampling.LANCZOS)
    return stock(
        INSTRUCTION,
        image=resized,
        num_inference_steps=params.steps,
        guidance_scale=params.text_guidance,
        image_guidance_scale=params.image_guidance,
        generator=torch.Generator().manual_seed(params.seed),
        output_type="np",
    ).images[0]


@pytest.mark.parametrize("scheduler", ["default", "euler-a", "ddim", "dpm++"])
@pytest.mark.parametrize("image_guidance", [1.5, 1.0])
def test_matches_the_stock_pipeline_with_and_without_cache_hits(pipeline, editor, photo, scheduler, image_guidance):
    params = EditParams(text_guidance=7.5, image_guidance=image_guidance, steps=STEPS, seed=11, scheduler=scheduler)
    expected = stock_output(pipeline, editor, photo, params)

    cold, _ = editor.edit_to_array(photo, INSTRUCTION, params)
    warm, _ = editor.edit_to_array(photo, INSTRUCTION, params)  # image latents and text embeddings from the caches

    assert editor._image_latents.hits >= 1 and editor._text_embeddings.hits >= 1
    assert cold.shape == expected.shape
    np.testing.assert_allclose(cold, expected, atol=1e-4, rtol=0)
    np.testing.assert_array_equal(warm, cold)


@pytest.mark.parametrize(
    ("text_guidance", "image_guidance", "rows"),
    [(7.5, 1.5, 3), (7.5, 1.0, 2), (2.0, 2.0, 2), (1.0, 1.0, 1), (7.5, 0.8, 3)],
)
def test_unet_runs_only_the_rows_the_guidance_needs(pipeline, editor, photo, text_guidance, image_guidance, rows):
    batch_sizes = []
    hook = pipeline.unet.register_forward_pre_hook(lambda module, args: batch_sizes.append(args[0].shape[0]))
    try:
        params = EditParams(text_guidance=text_guidance, image_guidance=image_guidance, steps=2, seed=1)
        editor.edit_to_array(photo, INSTRUCTION, params)
    finally:
        hook.remove()
    assert batch_sizes == [rows, rows]
    assert len(guidance_rows(text_guidance, image_guidance)) == rows


def test_skipped_rows_still_match_stock_when_text_and_image_guidance_are_equal(pipeline, editor, photo):
    params = EditParams(text_guidance=2.0, image_guidance=2.0, steps=STEPS, seed=5)
    expected = stock_output(pipeline, editor, photo, params)
    np.testing.assert_allclose(editor.edit_to_array(photo, INSTRUCTION, params)[0], expected, atol=1e-4, rtol=0)


def test_image_guidance_below_one_is_honoured_not_switched_off(pipeline, editor, photo):
    params = EditParams(image_guidance=0.8, steps=STEPS, seed=3)
    unguided = stock_output(pipeline, editor, photo, params)  # stock silently drops all guidance below 1
    ours, _ = editor.edit_to_array(photo, INSTRUCTION, params)
    assert np.abs(ours - unguided).max() > 1e-2


def test_a_random_seed_is_picked_reported_and_reproducible(editor, photo):
    first = editor.edit(photo, INSTRUCTION, EditParams(steps=2, seed=None))
    assert isinstance(first.params.seed, int)
    again = editor.edit(photo, INSTRUCTION, first.params)
    assert again.params == first.params
    np.testing.assert_array_equal(np.asarray(again.image), np.asarray(first.image))
    assert first.seconds > 0


def test_progress_is_reported_after_every_step(editor, photo):
    calls = []
    editor.edit(photo, INSTRUCTION, EditParams(steps=4, seed=1), on_step=lambda step, total: calls.append((step, total)))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_cancel_stops_the_edit_and_leaves_the_editor_usable(pipeline, editor, photo):
    cancel = threading.Event()
    steps_done = []

    def on_step(step, total):
        steps_done.append(step)
        if step == 2:
            cancel.set()

    params = EditParams(steps=5, seed=2)
    with pytest.raises(EditCancelled, match="Edit cancelled."):
        editor.edit(photo, INSTRUCTION, params, on_step=on_step, cancel=cancel)
    assert steps_done == [1, 2]

    after, _ = editor.edit_to_array(photo, INSTRUCTION, params)
    fresh, _ = Pix2PixEditor(pipeline, max_side=MAX_SIDE).edit_to_array(photo, INSTRUCTION, params)
    np.testing.assert_array_equal(after, fresh)


@pytest.mark.parametrize(
    ("size", "max_side", "expected"),
    [
        ((333, 517), 64, (40, 64)),
        ((1024, 768), 512, (512, 384)),
        ((40, 24), 512, (40, 24)),  # never upscaled
        ((41, 30), 512, (40, 24)),  # rounded down to multiples of 8
        ((5, 300), 64, (8, 64)),  # at least 8
        ((512, 512), 512, (512, 512)),
    ],
)
def test_working_size_keeps_aspect_caps_the_long_side_and_uses_multiples_of_8(size, max_side, expected):
    assert working_size(*size, max_side) == expected


def test_odd_sizes_keep_their_aspect_ratio(editor):
    odd = Image.new("RGB", (333, 517), (120, 60, 200))
    result = editor.edit(odd, INSTRUCTION, EditParams(steps=1, seed=0))
    assert result.image.size == (40, 64)
    assert abs(40 / 64 - 333 / 517) < 8 / 64


def test_keep_original_size_returns_the_input_size(pipeline):
    odd = Image.new("RGB", (333, 517), (120, 60, 200))
    editor = Pix2PixEditor(pipeline, max_side=MAX_SIDE, keep_original_size=True)
    assert editor.edit(odd, INSTRUCTION, EditParams(steps=1, seed=0)).image.size == (333, 517)


def test_non_rgb_images_are_converted(editor):
    rgba = Image.new("RGBA", (64, 48), (10, 20, 30, 128))
    assert editor.edit(rgba, INSTRUCTION, EditParams(steps=1, seed=0)).image.mode == "RGB"


def test_bad_params_and_blank_instructions_are_refused_in_one_line(editor, photo):
    with pytest.raises(BadParams, match="Image guidance must be"):
        editor.edit(photo, INSTRUCTION, EditParams(image_guidance=9.0))
    with pytest.raises(BadParams, match="instruction"):
        editor.edit(photo, "   ", EditParams(steps=1))


def test_a_retry_skips_the_encoders(pipeline, editor, photo):
    calls = {"vae": 0, "text": 0}
    vae_hook = pipeline.vae.encoder.register_forward_hook(lambda *_: calls.__setitem__("vae", calls["vae"] + 1))
    text_hook = pipeline.text_encoder.register_forward_hook(lambda *_: calls.__setitem__("text", calls["text"] + 1))
    try:
        editor.edit(photo, INSTRUCTION, EditParams(steps=1, seed=1))
        after_first = dict(calls)
        editor.edit(photo, INSTRUCTION, EditParams(steps=1, seed=2, image_guidance=1.2))
    finally:
        vae_hook.remove()
        text_hook.remove()
    assert after_first == {"vae": 1, "text": 2}  # the instruction and the empty prompt
    assert calls == after_first


class FakeSafetyChecker(torch.nn.Module):
    """Stands in for StableDiffusionSafetyChecker: flags every image, or none."""

    def __init__(self, flag: bool) -> None:
        super().__init__()
        self.flag = flag
        self.calls = 0

    def forward(self, images, clip_input):
        self.calls += 1
        return images, [self.flag] * len(images)


def pipeline_with_checker(pipeline, checker) -> StableDiffusionInstructPix2PixPipeline:
    from transformers import CLIPImageProcessor

    return StableDiffusionInstructPix2PixPipeline(
        **{**pipeline.components, "safety_checker": checker, "feature_extractor": CLIPImageProcessor()}
    )


def test_a_flagged_result_raises_unsafe_image(pipeline, photo):
    checker = FakeSafetyChecker(flag=True)
    editor = Pix2PixEditor(pipeline_with_checker(pipeline, checker), max_side=MAX_SIDE)
    with pytest.raises(UnsafeImage) as raised:
        editor.edit(photo, INSTRUCTION, EditParams(steps=1, seed=0))
    assert "\n" not in str(raised.value)
    assert checker.calls == 1


def test_the_safety_checker_passes_clean_results_and_can_be_switched_off(pipeline, photo):
    clean = FakeSafetyChecker(flag=False)
    assert Pix2PixEditor(pipeline_with_checker(pipeline, clean), max_side=MAX_SIDE).edit(
        photo, INSTRUCTION, EditParams(steps=1, seed=0)
    )
    assert clean.calls == 1
    flagging = FakeSafetyChecker(flag=True)
    unchecked = Pix2PixEditor(pipeline_with_checker(pipeline, flagging), max_side=MAX_SIDE, safety_checker=False)
    unchecked.edit(photo, INSTRUCTION, EditParams(steps=1, seed=0))
    assert flagging.calls == 0


@pytest.mark.parametrize("latent_size", [(8, 8), (5, 8)])  # (5, 8): sizes the UNet cannot halve evenly
def test_deepcache_full_steps_equal_the_unet_and_reuse_from_the_same_input_is_exact(pipeline, latent_size):
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(2, 8, *latent_size, generator=generator)
    context = torch.randn(2, 77, 32, generator=generator)
    timestep = torch.tensor(500)
    deepcache = DeepCacheUNet(pipeline.unet)
    with torch.inference_mode():
        expected = pipeline.unet(sample, timestep, encoder_hidden_states=context).sample
        full = deepcache(sample, timestep, context, reuse=False)
        reused = deepcache(sample, timestep, context, reuse=True)
        other = deepcache(sample, torch.tensor(400), context, reuse=True)
    torch.testing.assert_close(full, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(reused, expected, atol=1e-5, rtol=0)
    assert not torch.allclose(other, expected)  # reuse really recomputed the shallow blocks at the new step


def test_fast_mode_runs_close_to_exact_and_leaves_the_pipeline_in_float32(pipeline, photo):
    params = EditParams(steps=4, seed=9)
    exact, _ = Pix2PixEditor(pipeline, max_side=MAX_SIDE).edit_to_array(photo, INSTRUCTION, params)
    fast_editor = Pix2PixEditor(pipeline, max_side=MAX_SIDE, fast=True)
    calls = []
    fast, used = fast_editor.edit_to_array(photo, INSTRUCTION, params, on_step=lambda s, t: calls.append(s))
    assert fast.shape == exact.shape and used.seed == 9
    assert calls == [1, 2, 3, 4]
    assert 0 < np.abs(fast - exact).max() < 0.5
    assert pipeline.unet.dtype == torch.float32 and pipeline.vae.dtype == torch.float32
    assert pipeline.unet.conv_in.weight.is_contiguous()  # the pipeline's own modules keep their memory format
    fast_conv = fast_editor._fast_unet.unet.conv_in.weight  # the bfloat16 copy runs channels-last (faster on CPU)
    assert fast_conv.dtype == torch.bfloat16 and fast_conv.is_contiguous(memory_format=torch.channels_last)


def test_bfloat16_copy_rounds_every_weight_and_leaves_the_original_alone(pipeline):
    original = {name: tensor.clone() for name, tensor in pipeline.vae.state_dict().items()}
    copied = bfloat16_copy(pipeline.vae).state_dict()
    assert copied.keys() == original.keys()
    for name, tensor in original.items():
        assert copied[name].dtype == torch.bfloat16
        torch.testing.assert_close(copied[name].float(), tensor.to(torch.bfloat16).float(), atol=0, rtol=0)
        torch.testing.assert_close(pipeline.vae.state_dict()[name], tensor, atol=0, rtol=0)


def test_deepcache_falls_back_to_the_full_unet_for_unets_it_does_not_cover(pipeline):
    from diffusers import UNet2DConditionModel

    centred = UNet2DConditionModel.from_config(pipeline.unet.config, center_input_sample=True).eval()
    deepcache = DeepCacheUNet(centred)
    sample, context = torch.randn(1, 8, 8, 8), torch.randn(1, 77, 32)
    with torch.inference_mode():
        expected = centred(sample, 10, encoder_hidden_states=context).sample
        deepcache(sample, 10, context, reuse=False)
        reused = deepcache(sample, 10, context, reuse=True)
    assert not deepcache.supported
    torch.testing.assert_close(reused, expected)


@pytest.mark.parametrize("scheduler", ["default", "dpm++"])
def test_a_batch_equals_its_variants_edited_alone_in_one_unet_call_per_step(pipeline, editor, photo, scheduler):
    variants = [
        EditParams(image_guidance=1.5, seed=1, steps=STEPS, scheduler=scheduler),
        EditParams(image_guidance=1.0, text_guidance=5.0, seed=2, steps=STEPS, scheduler=scheduler),
        EditParams(image_guidance=0.5, seed=None, steps=STEPS, scheduler=scheduler),
    ]
    batch_sizes = []
    hook = pipeline.unet.register_forward_pre_hook(lambda module, args: batch_sizes.append(args[0].shape[0]))
    try:
        rendered = editor._render([(photo, INSTRUCTION, variant) for variant in variants])
    finally:
        hook.remove()
    assert batch_sizes == [3 + 2 + 3] * STEPS
    assert [used.seed for _, used in rendered[:2]] == [1, 2] and isinstance(rendered[2][1].seed, int)
    for array, used in rendered:
        alone, _ = editor.edit_to_array(photo, INSTRUCTION, used)
        np.testing.assert_allclose(array, alone, atol=1e-4, rtol=0)

    results = editor.edit_batch(photo, INSTRUCTION, [variant.with_seed(7) for variant in variants])
    assert [result.image.size for result in results] == [working_size(*photo.size, MAX_SIDE)] * 3
    assert all(result.params.seed == 7 for result in results)


def test_a_batch_refuses_mixed_steps_and_empty_variant_lists(editor, photo):
    with pytest.raises(BadParams, match="share their working size, steps and scheduler"):
        editor.edit_batch(photo, INSTRUCTION, [EditParams(steps=2), EditParams(steps=3)])
    with pytest.raises(BadParams, match="at least one"):
        editor.edit_batch(photo, INSTRUCTION, [])


@pytest.mark.parametrize("scheduler", ["euler-a", "dpm++"])
def test_edits_of_different_photos_run_together_and_each_equals_its_edit_alone(pipeline, editor, scheduler):
    rng = np.random.default_rng(3)
    photos = [Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)) for _ in range(3)]
    requests = [
        (photos[0], "make it snowy", EditParams(image_guidance=1.5, seed=4, steps=STEPS, scheduler=scheduler)),
        (photos[1], "turn it into a painting",
         EditParams(image_guidance=1.0, text_guidance=5.0, seed=9, steps=STEPS, scheduler=scheduler)),
        (photos[2], "add fireworks", EditParams(image_guidance=1.2, text_guidance=9.0, seed=13, steps=STEPS,
                                                scheduler=scheduler)),
    ]
    batch_sizes = []
    hook = pipeline.unet.register_forward_pre_hook(lambda module, args: batch_sizes.append(args[0].shape[0]))
    try:
        together = editor._render(requests)
    finally:
        hook.remove()
    assert batch_sizes == [3 + 2 + 3] * STEPS  # one UNet call per step for all three

    for (photo, instruction, params), (array, used) in zip(requests, together):
        alone, _ = editor.edit_to_array(photo, instruction, params)
        assert used == params
        np.testing.assert_allclose(array, alone, atol=1e-4, rtol=0)

    results = editor.edit_many(requests)
    assert [result.params for result in results] == [params for _, _, params in requests]
    assert [result.image.size for result in results] == [(64, 48)] * 3


def test_edits_run_together_must_share_working_size_steps_and_scheduler(editor, photo):
    square = Image.new("RGB", (64, 64), (10, 200, 30))
    assert editor.batch_key(photo, EditParams(steps=3)) == ((64, 48), 3, "default")
    assert editor.batch_key(square, EditParams(steps=3)) != editor.batch_key(photo, EditParams(steps=3))
    for mismatched in [
        [(photo, INSTRUCTION, EditParams(steps=2)), (square, INSTRUCTION, EditParams(steps=2))],
        [(photo, INSTRUCTION, EditParams(steps=2)), (photo, "add a hat", EditParams(steps=3))],
        [(photo, INSTRUCTION, EditParams(steps=2, scheduler="ddim")), (photo, INSTRUCTION, EditParams(steps=2))],
    ]:
        with pytest.raises(BadParams, match="must share their working size, steps and scheduler"):
            editor.edit_many(mismatched)
    with pytest.raises(BadParams, match="instruction"):
        editor.edit_many([(photo, INSTRUCTION, EditParams(steps=1)), (photo, " ", EditParams(steps=1))])
