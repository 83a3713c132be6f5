"""Tests of epoch shuffling and batch selection."""

import subprocess
import sys

import numpy as np
import pytest

from sigreg_jax.data import pipeline


def test_epoch_permutation_is_permutation():
  permutation = pipeline.epoch_permutation(0, 3, 1000)

  np.testing.assert_array_equal(np.sort(permutation), np.arange(1000))


def test_epoch_permutation_depends_on_seed_and_epoch():
  base = pipeline.epoch_permutation(0, 0, 100)

  np.testing.assert_array_equal(base, pipeline.epoch_permutation(0, 0, 100))
  assert not np.array_equal(base, pipeline.epoch_permutation(0, 1, 100))
  assert not np.array_equal(base, pipeline.epoch_permutation(1, 0, 100))


def test_epoch_permutation_same_in_fresh_process():
  # Another process (as on another host) computes the same order from the seed alone.
  code = (
      "from sigreg_jax.data import pipeline;"
      "print(pipeline.epoch_permutation(42, 7, 20).tolist())"
  )
  output = subprocess.run(
      [sys.executable, "-c", code], check=True, capture_output=True, text=True
  ).stdout

  assert output.strip() == str(pipeline.epoch_permutation(42, 7, 20).tolist())


def test_steps_per_epoch_drops_remainder():
  assert pipeline.steps_per_epoch(50_000, 128) == 390
  assert pipeline.steps_per_epoch(256, 128) == 2


def test_batches_cover_epoch_without_repeats():
  permutation = pipeline.epoch_permutation(0, 0, 1003)
  num_steps = pipeline.steps_per_epoch(1003, 100)

  batches = [pipeline.batch_indices(permutation, step, 100) for step in range(num_steps)]

  assert all(batch.shape == (100,) for batch in batches)
  seen = np.concatenate(batches)
  assert len(np.unique(seen)) == 1000
  np.testing.assert_array_equal(seen, permutation[:1000])


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: pipeline.steps_per_epoch(10, 0), "global_batch_size must be positive"),
        (lambda: pipeline.steps_per_epoch(10, 16), "exceeds the 10 training examples"),
        (lambda: pipeline.batch_indices(np.arange(10), 2, 5), "step_in_epoch=2"),
        (lambda: pipeline.batch_indices(np.arange(10), -1, 5), "step_in_epoch=-1"),
        (lambda: pipeline.epoch_permutation(0, 0, 0), "num_examples must be positive"),
        (lambda: pipeline.epoch_permutation(-1, 0, 5), "non-negative"),
    ],
)
def test_invalid_arguments_raise(call, message):
  with pytest.raises(ValueError, match=message):
    call()


@pytest.mark.parametrize("batch_size", [128.0, 12.5, True, "16"])
def test_non_integer_batch_size_raises(batch_size):
  with pytest.raises(TypeError, match=f"global_batch_size must be an integer, got {batch_size!r}"):
    pipeline.steps_per_epoch(1000, batch_size)
  with pytest.raises(TypeError, match=f"global_batch_size must be an integer, got {batch_size!r}"):
    pipeline.batch_indices(np.arange(1000), 0, batch_size)


def test_whole_float_batch_size_suggests_int():
  with pytest.raises(TypeError, match="pass 128 instead"):
    pipeline.steps_per_epoch(1000, 128.0)


def test_non_integer_step_in_epoch_raises():
  with pytest.raises(TypeError, match="step_in_epoch must be an integer, got 1.0"):
    pipeline.batch_indices(np.arange(10), 1.0, 5)


def test_numpy_integers_accepted():
  assert pipeline.steps_per_epoch(np.int64(1000), np.int32(128)) == 7
  np.testing.assert_array_equal(
      pipeline.batch_indices(np.arange(10), np.int64(1), np.int32(4)), [4, 5, 6, 7])
