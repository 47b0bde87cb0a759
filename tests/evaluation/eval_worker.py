"""Run by `test_data_parallel.py` in each process of `accelerate launch` / `torchrun`: answer the world questions
about the videos in a folder with the built-in world model, into one predictions file."""

import sys

from video_lavit import VideoLaVITForConditionalGeneration, VideoLaVITProcessor
from video_lavit.evaluation import predict_video_qa, world_qa_samples
from video_lavit.world_model import world_model_path


def answer(videos: str, predictions: str, num_videos: int) -> list[dict]:
    model = VideoLaVITForConditionalGeneration.from_pretrained(world_model_path()).eval()
    processor = VideoLaVITProcessor.from_pretrained(world_model_path())
    samples = world_qa_samples(num_videos, videos, seed=3, split="parallel")
    return predict_video_qa(model, processor, samples, predictions, batch_size=4, max_new_tokens=4, progress=False)


if __name__ == "__main__":
    from accelerate import PartialState

    answer(sys.argv[1], sys.argv[2], int(sys.argv[3]))
    state = PartialState()
    with open(f"{sys.argv[2]}.process{state.process_index}", "w") as file:
        file.write(str(state.num_processes))
