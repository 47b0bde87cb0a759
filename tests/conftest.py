import os

import pytest

from video_lavit import make_sample_video

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


@pytest.fixture(scope="session")
def sample_video(tmp_path_factory) -> str:
    """10 s of 96x64 H.264 at 24 fps: the texture moves (+2, +1) px per source frame, i.e. (+8, +4) per 6 fps frame."""
    path = tmp_path_factory.mktemp("videos") / "sample.mp4"
    return make_sample_video(path, width=96, height=64, seconds=10.0, fps=24, shift=(2, 1))
