"""Quiet runs: no progress bars from the libraries (weights loading, datasets, pipelines) and no info logs."""

from __future__ import annotations


def silence_library_progress() -> None:
    """Turn off huggingface_hub's, transformers', datasets' and diffusers' progress bars and info logs."""
    import datasets
    import transformers
    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    datasets.utils.logging.set_verbosity_error()
    import diffusers.utils.logging as diffusers_logging

    diffusers_logging.disable_progress_bar()
    diffusers_logging.set_verbosity_error()


__all__ = ["silence_library_progress"]
