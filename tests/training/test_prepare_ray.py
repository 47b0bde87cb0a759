"""Corpus preparation on Ray Data: the same shards, error report and resuming as the `datasets` engine.

One local Ray instance (2 CPUs) serves the whole module; `prepare_corpus` finds it running and uses it.
"""

import json
import os

import pyarrow.parquet as pq
import pytest
import torch
from tiny_models import spread_keep_scores, tiny_video_lavit_config

from video_lavit import VideoLaVITForConditionalGeneration, make_sample_video
from video_lavit.training import MediaTokenizers, load_prepared, prepare_corpus

ray = pytest.importorskip("ray")
# Ray Data warns about its own deprecated settings whenever it copies its context.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")

PROCESSOR_OPTIONS = {"max_clips": 2}
SHARD_FILES = ["shard-00000.parquet", "shard-00001.parquet"]


@pytest.fixture(scope="module")
def ray_cluster():
    context = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield context
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Two short videos (2 clips each with max_clips=2), a broken video and a missing one: two shards of two."""
    folder = tmp_path_factory.mktemp("corpus")
    for index, shift in enumerate([(2, 0), (0, 2)]):
        make_sample_video(
            folder / f"clip{index}.mp4", width=64, height=48, seconds=12.0, fps=12, shift=shift, seed=index
        )
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(400))
    return [str(folder / name) for name in ("clip0.mp4", "broken.mp4", "clip1.mp4", "missing.mp4")]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = VideoLaVITForConditionalGeneration(tiny_video_lavit_config(keyframe_input="codes")).eval()
    spread_keep_scores(model.model.visual_tokenizer)
    return model


@pytest.fixture(scope="module")
def reference(corpus, model, tmp_path_factory):
    """The corpus prepared by the `datasets` engine in one process."""
    output = tmp_path_factory.mktemp("reference")
    summary = prepare_corpus(
        corpus,
        output,
        media_tokenizers=MediaTokenizers.from_model(model),
        shard_size=2,
        processor_options=PROCESSOR_OPTIONS,
        progress=False,
    )
    assert (summary.prepared, summary.failed, summary.shards) == (2, 2, 2)
    return output


def read_errors(output):
    return [json.loads(line) for line in open(output / "errors.jsonl")]


def assert_same_preparation(output, reference):
    for name in SHARD_FILES:
        schema = pq.read_schema(output / "data" / name)
        assert schema.equals(pq.read_schema(reference / "data" / name), check_metadata=True)
    assert load_prepared(output).to_list() == load_prepared(reference).to_list()
    assert read_errors(output) == read_errors(reference)


@pytest.mark.slow
def test_ray_gives_the_datasets_shards(ray_cluster, corpus, model, reference, tmp_path, capfd):
    """In-memory tokenizers, pickled into two actors: the same Parquet files and error report."""
    job_id = ray.get_runtime_context().get_job_id()
    output = tmp_path / "ray"
    run = dict(
        media_tokenizers=MediaTokenizers.from_model(model),
        engine="ray",
        num_proc=2,
        batch_size=1,
        shard_size=2,
        processor_options=PROCESSOR_OPTIONS,
        progress=False,
    )
    summary = prepare_corpus(corpus, output, **run)
    assert (summary.prepared, summary.failed, summary.shards, summary.shards_skipped) == (2, 2, 2, 0)
    assert summary.error_classes == json.load(open(reference / "summary.json"))["error_classes"]
    assert_same_preparation(output, reference)
    assert {record["id"] for record in read_errors(output)} == {"1", "3"}
    # The running instance was used, not a new one, and no progress was drawn.
    assert ray.get_runtime_context().get_job_id() == job_id
    printed = capfd.readouterr()
    assert "Running Dataset" not in printed.out + printed.err and "Total Progress" not in printed.out + printed.err
    # A re-run finds every shard written.
    assert prepare_corpus(corpus, output, **run).shards_skipped == 2


@pytest.mark.slow
def test_ray_resumes_with_a_saved_model_folder(ray_cluster, corpus, model, reference, tmp_path):
    """Each actor loads the tokenizers from the folder; a re-run on Ray skips the shard already written."""
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    output = tmp_path / "prepared"
    run = dict(tokenizers=folder, shard_size=2, processor_options=PROCESSOR_OPTIONS, progress=False)
    prepare_corpus(corpus, output, **run)
    os.remove(output / "data" / "shard-00001.parquet")
    summary = prepare_corpus(corpus, output, engine="ray", **run)
    assert (summary.shards_skipped, summary.prepared, summary.failed, summary.keyframe_input) == (1, 2, 2, "codes")
    assert_same_preparation(output, reference)
