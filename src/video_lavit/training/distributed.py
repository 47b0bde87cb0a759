"""Sharded data-parallel training: FSDP2 (`torch.distributed.fsdp.fully_shard`) applied the way the model asks.

Plain data parallelism needs nothing from the package: `transformers.Trainer` under `torchrun` wraps the model in
`DistributedDataParallel` itself. Sharding (FSDP) needs a wrap policy: which submodules gather their parameters
together, one unit at a time. The model declares its units in `_no_split_modules` (the LLaMA decoder layer, the
keyframe tokenizer's `EvaLayer` and `FusionBlock`, the motion tokenizer's `SpatioTemporalBlock`): the same list
that `device_map="auto"` and accelerate's `TRANSFORMER_BASED_WRAP` read, so a checkpoint is split the same way
whatever launches it. The paper trains on many GPUs with DeepSpeed; this file is the plain-PyTorch equivalent of
ZeRO-3 for a loop written by hand (accelerate and DeepSpeed configs are in `examples/configs/`).
"""

from __future__ import annotations

from torch import nn
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.fsdp import fully_shard

from ..errors import InvalidInputError


def apply_fsdp2(model: nn.Module, mesh: DeviceMesh | None = None, **fully_shard_kwargs) -> list[str]:
    """Shard `model` with FSDP2, in place: one unit per submodule whose class is in `model._no_split_modules`, and
    the root (embeddings, head, final norm and everything outside those units) as the last one.

    Call it after `freeze_for_training` (frozen parameters are sharded too, and get no gradient) and before building
    the optimizer, in every process of an initialized process group. Units are sharded innermost first, as
    `fully_shard` requires. The model's classes stay the same (`fully_shard` adds `FSDPModule` to them), so its
    `forward`, `loss_function` and `state_dict` keys are unchanged; parameters become `DTensor` shards. Save and
    load with `torch.distributed.checkpoint` (`get_state_dict` / `set_state_dict`, `dcp.save` / `dcp.load`).

    Args:
        model (`nn.Module`): a Video-LaVIT model (or any transformers model), optionally PEFT-wrapped; its
            `_no_split_modules` names the units.
        mesh (`DeviceMesh`, *optional*): the data-parallel mesh, e.g. `init_device_mesh("cuda", (world_size,))`;
            defaults to one over the whole default process group on the current device type (for CPU training with
            the gloo backend, pass `init_device_mesh("cpu", (world_size,))`).
        **fully_shard_kwargs: passed to every `fully_shard` call, e.g. `mp_policy=MixedPrecisionPolicy(...)`,
            `reshard_after_forward=False`, `offload_policy=CPUOffloadPolicy()`.

    Returns:
        The names of the sharded submodules, innermost first, ending with `""` for the root.
    """
    unit_classes = set(getattr(model, "_no_split_modules", None) or ())
    if not unit_classes:
        raise InvalidInputError(
            f"{type(model).__name__} declares no _no_split_modules, so there is no wrap policy; pass a Video-LaVIT "
            "model or call torch.distributed.fsdp.fully_shard on its layers yourself"
        )
    units = [(name, module) for name, module in model.named_modules() if type(module).__name__ in unit_classes]
    if not units:
        raise InvalidInputError(
            f"none of the model's submodules is one of its _no_split_modules {sorted(unit_classes)}; nothing to shard"
        )
    sharded = []
    # `named_modules` lists parents before children: reversed, every unit is sharded before any unit around it.
    for name, module in reversed(units):
        if module is not model:
            fully_shard(module, mesh=mesh, **fully_shard_kwargs)
            sharded.append(name)
    fully_shard(model, mesh=mesh, **fully_shard_kwargs)
    sharded.append("")
    return sharded


__all__ = ["apply_fsdp2"]
