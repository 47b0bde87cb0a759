"""One process of the distributed tests, launched by `torchrun` (CPU, gloo); also run in-process as the reference.

    python -m torch.distributed.run --nproc_per_node 2 tests/training/distributed_worker.py OUTPUT_DIR ddp fsdp2

`ddp`: `transformers.Trainer` trains the tiny discrete-path model for a few steps (Trainer wraps it in
`DistributedDataParallel` itself). `fsdp2`: a loop written by hand over the model sharded by `apply_fsdp2`, one step,
a `torch.distributed.checkpoint` save and reload into a differently initialized copy, and one more step on each.
The modes run one after the other in the same processes (one launch: most of a launch's time is importing torch,
transformers and the package). For each mode every rank writes `rank{rank}.json` (world size, losses, a checksum of
the final parameters) and `rank{rank}_parameters.pt` (the full trainable parameters) into OUTPUT_DIR/MODE. The
batches are built here (fixed-length token sequences, no collator), and the same functions give the single-process
reference in the tests.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/, for tiny_models

from tiny_models import tiny_video_lavit_config  # noqa: E402

from video_lavit import VideoLaVITForConditionalGeneration  # noqa: E402
from video_lavit.training import freeze_for_training  # noqa: E402

NUM_SEQUENCES = 32
SEQUENCE_LENGTH = 16
GLOBAL_BATCH_SIZE = 8
STEPS = 4
LEARNING_RATE = 1e-2
FIRST_ID, ID_SPAN = 3, 40  # text ids 3 .. 42, well inside the text vocabulary


def build_model(seed: int = 0) -> VideoLaVITForConditionalGeneration:
    """The tiny discrete-path model, initialized from `seed`, with the media tokenizers frozen."""
    torch.manual_seed(seed)
    model = VideoLaVITForConditionalGeneration(tiny_video_lavit_config(keyframe_input="codes"))
    freeze_for_training(model)
    return model


def token_sequences() -> list[dict[str, torch.Tensor]]:
    """Fixed-length sequences that count up (id t+1 follows id t, wrapping): learnable in a few steps."""
    generator = torch.Generator().manual_seed(0)
    starts = torch.randint(0, ID_SPAN, (NUM_SEQUENCES, 1), generator=generator)
    input_ids = FIRST_ID + (starts + torch.arange(SEQUENCE_LENGTH)) % ID_SPAN  # [sequences, length]
    return [{"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()} for ids in input_ids]


def global_batch() -> dict[str, torch.Tensor]:
    """The first `GLOBAL_BATCH_SIZE` sequences stacked: the batch of the FSDP step."""
    rows = token_sequences()[:GLOBAL_BATCH_SIZE]
    return {key: torch.stack([row[key] for row in rows]) for key in rows[0]}


def trainable_parameters(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Full (unsharded) copies of the trainable parameters; a collective call under FSDP2."""
    parameters = {}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            value = parameter.full_tensor() if hasattr(parameter, "full_tensor") else parameter
            parameters[name] = value.detach().clone()
    return parameters


def checksum(parameters: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(parameters):
        digest.update(name.encode())
        digest.update(parameters[name].contiguous().numpy().tobytes())
    return digest.hexdigest()


def train_with_trainer(output_dir: str, per_device_batch_size: int) -> dict:
    """Train with `transformers.Trainer`; under `torchrun` it runs DDP, otherwise one process."""
    from transformers import Trainer, TrainingArguments

    model = build_model()
    # Set without a process group, `ddp_backend` makes accelerate look for one: the reference runs without it.
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    arguments = TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=per_device_batch_size,
        max_steps=STEPS,
        learning_rate=LEARNING_RATE,
        lr_scheduler_type="constant",
        warmup_steps=0,
        logging_steps=1,
        save_strategy="no",
        train_sampling_strategy="sequential",
        ddp_backend="gloo" if distributed else None,
        ddp_find_unused_parameters=False,  # the frozen tokenizers are skipped; every trainable parameter is used
        report_to=[],
        disable_tqdm=True,
        use_cpu=True,
        seed=0,
    )
    trainer = Trainer(model=model, args=arguments, train_dataset=token_sequences())
    trainer.train()
    parameters = trainable_parameters(trainer.accelerator.unwrap_model(trainer.model))
    return {
        "rank": arguments.process_index,
        "world_size": arguments.world_size,
        "wrapped_in": type(trainer.model_wrapped).__name__,
        "losses": [entry["loss"] for entry in trainer.state.log_history if "loss" in entry],
        "checksum": checksum(parameters),
        "parameters": parameters,
    }


def _loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return model(**batch).loss


def train_with_fsdp2(output_dir: str) -> dict:
    """One AdamW step on the FSDP2-sharded model, a DCP save / reload into a fresh copy, and one more step on each."""
    import torch.distributed as dist
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
    from torch.distributed.device_mesh import init_device_mesh

    from video_lavit.training import apply_fsdp2

    owner = not dist.is_initialized()  # after the `ddp` mode, Trainer's process group is used
    if owner:
        dist.init_process_group("gloo")
    rank, world_size = dist.get_rank(), dist.get_world_size()
    mesh = init_device_mesh("cpu", (world_size,))
    batch = global_batch()
    # Each rank takes its contiguous share of the global batch; FSDP2 averages the gradients over ranks.
    local_batch = {key: value.chunk(world_size)[rank] for key, value in batch.items()}

    def mean_over_ranks(value: torch.Tensor) -> float:
        value = value.detach().clone()
        dist.all_reduce(value, op=dist.ReduceOp.AVG)
        return value.item()

    def sharded(seed: int):
        model = build_model(seed)
        units = apply_fsdp2(model, mesh=mesh)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LEARNING_RATE)
        return model, optimizer, units

    def step(model, optimizer) -> float:
        loss = _loss(model, local_batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return mean_over_ranks(loss)

    def evaluate(model) -> float:
        with torch.no_grad():
            loss = _loss(model, local_batch)
        # The root unit keeps its parameters gathered after forward (for the backward that follows); without a
        # backward they stay gathered until `reshard`.
        model.reshard()
        return mean_over_ranks(loss)

    model, optimizer, units = sharded(seed=0)
    loss_before = step(model, optimizer)
    loss_after = evaluate(model)
    saved = trainable_parameters(model)

    checkpoint = os.path.join(output_dir, "checkpoint")
    model_state, optimizer_state = get_state_dict(model, optimizer)
    dcp.save({"model": model_state, "optimizer": optimizer_state}, checkpoint_id=checkpoint)

    reloaded_model, reloaded_optimizer, _ = sharded(seed=1)
    differs_before_load = any(
        not torch.equal(value, saved[name]) for name, value in trainable_parameters(reloaded_model).items()
    )
    model_state, optimizer_state = get_state_dict(reloaded_model, reloaded_optimizer)
    state = {"model": model_state, "optimizer": optimizer_state}
    dcp.load(state, checkpoint_id=checkpoint)
    set_state_dict(
        reloaded_model, reloaded_optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"]
    )
    reloaded = trainable_parameters(reloaded_model)
    step(model, optimizer)
    step(reloaded_model, reloaded_optimizer)
    second_step_losses = [evaluate(model), evaluate(reloaded_model)]
    parameters = trainable_parameters(model)
    local_shape = next(p for p in model.parameters() if p.requires_grad).to_local().shape
    result = {
        "rank": rank,
        "world_size": world_size,
        "sharded_units": units,
        "first_parameter_local_shape": list(local_shape),
        "losses": [loss_before, loss_after],
        "differs_before_load": differs_before_load,
        "reloaded_equal": sorted(reloaded) == sorted(saved)
        and all(torch.equal(reloaded[name], saved[name]) for name in saved),
        "second_step_losses": second_step_losses,
        "checksum": checksum(parameters),
        "parameters": parameters,
    }
    if owner:
        dist.destroy_process_group()
    return result


def reference_fsdp2_losses() -> list[float]:
    """The FSDP2 run's first step on one process, without sharding: loss before the step and after it."""
    model = build_model()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LEARNING_RATE)
    batch = global_batch()
    loss = _loss(model, batch)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        return [loss.item(), _loss(model, batch).item()]


def write_result(output_dir: str, result: dict) -> None:
    rank = result["rank"]
    torch.save(result.pop("parameters"), os.path.join(output_dir, f"rank{rank}_parameters.pt"))
    with open(os.path.join(output_dir, f"rank{rank}.json"), "w") as file:
        json.dump(result, file, indent=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output_dir")
    parser.add_argument("modes", nargs="+", choices=["ddp", "fsdp2"])
    args = parser.parse_args()
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    for mode in args.modes:
        output_dir = os.path.join(args.output_dir, mode)
        os.makedirs(output_dir, exist_ok=True)
        if mode == "ddp":
            result = train_with_trainer(output_dir, per_device_batch_size=GLOBAL_BATCH_SIZE // world_size)
        else:
            result = train_with_fsdp2(output_dir)
        write_result(output_dir, result)


if __name__ == "__main__":
    main()
