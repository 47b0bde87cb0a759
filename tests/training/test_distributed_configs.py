"""The launcher configurations in `examples/configs/` are ones accelerate reads as written, for this model.

Each accelerate YAML file loads through accelerate's own `ClusterConfig` (which refuses unknown keys); every key
nested under `fsdp_config` / `deepspeed_config` is an `accelerate launch` option (the launcher copies them onto its
options, and ignores a misspelled one silently); the FSDP settings build a `FullyShardedDataParallelPlugin` whose
wrap policy finds every class in the model's `_no_split_modules`. DeepSpeed is not installed here, so the ZeRO-3
JSON file is checked by hand against the fields DeepSpeed and the transformers integration read.
"""

import json
import os

import pytest
import yaml
from accelerate.commands.config.config_args import ClusterConfig
from accelerate.commands.launch import launch_command_parser
from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin
from tiny_models import tiny_video_lavit_config

from video_lavit import VideoLaVITForConditionalGeneration

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = os.path.join(REPOSITORY, "examples", "configs")
ACCELERATE_FILES = ["accelerate_fsdp2.yaml", "accelerate_multi_node.yaml", "accelerate_deepspeed_zero3.yaml"]
FSDP_FILES = ["accelerate_fsdp2.yaml", "accelerate_multi_node.yaml"]

# `fsdp_config` keys whose `FullyShardedDataParallelPlugin` field is not the key without its `fsdp_` prefix.
PLUGIN_FIELD_NAMES = {
    "fsdp_version": "fsdp_version",
    "fsdp_transformer_layer_cls_to_wrap": "transformer_cls_names_to_wrap",
    "fsdp_offload_params": "cpu_offload",
}
# accelerate raises when these come from its config file while a DeepSpeed JSON file is given
# (`DeepSpeedPlugin._deepspeed_config_checks`): the JSON file must hold them.
SET_IN_DEEPSPEED_FILE = [
    "gradient_accumulation_steps",
    "gradient_clipping",
    "zero_stage",
    "offload_optimizer_device",
    "offload_param_device",
    "offload_param_nvme_path",
    "offload_optimizer_nvme_path",
    "zero3_save_16bit_model",
    "mixed_precision",
]


def load(name: str) -> dict:
    with open(os.path.join(CONFIGS, name)) as file:
        return yaml.safe_load(file)


def launch_options() -> set[str]:
    return set(vars(launch_command_parser().parse_args(["train.py"])))


@pytest.fixture(scope="module")
def model():
    return VideoLaVITForConditionalGeneration(tiny_video_lavit_config(keyframe_input="codes"))


@pytest.mark.parametrize("name", ACCELERATE_FILES)
def test_accelerate_reads_the_file(name):
    config = ClusterConfig.from_yaml_file(os.path.join(CONFIGS, name))
    assert config.use_cpu is False
    assert config.num_processes % config.num_machines == 0
    options = launch_options()
    for key in config.fsdp_config:
        assert key in options, f"{name}: fsdp_config.{key} is not an accelerate launch option"
    for key in config.deepspeed_config:
        assert key in options, f"{name}: deepspeed_config.{key} is not an accelerate launch option"


@pytest.mark.parametrize("name", FSDP_FILES)
def test_fsdp2_wraps_the_models_no_split_modules(name, model):
    config = ClusterConfig.from_yaml_file(os.path.join(CONFIGS, name))
    assert config.distributed_type == DistributedType.FSDP
    assert config.mixed_precision == "bf16"
    fsdp = load(name)["fsdp_config"]
    assert fsdp["fsdp_version"] == 2
    assert fsdp["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert fsdp["fsdp_state_dict_type"] == "SHARDED_STATE_DICT"
    assert fsdp["fsdp_activation_checkpointing"] is True
    assert set(fsdp["fsdp_transformer_layer_cls_to_wrap"].split(",")) == set(model._no_split_modules)

    fields = {PLUGIN_FIELD_NAMES.get(key, key.removeprefix("fsdp_")): value for key, value in fsdp.items()}
    plugin = FullyShardedDataParallelPlugin(**fields)
    assert plugin.fsdp_version == 2
    assert plugin.state_dict_type.name == "SHARDED_STATE_DICT" and plugin.activation_checkpointing is True
    assert set(plugin.transformer_cls_names_to_wrap) == set(model._no_split_modules)
    plugin.set_auto_wrap_policy(model)  # raises if a class name is not found in the model
    wrapped = {cls.__name__ for cls in plugin.auto_wrap_policy.keywords["transformer_layer_cls"]}
    assert wrapped == set(model._no_split_modules)


def test_multi_node_file_names_the_main_machine():
    config = ClusterConfig.from_yaml_file(os.path.join(CONFIGS, "accelerate_multi_node.yaml"))
    assert config.num_machines == 2
    assert config.machine_rank == 0
    assert config.main_process_ip and isinstance(config.main_process_port, int)
    assert config.num_processes == 16


def test_deepspeed_zero3_files():
    config = ClusterConfig.from_yaml_file(os.path.join(CONFIGS, "accelerate_deepspeed_zero3.yaml"))
    assert config.distributed_type == DistributedType.DEEPSPEED
    accelerate_fields = set(load("accelerate_deepspeed_zero3.yaml")) | set(config.deepspeed_config)
    assert not accelerate_fields & set(SET_IN_DEEPSPEED_FILE)
    assert config.deepspeed_config["zero3_init_flag"] is True
    path = os.path.join(REPOSITORY, config.deepspeed_config["deepspeed_config_file"])
    with open(path) as file:
        deepspeed = json.load(file)

    zero = deepspeed["zero_optimization"]
    assert zero["stage"] == 3
    assert zero["stage3_gather_16bit_weights_on_model_save"] is True  # save_model writes full weights
    assert deepspeed["bf16"] == {"enabled": True}
    assert not deepspeed.get("fp16", {}).get("enabled", False)
    # "auto": the transformers integration fills these from TrainingArguments (and checks the rest against them).
    for key in ("train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps"):
        assert deepspeed[key] == "auto"
    for key in ("stage3_max_live_parameters", "stage3_max_reuse_distance", "sub_group_size"):
        assert isinstance(zero[key], int) and zero[key] > 0
