"""Two-process training on CPU (gloo), launched with `torchrun` as on a real machine: `Trainer` DDP and FSDP2.

`distributed_worker.py` is the script each process runs; it builds the tiny discrete-path model from a fixed seed and
fixed-length token batches, and writes each rank's results. The single-process references run here, in the test
process, from the same functions. Most of a launch's time is the two processes importing torch, transformers and
the package (the training itself takes about a second), so one launch runs both modes (`Trainer` first, then FSDP2 on
the process group it made: a second group on the same rendezvous port would wait forever) and each test reads its
mode's results.
"""

import json
import os
import socket
import subprocess
import sys

import distributed_worker as worker
import pytest
import torch

from video_lavit.errors import InvalidInputError
from video_lavit.training import apply_fsdp2

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "distributed_worker.py")
WORLD_SIZE = 2
TIMEOUT_SECONDS = 300


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def torchrun(output_dir, *modes: str) -> dict[str, list[tuple[dict, dict[str, torch.Tensor]]]]:
    """Run the worker's `modes` on 2 CPU processes; per mode, each rank's JSON result and final parameters."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        str(WORLD_SIZE),
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
        WORKER,
        str(output_dir),
        *modes,
    ]
    environment = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    completed = subprocess.run(
        command, env=environment, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-6000:]
    results = {}
    for mode in modes:
        results[mode] = []
        for rank in range(WORLD_SIZE):
            with open(output_dir / mode / f"rank{rank}.json") as file:
                result = json.load(file)
            results[mode].append((result, torch.load(output_dir / mode / f"rank{rank}_parameters.pt")))
    return results


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """One `torchrun` launch of both modes: their output folder and results."""
    output_dir = tmp_path_factory.mktemp("torchrun")
    return output_dir, torchrun(output_dir, "ddp", "fsdp2")


@pytest.fixture
def one_thread():
    """The in-process reference runs on one thread, like each worker (torchrun sets OMP_NUM_THREADS=1)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def assert_close_parameters(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], atol: float) -> None:
    assert sorted(actual) == sorted(expected)
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=0, atol=atol, msg=name)


@pytest.mark.slow
def test_trainer_ddp_matches_one_process_with_the_same_global_batch(launched, tmp_path, one_thread):
    """`Trainer` under `torchrun`: 2 ranks of 4 sequences give the losses of 1 process with batches of 8.

    Equal up to float summation order, not bit for bit. The semantics are the same: with
    `average_tokens_across_devices` (the default) each rank's loss is its summed token loss divided by the token
    count of the whole global batch and multiplied by the world size, so DDP's gradient averaging gives exactly the
    gradient of the mean loss over the global batch, and the logged loss (the mean over ranks) is that mean loss.
    The ranks hold bit-identical parameters: DDP all-reduces the gradients, so every rank takes the same step.
    """
    (rank0, parameters0), (rank1, parameters1) = launched[1]["ddp"]
    assert [rank0["rank"], rank1["rank"]] == [0, 1]
    assert rank0["world_size"] == rank1["world_size"] == WORLD_SIZE
    assert rank0["wrapped_in"] == "DistributedDataParallel"
    losses = rank0["losses"]
    assert len(losses) == worker.STEPS and all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0] - 0.5, losses
    assert rank1["losses"] == losses
    assert rank0["checksum"] == rank1["checksum"]
    for name, value in parameters0.items():
        assert torch.equal(value, parameters1[name]), name

    reference = worker.train_with_trainer(
        str(tmp_path / "one_process"), per_device_batch_size=worker.GLOBAL_BATCH_SIZE
    )
    assert reference["world_size"] == 1
    torch.testing.assert_close(torch.tensor(losses), torch.tensor(reference["losses"]), rtol=1e-5, atol=0)
    # Adam divides by the gradients' running size, so last-bit differences grow to about lr * 1e-3 in 4 steps.
    assert_close_parameters(parameters0, reference["parameters"], atol=1e-4)


@pytest.mark.slow
def test_fsdp2_step_checkpoint_and_reload_match_one_process(launched, one_thread):
    """`apply_fsdp2` on a CPU gloo mesh of 2: forward, backward, an AdamW step, then a sharded
    `torch.distributed.checkpoint` save and a reload into a model initialized from another seed.

    FSDP2 reduce-scatters the gradients as a mean over ranks; with the global batch split evenly (same token count
    per rank) that is the gradient of the mean loss over the global batch, so the sharded losses match one
    unsharded process on the whole batch up to float summation order.
    """
    output_dir, results = launched
    (rank0, parameters0), (rank1, parameters1) = results["fsdp2"]
    assert rank0["world_size"] == rank1["world_size"] == WORLD_SIZE
    # Every language-model layer and tokenizer block is its own unit, the root last.
    assert {"model.language_model.layers.0", "model.language_model.layers.1"} <= set(rank0["sharded_units"])
    assert rank0["sharded_units"][-1] == ""
    # Really sharded: each rank holds half of the first dimension of the (356 x 32) embedding table.
    assert rank0["first_parameter_local_shape"] == [178, 32]

    loss_before, loss_after = rank0["losses"]
    assert rank1["losses"] == rank0["losses"]
    assert torch.isfinite(torch.tensor(rank0["losses"])).all() and loss_after < loss_before
    reference_before, reference_after = worker.reference_fsdp2_losses()
    torch.testing.assert_close(
        torch.tensor([loss_before, loss_after]), torch.tensor([reference_before, reference_after])
    )

    for result in (rank0, rank1):
        assert result["differs_before_load"]  # the reload target started elsewhere ...
        assert result["reloaded_equal"]  # ... and holds exactly the saved parameters after dcp.load
        # The optimizer state came back too: one more step from the saved and the reloaded copy agrees.
        resumed, reloaded = result["second_step_losses"]
        assert resumed == reloaded and resumed < loss_after
    assert rank0["checksum"] == rank1["checksum"]
    for name, value in parameters0.items():
        assert torch.equal(value, parameters1[name]), name
    assert sorted(os.listdir(output_dir / "fsdp2" / "checkpoint")) == [".metadata", "__0_0.distcp", "__1_0.distcp"]


def test_apply_fsdp2_needs_the_models_wrap_policy():
    with pytest.raises(InvalidInputError, match="_no_split_modules"):
        apply_fsdp2(torch.nn.Linear(4, 4))
