import os

import pytest
import torch

from video_lavit import make_sample_video

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
# Under `pytest -n 2 --dist loadfile --no-loadscope-reorder` (scripts/test.sh; without the last option xdist sorts
# the files by their number of tests) files go to the workers in collection order, so the longest
# come first (the minutes-long learning test, then files of tens of seconds, longest first) and the short ones fill
# the gaps at the end: neither worker is left with a long file while the other has finished.
LONG_FILES = (
    "test_world_recipe.py",
    "test_cli.py",
    "test_generation.py",
    "test_motion_tokenizer.py",
    "test_prepare_ray.py",
    "test_motion_tokenizer_training.py",
    "test_distributed.py",
    "test_readme.py",
    "test_pipeline_video_lavit.py",
    "test_trainer.py",
    "test_conversion_safety.py",
    "test_data_parallel.py",
)

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One torch thread per worker process: two workers share the two cores without oversubscribing them. The
    # processes tests start (the command line, torchrun, the learning recipe) inherit one OpenMP thread too: a second
    # thread would only wait for the core the other worker holds.
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"


def pytest_collection_modifyitems(config, items):
    rank = {name: index for index, name in enumerate(LONG_FILES)}
    # stable: the tests of a file stay together and in order, and the other files keep theirs
    items.sort(key=lambda item: rank.get(os.path.basename(str(item.fspath)), len(LONG_FILES)))


@pytest.fixture(scope="session")
def sample_video(tmp_path_factory) -> str:
    """10 s of 96x64 H.264 at 24 fps: the texture moves (+2, +1) px per source frame, i.e. (+8, +4) per 6 fps frame."""
    path = tmp_path_factory.mktemp("videos") / "sample.mp4"
    return make_sample_video(path, width=96, height=64, seconds=10.0, fps=24, shift=(2, 1))
