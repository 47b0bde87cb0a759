"""`VideoLaVITVideoProcessor`: videos -> keyframe pixel values and motion-vector grids, as transformers expects.

Implements the reference's video pre-processing (its `LaVITEvalVideoProcessor` and `LaVITImageProcessor`) as a
transformers `BaseVideoProcessor`, so it saves and loads with `save_pretrained`/`from_pretrained` and
`AutoVideoProcessor`. Unlike frame-based video processors it takes encoded videos (paths, bytes, file objects,
`datasets` rows), because the motion vectors come from the MPEG-4 encoder, not from pixels; decoding and clip
cutting are in `video_io`.

Keyframes are resized with PIL's bicubic filter and normalised in two float32 steps (divide by 255, then subtract the
mean and divide by the std) rather than transformers' fused rescale-normalise, because the fused form rounds
differently and we promise the reference's exact numbers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import functional as TF
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, PILImageResampling
from transformers.processing_utils import VideosKwargs
from transformers.video_processing_utils import BaseVideoProcessor

from ..errors import CheckpointLoadError, InvalidInputError, UnknownOptionError, VideoDecodeError, VideoLaVITError
from ..loading import check_local_folder
from .motion_vectors import MOTION_INPUT_SCALE, MOTION_VECTOR_STD
from .video_io import DEFAULT_MAX_DURATION, VideoClip, VideoClipReader, check_reader_options
from .video_sources import VideoInput, describe_video_input

# Options that change how a video is read, not what comes of it: left out wherever settings are recorded to decide
# whether earlier outputs can be kept.
RUN_ONLY_OPTIONS = frozenset({"progress", "pipeline"})


def without_run_only_options(options: dict | None) -> dict:
    """`options` without `RUN_ONLY_OPTIONS`."""
    return {key: value for key, value in (options or {}).items() if key not in RUN_ONLY_OPTIONS}


class VideoLaVITVideoProcessorKwargs(VideosKwargs, total=False):
    """Options of `VideoLaVITVideoProcessor` beyond the standard video-processor ones.

    Attributes:
        max_clips (`int` or `None`): most clips per video; `None` keeps all that the selection rule gives.
        reencode (`bool`): re-encode to MPEG-4 at `fps` first (the reference's way) or read the stream as it is.
        motion_grid_size (`dict[str, int]`): `{"height", "width"}` of the motion grid.
        bit_rate (`int`): bit rate of the re-encoding.
        encoder_threads (`int`): slices of the MPEG-4 encoder (16 reproduces ffmpeg on machines with 15+ cores).
        motion_std (`list[float]`): dataset std of (x, y) motion in frame-size units.
        motion_scale (`float`): the std is divided by this before normalising.
        progress (`bool` or `None`): progress bar over source frames; `None` for videos over two minutes.
        max_duration (`float` or `None`): most seconds of video read; longer videos raise `VideoTooLongError`.
        pipeline (`bool`): decode and encode on several threads at once (the clips are the same); `False` for one.
    """

    max_clips: int | None
    reencode: bool
    motion_grid_size: dict[str, int]
    bit_rate: int
    encoder_threads: int
    motion_std: list[float]
    motion_scale: float
    progress: bool | None
    max_duration: float | None
    pipeline: bool


class VideoLaVITVideoProcessor(BaseVideoProcessor):
    r"""Cuts videos into Video-LaVIT clips: one keyframe and 24 frames of motion vectors per clip.

    Args:
        fps (`int`, *optional*, defaults to 6): frame rate the video is re-encoded to.
        num_frames (`int`, *optional*, defaults to 24): frames per clip.
        max_clips (`int`, *optional*, defaults to 16): most clips per video (`None`: no limit).
        size (`dict[str, int]`, *optional*, defaults to `{"height": 224, "width": 224}`): keyframe size.
        resample (`PILImageResampling`, *optional*, defaults to `BICUBIC`): keyframe resize filter (PIL).
        image_mean (`list[float]`, *optional*, defaults to the CLIP mean): keyframe normalisation mean.
        image_std (`list[float]`, *optional*, defaults to the CLIP std): keyframe normalisation std.
        motion_grid_size (`dict[str, int]`, *optional*, defaults to `{"height": 20, "width": 36}`): motion grid size.
        reencode (`bool`, *optional*, defaults to `True`): re-encode as the reference does; `False` reads as is.
        bit_rate (`int`, *optional*, defaults to 8000000): re-encoding bit rate.
        encoder_threads (`int`, *optional*, defaults to 16): MPEG-4 encoder slices.
        motion_std (`list[float]`, *optional*, defaults to `[0.0993703, 0.1130276]`): motion std.
        motion_scale (`float`, *optional*, defaults to 10.0): tokenizer-input scale of the motion.
        progress (`bool`, *optional*): progress bar per video; `None` for videos over two minutes.
        max_duration (`float`, *optional*, defaults to 10800): most seconds of video read (an endless stream or a
            longer video raises `VideoTooLongError`); `None` for no limit.
        pipeline (`bool`, *optional*, defaults to `True`): let decoding and encoding overlap on threads (the clips
            are the same); `False` keeps one thread, for when every core runs a process of its own.

    Settings that cannot give a correct result (a zero std, a negative size, ...) raise `InvalidInputError` when
    the processor is made or loaded, and when passed per call.

    Calling it on one video or a list returns a `BatchFeature` with `keyframe_pixel_values` float32
    `[total_clips, 3, 224, 224]`, `motion_vectors` float32 `[total_clips, 2, 24, 20, 36]` and `num_clips` (clips per
    video, in input order).
    """

    valid_kwargs = VideoLaVITVideoProcessorKwargs
    model_input_names = ["keyframe_pixel_values", "motion_vectors"]

    fps = 6
    num_frames = 24
    max_clips = 16
    size = {"height": 224, "width": 224}
    resample = PILImageResampling.BICUBIC
    do_resize = True
    do_rescale = True
    do_normalize = True
    do_convert_rgb = True
    do_sample_frames = False
    image_mean = OPENAI_CLIP_MEAN
    image_std = OPENAI_CLIP_STD
    motion_grid_size = {"height": 20, "width": 36}
    reencode = True
    bit_rate = 8_000_000
    encoder_threads = 16
    motion_std = list(MOTION_VECTOR_STD)
    motion_scale = MOTION_INPUT_SCALE
    progress = None
    max_duration = DEFAULT_MAX_DURATION
    pipeline = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._check_options(self._options({}))

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """`BaseVideoProcessor.from_pretrained`, with the package's errors for a missing or damaged folder."""
        name = os.fspath(pretrained_model_name_or_path)
        check_local_folder(name, "video processor")
        try:
            return super().from_pretrained(name, **kwargs)
        except VideoLaVITError:
            raise
        except (OSError, ValueError, TypeError, AttributeError, KeyError) as error:
            raise CheckpointLoadError(
                f"{name}: cannot load the video processor ({type(error).__name__}: {error}); its "
                "video_preprocessor_config.json is missing or damaged."
            ) from error

    @classmethod
    def from_dict(cls, video_processor_dict: dict, **kwargs):
        """`BaseVideoProcessor.from_dict`, naming the configuration in the error raised for an impossible setting."""
        if not isinstance(video_processor_dict, dict):
            raise InvalidInputError(
                f"the video processor configuration must be a JSON object, got {type(video_processor_dict).__name__}."
            )
        try:
            return super().from_dict(video_processor_dict, **kwargs)
        except InvalidInputError as error:
            raise InvalidInputError(
                f"the video processor configuration has an impossible setting: {error} Fix it in its "
                "video_preprocessor_config.json (or pass a corrected value to from_pretrained)."
            ) from error

    def _options(self, kwargs: dict) -> dict:
        unknown = set(kwargs) - set(self.valid_kwargs.__annotations__) - {"return_tensors"}
        if unknown:
            raise UnknownOptionError(
                f"{type(self).__name__} got unexpected options: {', '.join(sorted(unknown))}; see its docstring for "
                "the options it takes"
            )
        return {name: kwargs.get(name, getattr(self, name, None)) for name in self.valid_kwargs.__annotations__}

    @staticmethod
    def _check_options(options: dict) -> None:
        grid = options["motion_grid_size"]
        if not isinstance(grid, dict) or set(grid) != {"height", "width"}:
            raise InvalidInputError(f"motion_grid_size must be {{'height': H, 'width': W}}, got {grid!r}.")
        size = options["size"]
        height, width = (size.get("height"), size.get("width")) if hasattr(size, "get") else (None, None)
        for value, what in ((height, "keyframe height"), (width, "keyframe width")):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 8192:
                raise InvalidInputError(f"the {what} (size) must be an integer from 1 to 8192, got {value!r}.")
        try:
            mean, std = [float(value) for value in options["image_mean"]], [float(v) for v in options["image_std"]]
        except (TypeError, ValueError):
            raise InvalidInputError(
                f"image_mean and image_std must be 3 numbers each, got {options['image_mean']!r} and "
                f"{options['image_std']!r}."
            ) from None
        if len(mean) != 3 or len(std) != 3:
            raise InvalidInputError(f"image_mean and image_std need 3 values (RGB), got {mean} and {std}.")
        if not all(abs(value) <= 1e3 for value in mean) or not all(1e-3 <= value <= 1e3 for value in std):
            raise InvalidInputError(
                f"image_mean must lie within +-1000 and image_std from 0.001 to 1000, got {mean} and {std}."
            )
        try:
            PILImageResampling(options["resample"])
        except (TypeError, ValueError):
            raise InvalidInputError(
                f"resample must be a PIL resampling filter (0 to 5; 3 is bicubic), got {options['resample']!r}."
            ) from None
        check_reader_options(**VideoLaVITVideoProcessor._reader_arguments(options))

    @staticmethod
    def _reader_arguments(options: dict) -> dict:
        """The `VideoClipReader` arguments of a full set of options."""
        grid = options["motion_grid_size"]
        return dict(
            reencode=options["reencode"],
            fps=options["fps"],
            num_frames=options["num_frames"],
            max_clips=options["max_clips"],
            grid_size=(grid["height"], grid["width"]),
            bit_rate=options["bit_rate"],
            encoder_threads=options["encoder_threads"],
            motion_std=tuple(options["motion_std"]),
            motion_scale=options["motion_scale"],
            progress=options["progress"],
            max_duration=options["max_duration"],
            pipeline=options["pipeline"],
        )

    def clip_reader(self, video: VideoInput, **kwargs) -> VideoClipReader:
        """A `VideoClipReader` over `video` with this processor's settings (overridable by `kwargs`)."""
        return VideoClipReader(video, **self._reader_arguments(self._options(kwargs)))

    def iter_clips(self, video: VideoInput, **kwargs) -> Iterator[tuple[VideoClip, torch.Tensor]]:
        """Yield `(clip, keyframe_pixel_values [3, 224, 224])` for each clip of one video, with bounded memory."""
        with self.clip_reader(video, **kwargs) as reader:
            for clip in reader:
                yield clip, self.preprocess_keyframe(clip.keyframe, **kwargs)

    def preprocess_keyframe(self, keyframe: np.ndarray | Image.Image, **kwargs) -> torch.Tensor:
        """RGB keyframe (uint8 `[H, W, 3]` or PIL) -> float32 `[3, height, width]`, resized and normalised."""
        options = self._options(kwargs)
        if kwargs:
            self._check_options(options)
        image = keyframe if isinstance(keyframe, Image.Image) else Image.fromarray(keyframe)
        image = image.convert("RGB")
        if options["do_resize"]:
            size = options["size"]
            image = image.resize((size["width"], size["height"]), resample=PILImageResampling(options["resample"]))
        pixel_values = TF.to_tensor(image) if options["do_rescale"] else TF.pil_to_tensor(image).float()
        if options["do_normalize"]:
            pixel_values = TF.normalize(pixel_values, list(options["image_mean"]), list(options["image_std"]))
        return pixel_values

    def preprocess(self, videos: VideoInput | Sequence[VideoInput], **kwargs) -> BatchFeature:
        """Process one video or a list of videos (see the class docstring for what comes back)."""
        return_tensors = kwargs.pop("return_tensors", None)
        if return_tensors not in (None, "pt", "np"):
            raise InvalidInputError(f"return_tensors must be 'pt', 'np' or None, got {return_tensors!r}.")
        if isinstance(videos, (list, tuple)):
            if not videos:
                raise VideoDecodeError("no video was given; pass a path, bytes or a file object, or a list of them.")
        else:
            videos = [videos]
        keyframes, motions, num_clips = [], [], []
        for video in videos:
            count = 0
            for clip, pixel_values in self.iter_clips(video, **kwargs):
                keyframes.append(pixel_values)
                motions.append(clip.motion_vectors)
                count += 1
            if count == 0:
                raise VideoDecodeError(f"{describe_video_input(video)}: no clip could be cut from the video.")
            num_clips.append(count)
        data = {
            "keyframe_pixel_values": torch.stack(keyframes),
            "motion_vectors": torch.stack(motions),
            "num_clips": torch.tensor(num_clips, dtype=torch.long),
        }
        if return_tensors not in (None, "pt"):
            data = {key: value.numpy() for key, value in data.items()}
        return BatchFeature(data=data, tensor_type=None)


__all__ = ["RUN_ONLY_OPTIONS", "VideoLaVITVideoProcessor", "without_run_only_options"]
