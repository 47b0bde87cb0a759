"""Registration of the package's classes with the transformers Auto classes (run on `import video_lavit`).

`AutoVideoProcessor` finds a processor class by the `video_processor_type` saved in its
`video_preprocessor_config.json`, among the classes registered with it; registration is keyed by a configuration
class, and until the composite model configuration exists the processor is keyed by its own class.
"""

from __future__ import annotations

from transformers import AutoVideoProcessor

from .processing.video_processing_video_lavit import VideoLaVITVideoProcessor


def register_auto_classes() -> None:
    """Make `AutoVideoProcessor.from_pretrained` load `VideoLaVITVideoProcessor` folders. Safe to call twice."""
    AutoVideoProcessor.register(VideoLaVITVideoProcessor, VideoLaVITVideoProcessor, exist_ok=True)
