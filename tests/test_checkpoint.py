"""Tests for the Orbax checkpoint wrapper, the config check and SIGTERM handling."""

import doctest
import os
import signal

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from sigreg_jax import checkpoint as checkpoint_lib


def _config(**overrides):
  config = ml_collections.ConfigDict(dict(
      seed=0, num_epochs=10, max_steps=None, log_every_steps=5,
      optimizer=dict(name="adamw", learning_rate=1e-3), model=dict(widths=(4, 4))))
  config.update(overrides)
  return config


def _state(value=1.0):
  return {"params": {"w": jnp.full((3, 2), value)}, "step": jnp.array(7, jnp.uint32)}


def test_trajectory_config_skips_run_control():
  fields = checkpoint_lib.trajectory_config(_config())
  assert fields["optimizer.learning_rate"] == 1e-3
  assert fields["model.widths"] == [4, 4]
  assert "max_steps" not in fields
  assert "log_every_steps" not in fields
  assert fields["num_epochs"] == 10


def test_fingerprint_ignores_run_control_fields():
  base = checkpoint_lib.config_fingerprint(_config())
  assert checkpoint_lib.config_fingerprint(_config(max_steps=3, log_every_steps=1)) == base
  assert checkpoint_lib.config_fingerprint(_config(num_epochs=11)) != base
  assert checkpoint_lib.config_fingerprint(_config(seed=1)) != base


def test_fingerprint_keeps_older_runs_resumable():
  # A config saved before alpha_warmup_epochs existed has the same
  # fingerprint as today's config with the field at 0.
  base = checkpoint_lib.config_fingerprint(_config())
  assert checkpoint_lib.config_fingerprint(_config(alpha_warmup_epochs=0.0)) == base
  assert checkpoint_lib.config_fingerprint(_config(alpha_warmup_epochs=5.0)) != base


def test_differences_show_later_field_default():
  saved = checkpoint_lib.trajectory_config(_config(alpha_warmup_epochs=2.0))
  current = checkpoint_lib.trajectory_config(_config(alpha_warmup_epochs=0.0))

  assert checkpoint_lib.config_differences(saved, current) == [
      "alpha_warmup_epochs: 2.0 -> 0.0"]


def test_save_and_restore_round_trip(tmp_path):
  manager = checkpoint_lib.CheckpointManager(str(tmp_path), config=_config())
  assert manager.restore(checkpoint_lib.abstract_like(_state())) is None
  assert manager.save(7, _state(2.5), force=True)
  manager.close()

  manager = checkpoint_lib.CheckpointManager(str(tmp_path), config=_config(max_steps=100))
  state, metadata = manager.restore(checkpoint_lib.abstract_like(_state()))
  manager.close()
  np.testing.assert_array_equal(state["params"]["w"], np.full((3, 2), 2.5))
  assert int(state["step"]) == 7
  assert metadata["step"] == 7
  assert metadata["fingerprint"] == checkpoint_lib.config_fingerprint(_config())


def test_save_interval_and_max_to_keep(tmp_path):
  manager = checkpoint_lib.CheckpointManager(
      str(tmp_path), config=_config(), max_to_keep=2, save_interval_steps=2)
  saved = [manager.save(step, _state(step)) for step in range(1, 8)]
  manager.close()
  assert saved == [False, True, False, True, False, True, False]
  assert sorted(os.listdir(tmp_path / "checkpoints"), key=int) == ["4", "6"]


def test_mismatched_config_rejected_and_kept(tmp_path):
  manager = checkpoint_lib.CheckpointManager(str(tmp_path), config=_config())
  manager.save(7, _state(), force=True)
  manager.close()

  changed = _config(seed=3)
  changed.optimizer.learning_rate = 0.1
  manager = checkpoint_lib.CheckpointManager(str(tmp_path), config=changed)
  with pytest.raises(ValueError, match="different config") as error:
    manager.restore(checkpoint_lib.abstract_like(_state()))
  manager.close()
  assert "optimizer.learning_rate: 0.001 -> 0.1" in str(error.value)
  assert "seed: 0 -> 3" in str(error.value)
  assert os.listdir(tmp_path / "checkpoints") == ["7"]


def test_preemption_watcher_catches_sigterm():
  previous = signal.getsignal(signal.SIGTERM)
  with checkpoint_lib.PreemptionWatcher() as watcher:
    assert not watcher.should_stop(1)
    os.kill(os.getpid(), signal.SIGTERM)
    assert watcher.should_stop(2)
    assert watcher.signal_name == "SIGTERM"
  assert signal.getsignal(signal.SIGTERM) is previous


def test_preemption_watcher_catches_ctrl_c():
  previous = signal.getsignal(signal.SIGINT)
  with checkpoint_lib.PreemptionWatcher() as watcher:
    assert watcher.signal_name is None
    signal.raise_signal(signal.SIGINT)
    assert watcher.should_stop(1)
    assert watcher.signal_name == "SIGINT"

    # A second Ctrl-C stops at once.
    with pytest.raises(KeyboardInterrupt):
      signal.raise_signal(signal.SIGINT)
  assert signal.getsignal(signal.SIGINT) is previous


def test_docstring_example_runs():
  parser = doctest.DocTestParser()
  test = parser.get_doctest(
      checkpoint_lib.CheckpointManager.__doc__, {"CheckpointManager":
      checkpoint_lib.CheckpointManager, "abstract_like": checkpoint_lib.abstract_like},
      "CheckpointManager", None, 0)
  runner = doctest.DocTestRunner()

  results = runner.run(test)

  assert results.attempted > 0
  assert results.failed == 0
