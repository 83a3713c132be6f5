"""Epoch shuffling and batch selection on the host, identical on every process.

Every process computes the same permutation from the run's seed and the epoch
number, so every process can compute the global batch of a step without
communication. Each process then keeps its own slice of that batch.
"""

from __future__ import annotations

import numpy as np


def epoch_permutation(seed: int, epoch: int, num_examples: int) -> np.ndarray:
  """Return the shuffled example order of one epoch.

  The order depends only on `(seed, epoch, num_examples)` through NumPy's
  PCG64 generator, so it is the same on every process and platform.

  Args:
    seed: the run's seed.
    epoch: the epoch number, from 0.
    num_examples: size of the training split.

  Returns:
    int64 [num_examples], a permutation of `arange(num_examples)`.

  Example:
    >>> epoch_permutation(0, 0, 5).shape
    (5,)
  """
  if num_examples < 1:
    raise ValueError(f"num_examples must be positive, got {num_examples}.")
  if seed < 0 or epoch < 0:
    raise ValueError(f"seed and epoch must be non-negative, got seed={seed}, epoch={epoch}.")
  rng = np.random.default_rng([seed, epoch])
  return rng.permutation(num_examples)


def steps_per_epoch(num_examples: int, global_batch_size: int) -> int:
  """Return the number of full batches in an epoch; the remainder is dropped.

  Raises:
    TypeError: if `num_examples` or `global_batch_size` is not an integer
      (Python or NumPy; bool and whole floats such as 128.0 are rejected).
    ValueError: if `global_batch_size` is not positive or exceeds
      `num_examples`.

  Example:
    >>> steps_per_epoch(50_000, 128)
    390
  """
  _check_integer("num_examples", num_examples)
  _check_integer("global_batch_size", global_batch_size)
  if global_batch_size < 1:
    raise ValueError(f"global_batch_size must be positive, got {global_batch_size}.")
  steps = num_examples // global_batch_size
  if steps == 0:
    raise ValueError(
        f"global_batch_size={global_batch_size} exceeds the {num_examples} training "
        f"examples, so an epoch has no full batch; lower the batch size."
    )
  return steps


def batch_indices(
    permutation: np.ndarray, step_in_epoch: int, global_batch_size: int
) -> np.ndarray:
  """Return the example indices of one global batch of an epoch.

  Args:
    permutation: the epoch's order from `epoch_permutation`.
    step_in_epoch: batch number within the epoch, in [0, steps_per_epoch).
    global_batch_size: examples per step over all processes.

  Returns:
    int64 [global_batch_size], a slice of `permutation`.

  Raises:
    TypeError: if `step_in_epoch` or `global_batch_size` is not an integer.
    ValueError: if `step_in_epoch` is outside [0, steps_per_epoch).

  Example:
    >>> batch_indices(np.arange(10), 1, 4)
    array([4, 5, 6, 7])
  """
  _check_integer("step_in_epoch", step_in_epoch)
  num_steps = steps_per_epoch(len(permutation), global_batch_size)
  if not 0 <= step_in_epoch < num_steps:
    raise ValueError(
        f"step_in_epoch={step_in_epoch} is outside [0, {num_steps}) for "
        f"{len(permutation)} examples and global_batch_size={global_batch_size}."
    )
  start = step_in_epoch * global_batch_size
  return permutation[start : start + global_batch_size]


def _check_integer(name: str, value) -> None:
  # bool is a subclass of int, and a float batch size would make the step
  # count a float and the batch slice invalid.
  if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
    if isinstance(value, float) and value.is_integer():
      fix = f"pass {int(value)} instead"
    else:
      fix = "pass a whole number as an int or NumPy integer"
    raise TypeError(
        f"{name} must be an integer, got {value!r} of type {type(value).__name__}; {fix}."
    )
