"""End-to-end tests of train_and_evaluate on a tiny in-memory data set."""

import json
import logging
import os
import signal
import subprocess
import sys
import time

from absl import logging as absl_logging
import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
import tqdm

from sigreg_jax.training import loop
from training_fixtures import tiny_config, tiny_dataset

DATASET = tiny_dataset()
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


def _records(workdir, kind):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    records = [json.loads(line) for line in f]
  return {record["step"]: record for record in records if record["kind"] == kind}


def _final_state(workdir, step):
  path = os.path.join(workdir, "checkpoints", str(step), "state")
  return ocp.StandardCheckpointer().restore(path)


def _resume_config():
  # Every random draw is on: crop, flip, MixUp/CutMix and 8 sketches of the
  # 32 channels, so a resume that reused or skipped a key would show.
  config = tiny_config(regularizer="weak", optimizer="adamw")
  config.augment.mix = True
  config.log_every_steps = 1
  config.checkpoint_every_steps = 3
  return config


@pytest.mark.slow
def test_run_writes_outputs(tmp_path):
  # All devices: 8 CPU devices in the test session, so this also runs the
  # loop with the batch and the evaluation sharded.
  config = tiny_config()
  summary = loop.train_and_evaluate(config, str(tmp_path), dataset=DATASET)

  assert summary["step"] == 8
  assert summary["preempted"] is False
  assert "stop_signal" not in summary
  assert summary["checkpoint"] == str(tmp_path / "checkpoints" / "8")
  assert summary["num_evaluations"] == 2
  evals = _records(tmp_path, "eval")
  assert sorted(evals) == [4, 8]
  assert summary["best_test_accuracy"] == max(record["test_accuracy"] for record in evals.values())
  assert summary["final_test_accuracy"] == evals[8]["test_accuracy"]
  assert len(evals[8]["test_participation_ratio"]) == 2
  assert len(evals[8]["test_entropy_rank"]) == 2
  assert sorted(_records(tmp_path, "train")) == [2, 4, 6, 8]
  assert "images_per_second" in _records(tmp_path, "train")[8]

  with open(tmp_path / "summary.json") as f:
    assert json.load(f) == summary
  with open(tmp_path / "config.json") as f:
    assert json.load(f)["optimizer"]["name"] == "adamw"
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["6", "8"]


@pytest.mark.slow
def test_resume_matches_uninterrupted_run(tmp_path):
  devices = jax.devices()[:1]
  config = _resume_config()
  whole_dir, split_dir = str(tmp_path / "whole"), str(tmp_path / "split")
  loop.train_and_evaluate(config, whole_dir, dataset=DATASET, devices=devices)

  # Stop mid-epoch at step 3 (a checkpoint step), then resume to the end.
  config.max_steps = 3
  first = loop.train_and_evaluate(config, split_dir, dataset=DATASET, devices=devices)
  # A record written after the checkpoint, as by a run killed between saves,
  # must be replaced by the resumed run's own record.
  with open(os.path.join(split_dir, "metrics.jsonl"), "a") as f:
    f.write(json.dumps({"step": 5, "kind": "train", "loss": 0.0}) + "\n")
  config.max_steps = None
  second = loop.train_and_evaluate(config, split_dir, dataset=DATASET, devices=devices)

  assert first["step"] == 3
  assert second["step"] == 8
  whole_train, split_train = _records(whole_dir, "train"), _records(split_dir, "train")
  assert sorted(split_train) == list(range(1, 9))
  for step, record in whole_train.items():
    for name, value in record.items():
      if name != "images_per_second":
        assert split_train[step][name] == value, (step, name)
  whole_eval, split_eval = _records(whole_dir, "eval"), _records(split_dir, "eval")
  for step in (4, 8):
    assert split_eval[step] == whole_eval[step]

  whole_state, split_state = _final_state(whole_dir, 8), _final_state(split_dir, 8)
  for whole, split in zip(jax.tree.leaves(whole_state), jax.tree.leaves(split_state)):
    np.testing.assert_array_equal(whole, split)


def test_nan_loss_stops_with_step(tmp_path):
  config = tiny_config(regularizer="none", optimizer="sgd")
  config.optimizer.learning_rate = 1e30
  config.checkpoint_every_steps = 100

  with pytest.raises(FloatingPointError, match=r"at step \d+"):
    loop.train_and_evaluate(config, str(tmp_path), dataset=DATASET, devices=jax.devices()[:1])
  assert os.listdir(tmp_path / "checkpoints") == []


def test_mismatched_checkpoint_rejected(tmp_path):
  config = tiny_config()
  config.max_steps = 2
  loop.train_and_evaluate(config, str(tmp_path), dataset=DATASET, devices=jax.devices()[:1])
  checkpoint_files = {
      os.path.join(root, name): os.path.getmtime(os.path.join(root, name))
      for root, _, names in os.walk(tmp_path / "checkpoints") for name in names
  }
  with open(tmp_path / "config.json") as f:
    saved_config = f.read()

  config.optimizer.learning_rate = 0.5
  config.num_epochs = 3
  with pytest.raises(ValueError, match="optimizer.learning_rate: 0.01 -> 0.5") as error:
    loop.train_and_evaluate(config, str(tmp_path), dataset=DATASET, devices=jax.devices()[:1])
  assert "num_epochs: 2 -> 3" in str(error.value)

  after = {
      os.path.join(root, name): os.path.getmtime(os.path.join(root, name))
      for root, _, names in os.walk(tmp_path / "checkpoints") for name in names
  }
  assert after == checkpoint_files
  with open(tmp_path / "config.json") as f:
    assert f.read() == saved_config


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("regularizer", "foo", r"config.regularizer must be one of .* got 'foo'"),
        ("alpha", -1.0, r"invalid config.alpha: alpha must be in \[0, 1\]"),
        ("alpha_warmup_epochs", -1.0, "invalid config.alpha_warmup_epochs: .* >= 0"),
        ("alpha_warmup_epochs", float("inf"), "invalid config.alpha_warmup_epochs: .*finite"),
        ("max_steps", -1, "config.max_steps must be >= 1, got -1"),
        ("max_steps", 0, "config.max_steps must be >= 1, got 0"),
        ("seed", -1, "config.seed must be >= 0"),
        ("weak.num_sketches", 0, "invalid config.weak: num_sketches must be at least 1"),
        ("weak.sketch", "foo", "invalid config.weak: sketch must be one of"),
    ],
)
def test_invalid_config_raises_before_writing(tmp_path, field, value, message):
  config = tiny_config(regularizer="weak")
  section, _, name = field.rpartition(".")
  (config[section] if section else config)[name] = value
  workdir = tmp_path / "run"

  # No dataset is passed: the check must fail before the trainer loads one.
  with pytest.raises(ValueError, match=message):
    loop.train_and_evaluate(config, str(workdir), devices=jax.devices()[:1])

  assert not workdir.exists()


@pytest.mark.parametrize("regularizer", ["none", "weak", "strong"])
@pytest.mark.parametrize("batch_size", [0, 1])
def test_batch_size_below_two_raises(tmp_path, regularizer, batch_size):
  config = tiny_config(regularizer=regularizer)
  config.batch_size = batch_size
  workdir = tmp_path / "run"

  with pytest.raises(ValueError, match=f"config.batch_size must be at least 2, got {batch_size}"):
    loop.train_and_evaluate(config, str(workdir), devices=jax.devices()[:1])

  assert not workdir.exists()


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("num_sketches", 0, "invalid config.weak: num_sketches must be at least 1"),
        ("sketch", "orth", "invalid config.weak: sketch must be one of"),
    ],
)
def test_baseline_checks_weak_config(tmp_path, field, value, message):
  # A run without a regulariser still logs Weak-SIGReg with config.weak.
  config = tiny_config(regularizer="none")
  config.weak[field] = value
  workdir = tmp_path / "run"

  with pytest.raises(ValueError, match=message) as error:
    loop.train_and_evaluate(config, str(workdir), devices=jax.devices()[:1])

  assert "config.regularizer 'none' uses config.weak" in str(error.value)
  assert not workdir.exists()


def test_strong_run_ignores_weak_config(tmp_path):
  config = tiny_config(regularizer="strong")
  config.weak.num_sketches = 0
  config.max_steps = 1

  summary = loop.train_and_evaluate(
      config, str(tmp_path), dataset=DATASET, devices=jax.devices()[:1])

  assert summary["step"] == 1


def test_invalid_strong_grid_raises(tmp_path):
  config = tiny_config(regularizer="strong")
  config.strong.num_knots = 8

  with pytest.raises(ValueError, match="invalid config.strong: num_knots must be odd"):
    loop.train_and_evaluate(config, str(tmp_path / "run"), devices=jax.devices()[:1])


def test_batch_size_indivisible_by_devices(tmp_path):
  if jax.device_count() < 4:
    pytest.skip(f"needs 4 devices, found {jax.device_count()}")
  config = tiny_config()
  config.batch_size = 18
  with pytest.raises(ValueError, match="not divisible by the 4 devices"):
    loop.train_and_evaluate(config, str(tmp_path), dataset=DATASET, devices=jax.devices()[:4])


def _log_during_bar(message_logger, messages):
  """Log `messages` through `message_logger` halfway through a two-step bar."""
  with tqdm.tqdm(total=2, file=sys.stderr) as progress, loop._log_above_progress_bar(progress):
    progress.update(1)
    for message in messages:
      message_logger(message)
    progress.update(1)


def _text_after_carriage_return(output, message):
  """Return what the terminal shows on each line of `output` that contains `message`."""
  return [line.rsplit("\r", 1)[-1] for line in output.split("\n") if message in line]


def test_log_lines_do_not_break_bar(capsys):
  handler = logging.StreamHandler(sys.stderr)
  handler.setFormatter(logging.Formatter("%(message)s"))
  handler.addFilter(lambda record: "dropped" not in record.getMessage())
  logger = logging.getLogger("test_log_lines_do_not_break_bar")
  logger.setLevel(logging.INFO)
  root = logging.getLogger()
  root.addHandler(handler)
  try:
    _log_during_bar(logger.info, ["kept line", "dropped line"])
    handlers_after = list(root.handlers)
  finally:
    root.removeHandler(handler)

  error_output = capsys.readouterr().err
  # The bar is cleared with a carriage return before the record is written.
  assert _text_after_carriage_return(error_output, "kept line") == ["kept line"]
  assert "dropped line" not in error_output
  assert handler in handlers_after
  assert not any(isinstance(h, loop._BarSafeHandler) for h in handlers_after)


def test_absl_log_lines_print_once_above_bar(capsys):
  # absl.app.run installs this handler on the root logger.
  handler = absl_logging.get_absl_handler()
  root = logging.getLogger()
  root.addHandler(handler)
  previous_level = absl_logging.get_verbosity()
  absl_logging.set_verbosity(absl_logging.INFO)
  try:
    # Before flags are parsed, absl's first record starts with a line of its
    # own that would hide a broken bar.
    absl_logging.info("before the bar")
    _log_during_bar(absl_logging.info, ["absl line"])
  finally:
    absl_logging.set_verbosity(previous_level)
    root.removeHandler(handler)

  visible_lines = _text_after_carriage_return(capsys.readouterr().err, "absl line")
  assert len(visible_lines) == 1
  assert visible_lines[0].startswith("I")
  assert visible_lines[0].endswith("] absl line")


def test_disabled_bar_leaves_handlers(capsys):
  root = logging.getLogger()
  handlers_before = list(root.handlers)

  with tqdm.tqdm(total=1, disable=True) as progress, loop._log_above_progress_bar(progress):
    assert root.handlers == handlers_before


_SIGTERM_CHILD = """
import json, sys
sys.path.insert(0, {tests_dir!r})
from sigreg_jax.training import loop
from training_fixtures import tiny_config, tiny_dataset
config = tiny_config(regularizer="none")
config.num_epochs = 100000
config.log_every_steps = 1
config.checkpoint_every_steps = 10**6
summary = loop.train_and_evaluate(config, {workdir!r}, dataset=tiny_dataset())
print("SUMMARY", json.dumps(summary))
"""


@pytest.mark.slow
def test_sigterm_saves_and_exits(tmp_path):
  workdir = str(tmp_path / "run")
  script = _SIGTERM_CHILD.format(tests_dir=TESTS_DIR, workdir=workdir)
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  child = subprocess.Popen(
      [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True, env=env)
  try:
    metrics_path = os.path.join(workdir, "metrics.jsonl")
    deadline = time.monotonic() + 240
    while not os.path.exists(metrics_path):
      assert child.poll() is None, child.communicate()
      assert time.monotonic() < deadline, "training did not start within 240 s"
      time.sleep(0.2)
    child.send_signal(signal.SIGTERM)
    stdout, stderr = child.communicate(timeout=120)
  finally:
    if child.poll() is None:
      child.kill()

  assert child.returncode == 0, stderr[-3000:]
  summary = json.loads(stdout.split("SUMMARY", 1)[1])
  assert summary["preempted"] is True
  assert summary["stop_signal"] == "SIGTERM"
  assert 1 <= summary["step"] < 100000 * 4
  assert os.listdir(os.path.join(workdir, "checkpoints")) == [str(summary["step"])]
  assert summary["checkpoint"] == os.path.join(workdir, "checkpoints", str(summary["step"]))
  assert (f"Stopping early at step {summary['step']} of 400000 after SIGTERM; saving the "
          f"checkpoint {summary['checkpoint']}") in stderr
