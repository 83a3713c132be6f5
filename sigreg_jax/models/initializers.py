"""Weight initialisers shared by the models, including PyTorch's defaults.

The Weak-SIGReg paper's runs (Akbar, 2026, arXiv 2603.05924) were PyTorch, so
some layers here reproduce `torch.nn.Linear` and `torch.nn.Conv2d` defaults.
"""

from __future__ import annotations

import math
from typing import Literal

import jax
import jax.numpy as jnp
from flax import nnx

WeightInit = Literal["truncated_normal", "pytorch_default", "xavier_uniform"]

# Standard deviation of a unit normal truncated to [-2, 2].
_TRUNCATED_NORMAL_STD = 0.87962566103423978


def truncated_normal(std: float = 0.02) -> nnx.Initializer:
  """Return a normal initialiser truncated at two standard deviations.

  The untruncated scale is divided by 0.8796, the std of a unit normal cut to
  [-2, 2], so the samples have standard deviation `std`.

  NOTE: PyTorch's `trunc_normal_(w, std=0.02)` cuts at the absolute values
  +-2, which for std 0.02 leaves the normal untouched. The two differ only
  in the 4.6% of draws beyond two standard deviations.

  Args:
    std: standard deviation of the initialised values.
  """
  return jax.nn.initializers.truncated_normal(
      stddev=std / _TRUNCATED_NORMAL_STD, lower=-2.0, upper=2.0
  )


def pytorch_default_kernel() -> nnx.Initializer:
  """Return PyTorch's default `Linear`/`Conv2d` weight initialiser.

  PyTorch draws `kaiming_uniform_(w, a=sqrt(5))`, which is
  `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`: variance scaling with scale 1/3.
  For a Flax conv kernel `[height, width, in, out]` the fan-in counts the
  receptive field, as PyTorch's does.
  """
  return jax.nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def pytorch_default_bias(fan_in: int) -> nnx.Initializer:
  """Return PyTorch's default bias initialiser, `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`.

  Args:
    fan_in: inputs per output unit of the layer the bias belongs to
      (`in_features`, or `in_channels * kernel_height * kernel_width`).
  """
  bound = 1.0 / math.sqrt(fan_in)

  def init(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
    return jax.random.uniform(key, shape, dtype, minval=-bound, maxval=bound)

  return init


def kernel_and_bias_init(
    scheme: str, fan_in: int, *, argument: str
) -> tuple[nnx.Initializer, nnx.Initializer]:
  """Return the `(kernel_init, bias_init)` pair of a named scheme.

  Schemes:
    "truncated_normal": weights truncated normal with std 0.02, zero biases.
    "pytorch_default": PyTorch's `Linear`/`Conv2d` defaults for weights and
      biases, both `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`.
    "xavier_uniform": Glorot-uniform weights with PyTorch's default bias, as
      after `torch.nn.init.xavier_uniform_(layer.weight)`.

  Args:
    scheme: one of the names above.
    fan_in: inputs per output unit of the layer.
    argument: the caller's argument name, used in the error message.

  Raises:
    ValueError: if `scheme` is not one of the names above.
  """
  if scheme == "truncated_normal":
    return truncated_normal(0.02), jax.nn.initializers.zeros
  if scheme == "pytorch_default":
    return pytorch_default_kernel(), pytorch_default_bias(fan_in)
  if scheme == "xavier_uniform":
    return jax.nn.initializers.xavier_uniform(), pytorch_default_bias(fan_in)
  raise ValueError(
      f"{argument} must be 'truncated_normal', 'pytorch_default' or "
      f"'xavier_uniform', got {scheme!r}."
  )
