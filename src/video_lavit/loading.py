"""Strict loading of the package's saved models: every weight from the folder, nothing else, within memory.

transformers' and diffusers' `from_pretrained` log missing weights and initialise them afresh, which suits a new
head on a pretrained body but not our models: every weight of a motion tokenizer, a keyframe tokenizer, a token
decoder, the language model or the detokenizer's UNet comes from a converted checkpoint (a codebook initialised at
random gives wrong tokens without any error). So our classes refuse a folder whose weights are missing, unexpected
or of the wrong shape, naming them (`CheckpointLoadError`). Before anything is allocated, the model the folder's
configuration describes is measured on the meta device and compared with the free memory, so a damaged
configuration asking for tens of GB fails with a message, not an allocator error. A local folder that does not exist
is an error at once, never a Hub download attempt.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from huggingface_hub import constants
from safetensors import SafetensorError, safe_open

from .errors import CheckpointLoadError, InvalidInputError, VideoLaVITError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device_and_dtype(device: str = "auto", dtype: str = "auto") -> tuple[torch.device, torch.dtype]:
    """The device and dtype to run on: `"auto"` device is `cuda` when a GPU is there, else the CPU; `"auto"` dtype
    is bfloat16 on a GPU and float32 on the CPU (where bfloat16 is slow). The command line and the examples share
    these defaults."""
    device = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else "cpu" if device == "auto"
                          else device)  # fmt: skip
    if dtype == "auto":
        return device, torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in DTYPES:
        raise InvalidInputError(f"dtype must be auto, {', '.join(DTYPES)}; got {dtype!r}.")
    return device, DTYPES[dtype]


def looks_like_local_path(path: str) -> bool:
    """Whether `path` names a local folder rather than a Hub repository id (`owner/name`)."""
    if os.path.isabs(path) or path.startswith((".", "~")) or os.sep != "/" and os.sep in path:
        return True
    parts = path.split("/")
    # `owner/name` is a Hub id unless `owner` is a local folder (e.g. `converted/generation`).
    return len(parts) != 2 or not all(parts) or os.path.isdir(parts[0])


def check_local_folder(path: str | os.PathLike, what: str) -> None:
    """Raise `CheckpointLoadError` at once if `path` names a local folder that does not exist (or is a file)."""
    name = os.fspath(path)
    if os.path.isdir(name):
        return
    if os.path.exists(name):
        raise CheckpointLoadError(f"{name}: is a file, not a folder; pass the folder the {what} was saved to.")
    if looks_like_local_path(name):
        raise CheckpointLoadError(
            f"{name}: no such folder. Pass the folder the {what} was saved to (save_pretrained, or a `video-lavit "
            "convert` command); nothing is downloaded for a local path."
        )
    if not (constants.HF_HUB_OFFLINE or _in_hub_cache(name)):
        raise CheckpointLoadError(
            f"{name}: no such folder, and no Hub repository of that name in the local cache "
            f"({constants.HF_HUB_CACHE}). Nothing is downloaded at run time: download it first "
            f"(`hf download {name}`) or pass the folder the {what} was saved to."
        )


def _in_hub_cache(repo_id: str) -> bool:
    """Whether the local Hugging Face cache holds a snapshot of model repository `repo_id`."""
    folder = os.path.join(constants.HF_HUB_CACHE, "models--" + repo_id.replace("/", "--"), "snapshots")
    return os.path.isdir(folder) and bool(os.listdir(folder))


def available_memory_bytes() -> int | None:
    """Memory the system can still give this process (Linux `MemAvailable`), or None where unknown."""
    try:
        with open("/proc/meminfo") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _requested_dtype(kwargs: dict, config, default: str | torch.dtype) -> torch.dtype:
    """The dtype `from_pretrained` will load in: the one asked for, or for "auto" the configuration's."""
    dtype = kwargs.get("dtype", kwargs.get("torch_dtype")) or default
    if dtype == "auto":
        dtype = getattr(config, "dtype", None) or torch.float32
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype, torch.float32)
    return dtype if isinstance(dtype, torch.dtype) else torch.float32


def check_memory(model: torch.nn.Module, dtype: torch.dtype, name: str, what: str) -> None:
    """Raise `CheckpointLoadError` if `model` (built on the meta device) needs more memory than is free."""
    free = available_memory_bytes()
    if free is None:
        return
    count = sum(tensor.numel() for tensor in (*model.parameters(), *model.buffers()))
    size = count * torch.empty((), dtype=dtype).element_size()
    if size > free:
        raise CheckpointLoadError(
            f"{name}: the {what} this configuration describes has {count:,} parameters ({size / 1e9:.1f} GB in "
            f"{str(dtype).removeprefix('torch.')}), more than the {free / 1e9:.1f} GB of memory free. Check the "
            "sizes in its config.json; to load a large model anyway, pass dtype=torch.bfloat16, or device_map='auto' "
            "to place it on GPUs and offload the rest."
        )


def shape_mismatches(model: torch.nn.Module, folder: str | os.PathLike) -> list[tuple[str, tuple, tuple]]:
    """`(name, shape in the files, shape in the model)` of every weight whose shapes differ."""
    expected = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    found = []
    for path in sorted(Path(folder).glob("*.safetensors")):
        with safe_open(path, framework="pt") as file:
            for name in file.keys():
                shape = tuple(file.get_slice(name).get_shape())
                if name in expected and shape != expected[name]:
                    found.append((name, shape, expected[name]))
    return found


def loading_problems(info: dict) -> list[str]:
    """Readable missing / unexpected / mismatched keys of a `from_pretrained(output_loading_info=True)` report."""
    problems = []
    for label, keys in (("missing", info.get("missing_keys")), ("unexpected", info.get("unexpected_keys"))):
        keys = sorted(keys or [])
        if keys:
            problems.append(f"{len(keys)} {label} weights ({', '.join(keys[:5])}{', ...' if len(keys) > 5 else ''})")
    mismatched = sorted(info.get("mismatched_keys") or [], key=str)
    if mismatched:
        shown = ", ".join(
            f"{key[0]}: {tuple(key[1])} in the file, {tuple(key[2])} in the model" if isinstance(key, tuple) else key
            for key in mismatched[:3]
        )
        problems.append(f"{len(mismatched)} weights of the wrong shape ({shown})")
    return problems


def _raise_for_problems(name: str, what: str, problems: list[str]) -> None:
    if problems:
        raise CheckpointLoadError(
            f"{name}: the saved {what} does not match its configuration: {'; '.join(problems)}. These weights cannot "
            "be initialised meaningfully (codebooks, converted layers), so the folder is refused; convert or save "
            "it again (an interrupted copy or an edited file looks like this)."
        )


# What the libraries raise for a folder they cannot read (a damaged config.json or weights file, a Hub failure).
_UNREADABLE = (OSError, ValueError, TypeError, AttributeError, KeyError, RecursionError, SafetensorError)


def _unreadable_error(folder: str, what: str, error: Exception) -> CheckpointLoadError:
    return CheckpointLoadError(
        f"{folder}: cannot load the saved {what} ({type(error).__name__}: {error}); its config.json or weights are "
        "damaged or missing (save or convert it again), or the Hub could not be reached."
    )


def check_finite_weights(model: torch.nn.Module, folder: str, what: str) -> None:
    """Raise `CheckpointLoadError` if a loaded weight holds NaN or infinity (offloaded weights are not read)."""
    bad = [
        name
        for name, tensor in (*model.named_parameters(), *model.named_buffers())
        if tensor.is_floating_point() and not tensor.is_meta and not bool(torch.isfinite(tensor).all())
    ]
    if bad:
        raise CheckpointLoadError(
            f"{folder}: {len(bad)} weights of the saved {what} hold NaN or infinite values ({', '.join(bad[:5])}); "
            "they would give meaningless outputs. The file is damaged: save or convert it again."
        )


def _strict_load(cls, load, folder: str, build_meta_model, dtype, want_info: bool):
    """Call `load()` (a `from_pretrained` with `output_loading_info=True`) and refuse what does not match."""
    what = cls.__name__
    meta_model = None
    if build_meta_model is not None:
        try:
            meta_model = build_meta_model()
        except VideoLaVITError:
            raise
        except _UNREADABLE as error:
            raise _unreadable_error(folder, what, error) from error
        check_memory(meta_model, dtype(), folder, what)
    try:
        model, info = load()
    except VideoLaVITError:
        raise
    except (RuntimeError, ValueError) as error:  # what the libraries raise for weights of the wrong shape
        mismatched = shape_mismatches(meta_model, folder) if meta_model is not None else []
        _raise_for_problems(folder, what, loading_problems({"mismatched_keys": mismatched}))
        if isinstance(error, _UNREADABLE):
            raise _unreadable_error(folder, what, error) from error
        raise
    except _UNREADABLE as error:
        raise _unreadable_error(folder, what, error) from error
    _raise_for_problems(folder, what, loading_problems(info))
    check_finite_weights(model, folder, what)
    return (model, info) if want_info else model


class StrictPreTrainedMixin:
    """Put before `transformers.PreTrainedModel` in the bases: strict `from_pretrained` (see the module docstring)."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        name = os.fspath(pretrained_model_name_or_path)
        check_local_folder(name, cls.__name__)
        build_meta_model, dtype = None, torch.float32
        if os.path.isdir(name) and kwargs.get("device_map") is None and not kwargs.get("quantization_config"):

            def build_meta_model():
                config = kwargs.get("config")
                if not isinstance(config, cls.config_class):
                    config = cls.config_class.from_pretrained(name)
                nonlocal dtype
                dtype = _requested_dtype(kwargs, config, "auto")
                with torch.device("meta"):
                    return cls(config)

        want_info = kwargs.pop("output_loading_info", False)

        def load():
            return super(StrictPreTrainedMixin, cls).from_pretrained(name, *args, output_loading_info=True, **kwargs)

        return _strict_load(cls, load, name, build_meta_model, lambda: dtype, want_info)


class StrictModelMixin:
    """Put before `diffusers.ModelMixin` in the bases: strict `from_pretrained` (see the module docstring)."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        name = os.fspath(pretrained_model_name_or_path)
        subfolder = kwargs.get("subfolder")
        folder = os.path.join(name, subfolder) if subfolder else name
        check_local_folder(name, cls.__name__)  # a Hub id with a subfolder is left to diffusers
        if subfolder and os.path.isdir(name):
            check_local_folder(folder, cls.__name__)
        build_meta_model = None
        if os.path.isdir(folder) and kwargs.get("device_map") is None:

            def build_meta_model():
                with torch.device("meta"):
                    return cls.from_config(cls.load_config(folder))

        want_info = kwargs.pop("output_loading_info", False)

        def load():
            return super(StrictModelMixin, cls).from_pretrained(name, *args, output_loading_info=True, **kwargs)

        dtype = _requested_dtype(kwargs, None, torch.float32)
        return _strict_load(cls, load, folder, build_meta_model, lambda: dtype, want_info)


def saved_weight_names(folder: str | os.PathLike) -> set[str] | None:
    """Names of the tensors in a folder's `*.safetensors` files (headers only), or None if it has none."""
    folder = Path(folder)
    names: set[str] = set()
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    for path in files:
        with safe_open(path, framework="pt") as file:
            names.update(file.keys())
    return names


def check_saved_weights(model: torch.nn.Module, folder: str | os.PathLike, what: str) -> None:
    """Raise `CheckpointLoadError` if `folder`'s safetensors files do not hold exactly `model`'s state-dict keys.

    For components loaded by classes that are not ours (diffusers' VAEs and UNets inside our pipeline).
    """
    names = saved_weight_names(folder)
    if names is None:
        return
    expected = set(model.state_dict())
    _raise_for_problems(
        os.fspath(folder),
        what,
        loading_problems({"missing_keys": expected - names, "unexpected_keys": names - expected}),
    )


def check_pipeline_weights(pipeline, folder: str):
    """Refuse a loaded diffusers pipeline whose libraries' own components (VAEs, keyframe UNet), which initialise
    missing weights afresh, do not match the safetensors files of `folder`; our own components check themselves."""
    if os.path.isdir(folder):
        for name, component in pipeline.components.items():
            if isinstance(component, torch.nn.Module) and not isinstance(
                component, (StrictModelMixin, StrictPreTrainedMixin)
            ):
                check_saved_weights(component, os.path.join(folder, name), f"{name} ({type(component).__name__})")
    return pipeline


__all__ = [
    "StrictModelMixin",
    "StrictPreTrainedMixin",
    "available_memory_bytes",
    "check_local_folder",
    "check_memory",
    "check_pipeline_weights",
    "check_saved_weights",
    "looks_like_local_path",
]
