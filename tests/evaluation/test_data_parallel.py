"""Data-parallel evaluation: 2 CPU processes (gloo, launched with `torchrun` as `accelerate launch --multi_gpu`
launches them on GPUs) each answer their share of the questions, and the first merges them into one predictions
file that equals a single process's. (`accelerate launch --cpu` starts a single process, so it cannot test this.)"""

import os
import socket
import subprocess
import sys

import eval_worker
import pytest

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "eval_worker.py")
NUM_VIDEOS = 4  # as passed to the worker


@pytest.mark.slow
def test_two_processes_merge_the_predictions_of_one(tmp_path):
    videos = tmp_path / "videos"
    single = eval_worker.answer(str(videos), str(tmp_path / "single.jsonl"), NUM_VIDEOS)  # also writes the videos
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1"]
    command = [*launch, "--master_port", str(port), WORKER, str(videos), str(tmp_path / "parallel.jsonl"), "4"]
    environment = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    completed = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 0, completed.stderr[-4000:]
    for rank in range(2):
        assert (tmp_path / f"parallel.jsonl.process{rank}").read_text() == "2"
        assert not (tmp_path / f"parallel.jsonl.rank{rank}").exists()  # merged, then removed
    assert (tmp_path / "parallel.jsonl").read_text() == (tmp_path / "single.jsonl").read_text()
    assert len(single) == 3 * NUM_VIDEOS
