"""Tests of the experiment configs, entry points and plotting command.

The end-to-end tests train each experiment for a few steps on a small slice
of the real CIFAR-10 image-folder archive that sits beside the repository.
They are skipped when the archive is absent.
"""

import collections
import io
import json
import logging
import os
import pathlib
import subprocess
import sys
import tarfile

from absl import logging as absl_logging
import numpy as np
import orbax.checkpoint as ocp
import pytest

from experiments import launch
from experiments import plot
from experiments.configs import mlp_sgd
from experiments.configs import vit_cifar100
from sigreg_jax.models import vit

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
CIFAR10_ARCHIVE = REPO_ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"


# Settings of Akbar, 2026, "Weak-SIGReg: Covariance Regularization for Stable
# Deep Learning", arXiv 2603.05924, CIFAR-100 protocol.
def test_common_defaults_match_paper():
  config = vit_cifar100.get_config()

  assert config.dataset == "cifar100"
  assert config.data_source == "tfds"
  assert config.batch_size == 128
  assert config.num_epochs == 400
  assert config.max_steps is None
  assert config.regularizer == "none"
  assert config.alpha is None
  assert config.weak.num_sketches == 64
  assert config.weak.sketch == "gaussian"
  assert config.strong.num_slices == 64
  assert (config.strong.t_max, config.strong.num_knots) == (5.0, 9)


def test_vit_collapse_defaults_match_paper():
  config = vit_cifar100.get_config()

  assert config.variant == "collapse"
  model = config.model
  assert model.name == "vit"
  assert (model.patch_size, model.width, model.depth) == (4, 256, 6)
  assert (model.num_heads, model.mlp_dim) == (8, 512)
  assert not model.qkv_bias
  assert model.position_embedding == "rope2d"
  assert model.rope_base == 10000.0
  assert not model.class_token
  assert model.pool == "mean"
  assert model.stochastic_depth_rate == 0.0
  assert model.to_dict() == dict(name="vit", **vit.vit_collapse_kwargs())

  optimizer = config.optimizer
  assert optimizer.name == "adamw"
  assert optimizer.learning_rate == 1e-3
  assert (optimizer.b1, optimizer.b2) == (0.9, 0.999)
  assert optimizer.weight_decay == 5e-4
  assert optimizer.weight_decay_mask == "all"
  assert optimizer.schedule == "cosine"
  assert optimizer.final_learning_rate == 0.0
  assert optimizer.warmup_epochs == 0.0
  assert optimizer.grad_clip_norm is None

  augment = config.augment
  assert (augment.crop_padding, augment.flip) == (4, True)
  assert augment.randaugment
  assert (augment.randaugment_num_ops, augment.randaugment_magnitude) == (2, 9)
  assert augment.mix
  assert (augment.mixup_alpha, augment.cutmix_alpha) == (0.8, 1.0)
  assert augment.mix_probability == 0.5


def test_vit_muon_variants_match_paper():
  for variant, mix in (("muon", True), ("muon_nomix", False)):
    config = vit_cifar100.get_config(variant)

    assert config.optimizer.name == "muon"
    assert config.optimizer.muon_learning_rate == 1e-2
    assert config.optimizer.learning_rate == 1e-3
    assert (config.optimizer.adam_b1, config.optimizer.adam_b2) == (0.9, 0.95)
    assert config.optimizer.weight_decay == 5e-4
    assert config.augment.mix == mix
    assert config.model.width == 256


def test_vit_tuned_variant_matches_paper():
  for variant, optimizer_name in (("tuned", "adamw"), ("tuned_muon", "muon")):
    config = vit_cifar100.get_config(variant)

    model = config.model
    assert (model.width, model.depth, model.num_heads, model.mlp_dim) == (
        192, 9, 3, 768)
    assert model.qkv_bias
    assert model.class_token
    assert model.position_embedding == "learned"
    assert model.stochastic_depth_rate == 0.1
    assert model.to_dict() == dict(name="vit", **vit.vit_tuned_kwargs())
    assert config.optimizer.name == optimizer_name
    assert config.optimizer.weight_decay == 0.05
    assert config.optimizer.grad_clip_norm == 1.0
    assert config.optimizer.final_learning_rate == 1e-5


def test_mlp_defaults_match_paper():
  config = mlp_sgd.get_config()

  assert config.model.to_dict() == dict(
      name="mlp", hidden_widths=(1024,) * 5, activation="relu")
  optimizer = config.optimizer
  assert optimizer.name == "sgd"
  assert optimizer.learning_rate == 0.1
  assert optimizer.momentum is None
  assert optimizer.weight_decay == 0.0
  assert optimizer.schedule == "constant"
  assert optimizer.grad_clip_norm == 1.0
  assert (config.augment.crop_padding, config.augment.flip) == (4, True)
  assert not config.augment.randaugment
  assert not config.augment.mix
  assert config.batch_size == 128
  assert config.num_epochs == 400


def test_mlp_mix_variant_adds_mixup_cutmix():
  config = mlp_sgd.get_config("mix")

  assert config.augment.mix
  assert not config.augment.randaugment


@pytest.mark.parametrize("module", [vit_cifar100, mlp_sgd])
def test_unknown_variant_raises(module):
  with pytest.raises(ValueError, match="variant 'bogus'"):
    module.get_config("bogus")


# A few steps of each experiment on 80 training and 40 test images: batch 16
# gives 5 steps per epoch, so max_steps=7 crosses one end-of-epoch evaluation
# and one periodic checkpoint before the final ones.
TRAIN_IMAGES_PER_CLASS = 8
TEST_IMAGES_PER_CLASS = 4
MAX_STEPS = 7

SMALL_RUN_FLAGS = (
    "--config.dataset=cifar10",
    "--config.data_source=image_folder",
    "--config.batch_size=16",
    "--config.num_epochs=2",
    f"--config.max_steps={MAX_STEPS}",
    "--config.log_every_steps=2",
    "--config.checkpoint_every_steps=4",
    "--config.progress_bar=False",
    "--config.regularizer=weak",
)
TINY_MODEL_FLAGS = {
    "vit_cifar100": ("--config.model.width=32", "--config.model.depth=2",
                     "--config.model.num_heads=2", "--config.model.mlp_dim=64"),
    "mlp_sgd": ("--config.model.hidden_widths=(64,64,64)",),
}


@pytest.fixture(scope="module")
def cifar10_slice(tmp_path_factory) -> pathlib.Path:
  """Copy the first images of each class of the CIFAR-10 archive to a tar.gz."""
  if not CIFAR10_ARCHIVE.exists():
    pytest.skip(f"The real-image test needs the CIFAR-10 image-folder archive "
                f"at {CIFAR10_ARCHIVE}, which is absent on this machine.")

  limits = {"train": TRAIN_IMAGES_PER_CLASS, "test": TEST_IMAGES_PER_CLASS}
  counts = collections.Counter()
  path = tmp_path_factory.mktemp("data") / "cifar10-slice.tar.gz"
  with tarfile.open(CIFAR10_ARCHIVE) as source, \
      tarfile.open(path, "w:gz") as sliced:
    for member in source:
      parts = member.name.split("/")
      if not member.isfile() or len(parts) < 3:
        continue
      split, class_name = parts[-3], parts[-2]
      if counts[split, class_name] < limits.get(split, 0):
        counts[split, class_name] += 1
        sliced.addfile(member, source.extractfile(member))

  assert sum(counts.values()) == 10 * (TRAIN_IMAGES_PER_CLASS +
                                       TEST_IMAGES_PER_CLASS)
  return path


@pytest.fixture(scope="module")
def experiment_workdirs(cifar10_slice, tmp_path_factory) -> dict:
  """Run each experiment's entry point on the slice; return their workdirs."""
  workdirs = {}
  for experiment, model_flags in TINY_MODEL_FLAGS.items():
    workdir = tmp_path_factory.mktemp("workdirs") / experiment
    command = [
        sys.executable, "-m", f"experiments.{experiment}",
        f"--workdir={workdir}", f"--config.data_dir={cifar10_slice}",
        *SMALL_RUN_FLAGS, *model_flags,
    ]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=600, check=False)
    assert result.returncode == 0, (
        f"{' '.join(command)} failed:\n{result.stderr[-4000:]}")
    workdirs[experiment] = workdir
  return workdirs


@pytest.mark.slow
@pytest.mark.parametrize("experiment", sorted(TINY_MODEL_FLAGS))
def test_experiment_writes_run_files(experiment_workdirs, experiment):
  workdir = experiment_workdirs[experiment]

  config = json.loads((workdir / "config.json").read_text())
  assert config["experiment"] == experiment
  assert config["regularizer"] == "weak"
  assert config["max_steps"] == MAX_STEPS

  records = [json.loads(line)
             for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  train = [r for r in records if r["kind"] == "train"]
  evaluation = [r for r in records if r["kind"] == "eval"]
  assert [r["step"] for r in evaluation] == [5, MAX_STEPS]
  assert train[-1]["step"] == MAX_STEPS
  assert len(train[-1]["regularizer_per_layer"]) == len(
      evaluation[-1]["test_entropy_rank"])

  checkpoint_steps = sorted(
      int(path.name) for path in (workdir / "checkpoints").iterdir()
      if path.name.isdigit())
  assert checkpoint_steps == [4, MAX_STEPS]

  summary = json.loads((workdir / "summary.json").read_text())
  assert summary["step"] == MAX_STEPS
  assert not summary["preempted"]
  assert summary["best_test_accuracy"] == max(
      r["test_accuracy"] for r in evaluation)
  assert summary["final_test_accuracy"] == evaluation[-1]["test_accuracy"]


@pytest.mark.slow
def test_plot_command_overlays_runs(experiment_workdirs, tmp_path):
  output = tmp_path / "runs.png"
  workdirs = [str(experiment_workdirs[name])
              for name in sorted(experiment_workdirs)]

  result = subprocess.run(
      [sys.executable, "-m", "experiments.plot", *workdirs,
       f"--output={output}", "--labels=mlp,vit"],
      cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)

  assert result.returncode == 0, result.stderr[-4000:]
  assert output.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("output, message", [("", "is a folder"), ("runs", "must end in .png")],
                         ids=["folder", "no_suffix"])
def test_plot_command_rejects_bad_output(tmp_path, output, message):
  result = subprocess.run(
      [sys.executable, "-m", "experiments.plot", str(tmp_path),
       f"--output={tmp_path / output}"],
      cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)

  assert result.returncode != 0
  assert message in result.stderr


# The example overrides that each entry point's --help shows.
HELP_OVERRIDES = {
    "vit_cifar100": ("--config.batch_size=256", "--config.regularizer=weak",
                     "--config.optimizer.learning_rate=5e-4"),
    "mlp_sgd": ("--config.batch_size=256", "--config.regularizer=weak",
                "--config.optimizer.learning_rate=0.05"),
}


@pytest.mark.parametrize("experiment", sorted(HELP_OVERRIDES))
def test_help_points_to_config_fields(experiment):
  # absl prints --help to stdout and exits with status 1.
  result = subprocess.run(
      [sys.executable, "-m", f"experiments.{experiment}", "--help"],
      cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)

  assert "sigreg_jax/training/config.py" in result.stdout
  assert f"experiments/configs/{experiment}.py" in result.stdout
  for override in HELP_OVERRIDES[experiment]:
    assert override in result.stdout


@pytest.mark.parametrize("experiment", sorted(HELP_OVERRIDES))
def test_help_example_overrides_parse(experiment, tmp_path):
  # num_epochs=0 makes the trainer reject the config right after the flags
  # parse, before it loads any data.
  result = subprocess.run(
      [sys.executable, "-m", f"experiments.{experiment}",
       *HELP_OVERRIDES[experiment], "--config.num_epochs=0",
       f"--workdir={tmp_path / 'run'}"],
      cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)

  assert "config.num_epochs must be >= 1, got 0" in result.stderr, result.stderr[-2000:]


def _write_metrics(workdir: pathlib.Path, records: list[dict]) -> None:
  workdir.mkdir()
  with open(workdir / "metrics.jsonl", "w") as metrics_file:
    for record in records:
      metrics_file.write(json.dumps(record) + "\n")


# One training record and one evaluation, 10 steps per epoch.
ONE_EPOCH_RECORDS = [
    dict(step=5, kind="train", epoch=0.5, accuracy=0.1, cross_entropy=2.3),
    dict(step=10, kind="eval", test_accuracy=0.2, test_loss=2.2,
         test_entropy_rank=[3.0, 4.0], test_participation_ratio=[2.0, 3.0]),
]


def test_load_run_converts_steps_to_epochs(tmp_path):
  workdir = tmp_path / "run"
  _write_metrics(workdir, ONE_EPOCH_RECORDS)
  (workdir / "metrics.jsonl").open("a").write("{truncated\n")

  run = plot.load_run(str(workdir))

  assert run.label == "run"
  assert run.steps_per_epoch == 10
  assert [r["step"] for r in run.train] == [5]
  assert [r["step"] for r in run.evaluation] == [10]


def test_plot_creates_output_folder(tmp_path):
  workdir = tmp_path / "run"
  _write_metrics(workdir, ONE_EPOCH_RECORDS)
  output = tmp_path / "new" / "folder" / "runs.png"

  plot.plot_runs([plot.load_run(str(workdir))], str(output))

  assert output.is_file()


def test_plot_runs_without_regularizer(tmp_path):
  workdir = tmp_path / "baseline"
  _write_metrics(workdir, ONE_EPOCH_RECORDS)
  output = tmp_path / "baseline.png"

  plot.plot_runs([plot.load_run(str(workdir))], str(output))

  assert output.read_bytes().startswith(b"\x89PNG")


def test_load_run_without_metrics_raises(tmp_path):
  with pytest.raises(FileNotFoundError, match="No metrics.jsonl"):
    plot.load_run(str(tmp_path))


def _record(pathname, level):
  return logging.LogRecord("absl", level, pathname, 1, "message", None, None)


def test_orbax_filter_drops_only_orbax_info():
  orbax_file = os.path.join(launch.ORBAX_DIR, "checkpoint", "_src", "handler.py")
  user_file = str(REPO_ROOT / "experiments" / "launch.py")
  log_filter = launch.OrbaxInfoFilter()

  assert not log_filter.filter(_record(orbax_file, logging.INFO))
  assert not log_filter.filter(_record(orbax_file, logging.DEBUG))
  assert log_filter.filter(_record(orbax_file, logging.WARNING))
  assert log_filter.filter(_record(orbax_file, logging.ERROR))
  assert log_filter.filter(_record(user_file, logging.INFO))


def test_orbax_save_logs_dropped_user_logs_kept(tmp_path):
  stream = io.StringIO()
  handler = logging.StreamHandler(stream)
  root = logging.getLogger()
  root.addHandler(handler)
  previous_level = root.level
  root.setLevel(logging.INFO)
  try:
    with launch.orbax_info_logs_dropped():
      checkpointer = ocp.StandardCheckpointer()
      checkpointer.save(tmp_path / "checkpoint", {"weights": np.zeros(3)})
      checkpointer.wait_until_finished()
      checkpointer.close()
      absl_logging.info("user line")
    filters_after = list(handler.filters)
  finally:
    root.setLevel(previous_level)
    root.removeHandler(handler)

  output = stream.getvalue()
  assert "user line" in output
  assert "orbax" not in output.lower()
  assert filters_after == []


def _run_with_summary(monkeypatch, caplog, summary):
  """Run `launch.run` with a stub trainer that returns `summary`, and return the log records."""
  monkeypatch.setattr(launch.loop, "train_and_evaluate",
                      lambda config, workdir: dict(summary))
  config = vit_cifar100.get_config()
  with caplog.at_level(logging.INFO):
    launch.run(config, "workdirs/run")
  return caplog.records


def test_run_logs_early_stop_last(monkeypatch, caplog):
  summary = {"step": 40, "preempted": True, "stop_signal": "SIGINT",
             "checkpoint": "/runs/vit/checkpoints/40"}

  records = _run_with_summary(monkeypatch, caplog, summary)

  assert records[-1].levelno == logging.WARNING
  assert records[-1].getMessage() == (
      "Stopped early at step 40 after SIGINT and saved the checkpoint "
      "/runs/vit/checkpoints/40. Rerun the same command to resume from step 40.")


def test_finished_run_logs_no_early_stop(monkeypatch, caplog):
  summary = {"step": 7, "preempted": False,
             "checkpoint": "/runs/vit/checkpoints/7"}

  records = _run_with_summary(monkeypatch, caplog, summary)

  assert records[-1].getMessage().startswith("Summary of workdirs/run")
  assert not [record for record in records if "Stopped early" in record.getMessage()]
