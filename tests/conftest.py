import os

import pytest
import torch

from video_lavit import make_sample_video

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
# Files whose tests take minutes: collected first, so that under `pytest -n 2` (scripts/test.sh) one worker runs them
# while the other runs the rest.
LONG_FILES = ("test_world_recipe.py",)

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One torch thread per worker process: two workers share the two cores without oversubscribing them.
    torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: os.path.basename(str(item.fspath)) not in LONG_FILES)  # stable: the rest keep order


@pytest.fixture(scope="session")
def sample_video(tmp_path_factory) -> str:
    """10 s of 96x64 H.264 at 24 fps: the texture moves (+2, +1) px per source frame, i.e. (+8, +4) per 6 fps frame."""
    path = tmp_path_factory.mktemp("videos") / "sample.mp4"
    return make_sample_video(path, width=96, height=64, seconds=10.0, fps=24, shift=(2, 1))
