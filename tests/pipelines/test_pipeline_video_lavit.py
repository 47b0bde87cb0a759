"""The detokenizer: conversion and parity with the reference, then every input mode of the pipeline.

A tiny release folder is assembled in the test in the reference's layout: `video_3d_unet.bin` and the video UNet
config from tests/fixtures/reference/detokenizer/ (made by running the reference's UNet and motion condition encoder;
see its README), the tiny reference motion and visual tokenizers of the other fixtures, and small diffusers VAEs,
schedulers and an SDXL-style keyframe UNet saved as pickled `.bin` files as the release ships them.
"""

import json
import os
import shutil

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, AutoencoderKLTemporalDecoder, EulerDiscreteScheduler, UNet2DConditionModel
from PIL import Image
from safetensors.torch import load_file

from video_lavit import CheckpointConversionError, InvalidInputError
from video_lavit.conversion.detokenizer import convert_detokenizer
from video_lavit.pipelines import VideoLaVITDetokenizerPipeline, VideoLaVITKeyframePipeline

REFERENCE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "reference")
DETOKENIZER = os.path.join(REFERENCE, "detokenizer")
HEADS = dict(
    motion_encoder_heads=2, motion_tokenizer_heads=2, visual_num_attention_heads=4, vision_num_attention_heads=4
)
SIZE = dict(height=64, width=64)


def write_release_folder(root):
    torch.manual_seed(0)
    video = root / "video_detokenizer"
    (video / "unet").mkdir(parents=True)
    shutil.copy(os.path.join(DETOKENIZER, "unet_config.json"), video / "unet" / "config.json")
    shutil.copy(os.path.join(DETOKENIZER, "video_3d_unet.bin"), root / "video_3d_unet.bin")
    # Four blocks, so that latents are 1/8 of the frame size as in the real VAEs.
    AutoencoderKLTemporalDecoder(
        block_out_channels=(32,) * 4, down_block_types=("DownEncoderBlock2D",) * 4, layers_per_block=1
    ).save_pretrained(video / "vae")
    EulerDiscreteScheduler().save_pretrained(video / "scheduler")
    shutil.copy(
        os.path.join(REFERENCE, "motion_tokenizer", "tiny_motion_tokenizer.bin"), root / "motion_tokenizer.bin"
    )
    shutil.copytree(os.path.join(REFERENCE, "visual_tokenizer"), root / "visual_tokenizer")
    image = root / "image_detokenizer"
    UNet2DConditionModel(
        sample_size=8,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=64,  # the tiny token decoder's prompt_embeds width (24 + 40)
        attention_head_dim=(2, 4),
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=40 + 6 * 8,  # pooled width + 6 size ids
    ).save_pretrained(image / "unet", safe_serialization=False)
    AutoencoderKL(
        block_out_channels=(32,) * 4,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=1,
    ).save_pretrained(image / "vae", safe_serialization=False)
    EulerDiscreteScheduler().save_pretrained(image / "scheduler")
    return root


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    root = write_release_folder(tmp_path_factory.mktemp("release"))
    output = tmp_path_factory.mktemp("converted")
    convert_detokenizer(root, output, **HEADS)
    return output


@pytest.fixture(scope="module")
def pipeline(converted):
    pipe = VideoLaVITDetokenizerPipeline.from_pretrained(converted)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def reference():
    return load_file(os.path.join(DETOKENIZER, "reference_io.safetensors"))


def test_converted_folder_is_a_safetensors_pipeline(tmp_path, pipeline):
    pipeline.save_pretrained(tmp_path)
    with open(tmp_path / "model_index.json") as handle:
        index = json.load(handle)
    assert index["_class_name"] == "VideoLaVITDetokenizerPipeline"
    assert (
        index["unet"][1] == "VideoLaVITVideoUNet" and index["motion_encoder"][1] == "VideoLaVITMotionConditionEncoder"
    )
    weights = [name for _, _, files in os.walk(tmp_path) for name in files if name.endswith((".bin", ".safetensors"))]
    assert weights and all(name.endswith(".safetensors") for name in weights)


def test_unet_step_and_motion_encoder_match_the_reference(pipeline, reference):
    with torch.no_grad():
        tokens = pipeline.motion_encoder(reference["menc_motion"]).sample
        assert torch.equal(pipeline.motion_encoder(reference["menc_motion"], return_dict=False)[0], tokens)
        torch.testing.assert_close(tokens, reference["menc_out"], rtol=0, atol=1e-4)
        for tag in ("8x8", "8x12"):
            motion = reference[f"encode_motion_in_{tag}"]
            conditions = pipeline.motion_encoder(motion).sample
            torch.testing.assert_close(conditions, reference[f"encode_motion_out_{tag}"], rtol=0, atol=1e-4)
            for branch, context in (("", conditions), ("uncond_", torch.zeros_like(conditions))):
                noise = pipeline.unet(
                    reference[f"unet_{tag}_{branch}sample"],
                    reference[f"unet_{tag}_timestep"],
                    encoder_hidden_states=context,
                    added_time_ids=reference["unet_added_time_ids"],
                ).sample
                torch.testing.assert_close(noise, reference[f"unet_{tag}_{branch}out"], rtol=0, atol=1e-4)


def test_conversion_refuses_unknown_keys(tmp_path):
    root = write_release_folder(tmp_path / "release")
    state = torch.load(root / "video_3d_unet.bin", weights_only=True)
    state["vae.encoder.conv_in.weight"] = torch.zeros(1)
    torch.save(state, root / "video_3d_unet.bin")
    with pytest.raises(CheckpointConversionError, match="outside unet"):
        convert_detokenizer(root, **HEADS)
    with pytest.raises(CheckpointConversionError, match="no such folder"):
        convert_detokenizer(tmp_path / "missing")


def motion_codes(clips=1, batch=1, seed=0):
    return torch.randint(0, 64, (batch, clips, 135), generator=torch.Generator().manual_seed(seed))


def picture(seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (48, 80, 3), dtype=np.uint8))


def test_text_to_video_tokens_two_clips_with_callbacks(pipeline):
    steps = []

    def callback(pipe, step, timestep, tensors):
        steps.append((tensors["latents"].ndim, step))
        return tensors

    output = pipeline(
        keyframe_codes=[[torch.tensor([1, 2, 3]), torch.tensor([4, 5])]],
        motion_codes=motion_codes(clips=2),
        num_inference_steps=2,
        keyframe_num_inference_steps=4,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
        callback_on_step_end=callback,
        **SIZE,
    )
    assert output.frames.shape == (1, 48, 64, 64, 3)
    assert output.keyframes.shape == (1, 2, 64, 64, 3)
    # Clip 1's keyframe: 4 steps from noise; clip 2's: from the previous last frame at int(0.85 * 4) = 3.
    keyframe_steps = [step for ndim, step in steps if ndim == 4]
    video_steps = [step for ndim, step in steps if ndim == 5]
    assert keyframe_steps == [0, 1, 2, 3, 0] and video_steps == [0, 1, 0, 1]


def test_seeded_output_is_reproducible_and_output_types(pipeline):
    def run(output_type, seed=0):
        return pipeline(
            image=picture(),
            motion_codes=motion_codes(),
            num_inference_steps=2,
            generator=torch.Generator().manual_seed(seed),
            output_type=output_type,
            **SIZE,
        )

    first, second = run("pt"), run("pt")
    torch.testing.assert_close(first.frames, second.frames, rtol=0, atol=0)
    assert first.frames.shape == (1, 24, 3, 64, 64)
    assert not torch.equal(run("pt", seed=1).frames, first.frames)
    pil = run("pil")
    assert len(pil.frames) == 1 and len(pil.frames[0]) == 24 and pil.frames[0][0].size == (64, 64)
    latents = run("latent")
    assert latents.frames.shape == (1, 1, 24, 4, 8, 8) and latents.keyframes is None


def test_reconstruction_from_motion_grids_in_a_batch(pipeline):
    grids = torch.randn(2, 2, 24, 20, 36, generator=torch.Generator().manual_seed(0))
    before = {name: value.clone() for name, value in pipeline.vae.state_dict().items()}
    output = pipeline(
        image=[picture(0), picture(1)],
        motion=grids,
        num_inference_steps=1,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
        **SIZE,
    )
    assert output.frames.shape == (2, 24, 64, 64, 3)
    # No component is changed by a call.
    assert all(torch.equal(before[name], value) for name, value in pipeline.vae.state_dict().items())
    assert pipeline.vae.dtype == torch.float32


def test_bad_inputs_are_refused(pipeline):
    with pytest.raises(InvalidInputError, match="multiple of 64"):
        pipeline(image=picture(), motion_codes=motion_codes(), height=60, width=64)
    with pytest.raises(InvalidInputError, match="exactly one of motion_codes"):
        pipeline(image=picture(), **SIZE)
    with pytest.raises(InvalidInputError, match="more clips need keyframe_codes"):
        pipeline(image=picture(), motion_codes=motion_codes(clips=2), **SIZE)
    with pytest.raises(InvalidInputError, match="2 code tensors"):
        pipeline(keyframe_codes=[[torch.tensor([1])]], motion_codes=motion_codes(clips=2), **SIZE)
    with pytest.raises(InvalidInputError, match="2 images for 1 videos"):
        pipeline(image=[picture(), picture()], motion_codes=motion_codes(), **SIZE)
    with pytest.raises(InvalidInputError, match="noise_constraint_strength"):
        pipeline(image=picture(), motion_codes=motion_codes(), noise_constraint_strength=1.0, **SIZE)
    with pytest.raises(InvalidInputError, match="motion_codes must be a LongTensor"):
        pipeline(image=picture(), motion_codes=[[0] * 135], **SIZE)
    with pytest.raises(InvalidInputError, match="output_type"):
        pipeline(image=picture(), motion_codes=motion_codes(), output_type="gif", **SIZE)
    # NaN in the image or the motion would give NaN frames.
    image = torch.rand(3, 48, 80)
    image[0, 1, 2] = float("nan")
    with pytest.raises(InvalidInputError, match="image holds 1 NaN"):
        pipeline(image=image, motion_codes=motion_codes(), **SIZE)
    motion = torch.zeros(1, 2, 24, 20, 36)
    motion[0, 1, 3] = float("inf")
    with pytest.raises(InvalidInputError, match="motion holds 720 NaN or infinite"):
        pipeline(image=picture(), motion=motion, **SIZE)


def test_model_cpu_offload_hooks(pipeline):
    assert set(pipeline.model_cpu_offload_seq.split("->")) <= set(pipeline.components)
    pipeline.enable_model_cpu_offload(device="cpu")
    try:
        output = pipeline(
            image=picture(), motion_codes=motion_codes(), num_inference_steps=1, output_type="latent", **SIZE
        )
        assert output.frames.shape == (1, 1, 24, 4, 8, 8)
    finally:
        pipeline.remove_all_hooks()


def test_full_size_configs_parameter_counts():
    from diffusers import AutoencoderKLTemporalDecoder as VideoVAE

    from video_lavit import VideoLaVITMotionConditionEncoder, VideoLaVITVideoUNet, VideoLaVITVisualTokenDecoder
    from video_lavit.media_tokenizers.configuration_visual_tokenizer import VideoLaVITVisualTokenDecoderConfig

    folder = os.path.join(os.path.dirname(__file__), "..", "..", "hub_configs", "detokenizer")
    with open(os.path.join(folder, "model_index.json")) as handle:
        assert json.load(handle)["_class_name"] == "VideoLaVITDetokenizerPipeline"
    with torch.device("meta"):
        unet = VideoLaVITVideoUNet.from_config(VideoLaVITVideoUNet.load_config(os.path.join(folder, "unet")))
        encoder = VideoLaVITMotionConditionEncoder.from_config(
            VideoLaVITMotionConditionEncoder.load_config(os.path.join(folder, "motion_encoder"))
        )
        decoder = VideoLaVITVisualTokenDecoder(
            VideoLaVITVisualTokenDecoderConfig.from_pretrained(os.path.join(folder, "token_decoder"))
        )
        vae = VideoVAE.from_config(VideoVAE.load_config(os.path.join(folder, "vae")))
    assert unet.config.num_attention_heads == [5, 10, 10, 20] and unet.config.in_channels == 10
    assert sum(p.numel() for p in unet.parameters()) == 1_524_628_842
    # The reference's 51,095,040, plus the zero key part of each attention's `qkv.bias` (24 x 512).
    assert sum(p.numel() for p in encoder.parameters()) == 51_095_040 + 24 * 512
    assert decoder.num_parameters() - decoder.quantizer.embedding.weight.numel() == 414_002_304
    assert 2 ** (len(vae.config.block_out_channels) - 1) == 8
    # The reference's key set (class-default heads): exactly our UNet's keys.
    with open(os.path.join(REFERENCE, "keys", "video_unet.txt")) as handle:
        reference = {line.split("\t")[0] for line in handle if line.strip() and not line.startswith("#")}
    assert len(reference) > 1000 and reference == set(unet.state_dict())


def test_motion_decoding_triggers_the_offload_hook(pipeline):
    """With model offloading, accelerate moves a module on `forward`; the motion tokenizer's decoding is another
    method, so the pipeline must trigger the hook itself (on a GPU, the codes and the weights were on two devices)."""

    class RecordingHook:
        calls = 0

        def pre_forward(self, module, *args, **kwargs):
            RecordingHook.calls += 1
            return args, kwargs

    pipeline.motion_tokenizer._hf_hook = RecordingHook()
    try:
        motion = pipeline.motion_at_latent_size(motion_codes=motion_codes()[:, 0], motion=None, height=64, width=64)
    finally:
        del pipeline.motion_tokenizer._hf_hook
    assert RecordingHook.calls == 1 and motion.shape == (1, 2, 24, 8, 8)


def test_keyframe_pipeline_is_its_own_class(converted, pipeline):
    keyframes = VideoLaVITKeyframePipeline.from_pretrained(converted)
    assert set(keyframes.components) == {"token_decoder", "keyframe_unet", "keyframe_vae", "keyframe_scheduler"}
    keyframes.set_progress_bar_config(disable=True)
    codes = [torch.tensor([1, 2, 3]), torch.tensor([4])]
    steps = []

    def callback(pipe, step, timestep, tensors):
        steps.append((step, pipe.num_timesteps))
        return tensors

    def run(output_type="pt", seed=0, **options):
        generator = torch.Generator().manual_seed(seed)
        return keyframes(codes, num_inference_steps=2, generator=generator, output_type=output_type, **SIZE, **options)

    first = run(callback_on_step_end=callback)
    assert first.images.shape == (2, 3, 64, 64) and 0 <= float(first.images.min()) <= float(first.images.max()) <= 1
    assert steps == [(0, 2), (1, 2)]
    torch.testing.assert_close(run().images, first.images, rtol=0, atol=0)  # reproducible with a generator
    assert not torch.equal(run(seed=1).images, first.images)
    assert run("np").images.shape == (2, 64, 64, 3) and len(run("pil").images) == 2
    assert run("latent").images.shape == (2, 4, 8, 8)
    assert run(num_images_per_prompt=2).images.shape == (4, 3, 64, 64)
    # The detokenizer's keyframe pipeline shares its components.
    shared = pipeline.keyframe_pipeline
    assert shared.token_decoder is pipeline.token_decoder and shared.keyframe_unet is pipeline.keyframe_unet
    torch.testing.assert_close(
        shared(
            codes, num_inference_steps=2, generator=torch.Generator().manual_seed(0), output_type="pt", **SIZE
        ).images,
        first.images,
    )
    with pytest.raises(InvalidInputError, match="keyframe codes must lie"):
        keyframes([torch.tensor([10**6])], **SIZE)
    with pytest.raises(InvalidInputError, match="num_images_per_prompt"):
        keyframes(codes, num_images_per_prompt=0, **SIZE)


def test_common_pipeline_behaviours(converted, pipeline, tmp_path, capsys):
    def run(pipe, seed=0, **options):
        options = {"num_inference_steps": 2, "output_type": "pt", **options}
        return pipe(
            image=picture(),
            motion_codes=motion_codes(),
            generator=torch.Generator().manual_seed(seed),
            **SIZE,
            **options,
        )

    first = run(pipeline)
    # num_videos_per_prompt: each input gives that many videos, with their own noise.
    several = run(pipeline, num_videos_per_prompt=2)
    assert several.frames.shape == (2, 24, 3, 64, 64) and several.keyframes.shape == (2, 1, 3, 64, 64)
    assert not torch.equal(several.frames[0], several.frames[1])
    # num_timesteps and guidance_scale during the call, as diffusers' pipelines.
    seen = []

    def callback(pipe, step, timestep, tensors):
        seen.append((pipe.num_timesteps, pipe.guidance_scale, pipe.do_classifier_free_guidance))
        return tensors

    run(pipeline, callback_on_step_end=callback, output_type="latent")  # (no frames needed: no VAE decode)
    assert seen == [(2, 4.0, True)] * 2
    # The keyframe stage's callbacks see the detokenizer too, with that stage's settings.
    callers = []
    pipeline(
        keyframe_codes=[[torch.tensor([1, 2])]],
        motion_codes=motion_codes(),
        num_inference_steps=1,
        keyframe_num_inference_steps=2,
        output_type="latent",
        callback_on_step_end=lambda pipe, step, timestep, tensors: (
            callers.append((pipe, pipe.num_timesteps, pipe.guidance_scale)) or tensors
        ),
        **SIZE,
    )
    assert callers == [(pipeline, 2, 3.0), (pipeline, 2, 3.0), (pipeline, 1, 4.0)]
    # Schedulers whose step takes no generator (UniPC, PNDM, ...) work too.
    from diffusers import UniPCMultistepScheduler

    unipc = VideoLaVITDetokenizerPipeline(**{**pipeline.components, "scheduler": UniPCMultistepScheduler()})
    unipc.set_progress_bar_config(disable=True)
    assert run(unipc, output_type="latent", num_inference_steps=2).frames.shape == (1, 1, 24, 4, 8, 8)
    # save_pretrained -> from_pretrained gives the same videos.
    pipeline.save_pretrained(tmp_path / "saved")
    reloaded = VideoLaVITDetokenizerPipeline.from_pretrained(tmp_path / "saved")
    reloaded.set_progress_bar_config(disable=True)
    torch.testing.assert_close(run(reloaded).frames, first.frames)
    # set_progress_bar_config: bars are shown unless disabled.
    capsys.readouterr()
    reloaded.set_progress_bar_config(disable=False)
    run(reloaded, output_type="latent")
    assert "2/2" in capsys.readouterr().err
    reloaded.set_progress_bar_config(disable=True)
    run(reloaded, output_type="latent")
    assert "2/2" not in capsys.readouterr().err
    # dtype: the whole pipeline in bfloat16 runs and gives finite latents.
    half = VideoLaVITDetokenizerPipeline.from_pretrained(converted, dtype=torch.bfloat16)
    half.set_progress_bar_config(disable=True)
    latents = run(half, output_type="latent", num_inference_steps=1).frames
    assert latents.dtype == torch.bfloat16 and torch.isfinite(latents.float()).all()
