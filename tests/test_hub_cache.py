"""A model published on the Hub loads offline from the local Hugging Face cache (HF_HUB_OFFLINE=1): the Auto
classes, the processor and `pipeline("video-text-to-text")`, in a fresh process with only the environment set."""

import os
import shutil
import subprocess
import sys

from video_lavit.training.world import make_world_video
from video_lavit.world_model import world_model_path

SCRIPT = """
import sys
from transformers import AutoModelForImageTextToText, AutoProcessor, pipeline
import video_lavit

model = AutoModelForImageTextToText.from_pretrained("someone/video-lavit-world")
processor = AutoProcessor.from_pretrained("someone/video-lavit-world")
answer = pipeline("video-text-to-text", model="someone/video-lavit-world")
print(type(model).__name__, type(processor).__name__, answer(videos=sys.argv[1], text="What colour is the shape?"))
"""


def test_a_published_model_loads_offline_from_the_hub_cache(tmp_path):
    repo = tmp_path / "hub" / "models--someone--video-lavit-world"
    snapshot = repo / "snapshots" / "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(world_model_path(), snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123456789abcdef0123456789abcdef01234567")
    video = make_world_video("green", "cross", "left", path=tmp_path / "world.mp4")
    environment = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    completed = subprocess.run([sys.executable, "-c", SCRIPT, video], capture_output=True, text=True, timeout=300,
                               env=environment, check=False)  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.strip() == (
        "VideoLaVITForConditionalGeneration VideoLaVITProcessor [{'generated_text': 'green'}]"
    )
