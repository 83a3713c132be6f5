"""Deep vanilla MLP that returns each hidden layer's pre-activation.

The plain stack of linear layers the Weak-SIGReg paper (Akbar, 2026,
arXiv 2603.05924) trains with pure SGD: no normalisation, residuals or
dropout, so nothing but the regulariser conditions the hidden layers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from sigreg_jax.models import initializers

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": jax.nn.relu,
    # Exact (erf) GELU, the default of torch.nn.GELU.
    "gelu": lambda inputs: jax.nn.gelu(inputs, approximate=False),
    "tanh": jnp.tanh,
    "silu": jax.nn.silu,
}


class MLP(nnx.Module):
  """Deep MLP: flatten, `len(hidden_widths)` Linear + activation layers, head.

  Every layer uses PyTorch's default `nn.Linear` initialisation,
  `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` for weights and biases, because the
  Weak-SIGReg paper's MLP runs were PyTorch code with that default.

  Args:
    in_features: number of input values per example, the product of the
      non-batch image dimensions (3072 for 32x32x3).
    hidden_widths: width of each hidden layer, one feature per entry.
    num_classes: number of output logits.
    activation: "relu", "gelu" (exact), "tanh" or "silu".
    dtype: compute dtype, for example `jnp.bfloat16`. Parameters stay float32,
      features come back in `dtype` and logits in float32.
    rngs: `nnx.Rngs` for the parameters.

  Example:
    >>> from flax import nnx
    >>> import jax.numpy as jnp
    >>> model = MLP(in_features=12, hidden_widths=(8, 8), num_classes=3,
    ...             rngs=nnx.Rngs(0))
    >>> logits, features = model(jnp.ones((5, 2, 2, 3)))
    >>> logits.shape, [f.shape for f in features]
    ((5, 3), [(5, 8), (5, 8)])

  References:
    Akbar, 2026, "Weak-SIGReg", arXiv 2603.05924.
  """

  def __init__(
      self,
      *,
      in_features: int,
      hidden_widths: Sequence[int] = (1024,) * 5,
      num_classes: int,
      activation: str = "relu",
      dtype: Any = jnp.float32,
      rngs: nnx.Rngs,
  ):
    if activation not in ACTIVATIONS:
      raise ValueError(
          f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}."
      )
    hidden_widths = tuple(int(width) for width in hidden_widths)
    if not hidden_widths or min(hidden_widths) < 1:
      raise ValueError(
          f"hidden_widths must be a non-empty sequence of positive widths, "
          f"got {hidden_widths}."
      )
    self.in_features = in_features
    self.activation = activation
    self.dtype = dtype

    layer_inputs = (in_features,) + hidden_widths[:-1]
    self.hidden_layers = nnx.List([
        _pytorch_linear(fan_in, width, dtype=dtype, rngs=rngs)
        for fan_in, width in zip(layer_inputs, hidden_widths)
    ])
    self.head = _pytorch_linear(
        hidden_widths[-1], num_classes, dtype=dtype, rngs=rngs
    )

  def __call__(self, images: jax.Array) -> tuple[jax.Array, list[jax.Array]]:
    """Classify `images [batch, ...]` after flattening all but the batch axis.

    Returns:
      `(logits, features)`: float32 logits `[batch, num_classes]` and one
      pre-activation `[batch, width]` per hidden layer, in the compute dtype.
    """
    batch = images.shape[0]
    num_values = math.prod(images.shape[1:])
    if num_values != self.in_features:
      raise ValueError(
          f"images of shape {tuple(images.shape)} flatten to {num_values} "
          f"values per example, but the MLP has in_features="
          f"{self.in_features}. Build it with in_features={num_values}."
      )
    activation = ACTIVATIONS[self.activation]

    hidden = images.reshape(batch, num_values).astype(self.dtype)
    features = []
    for layer in self.hidden_layers:
      pre_activation = layer(hidden)
      features.append(pre_activation)
      hidden = activation(pre_activation)

    logits = self.head(hidden).astype(jnp.float32)
    return logits, features


def _pytorch_linear(
    in_features: int, out_features: int, *, dtype: Any, rngs: nnx.Rngs
) -> nnx.Linear:
  kernel_init, bias_init = initializers.kernel_and_bias_init(
      "pytorch_default", in_features, argument="init"
  )
  return nnx.Linear(
      in_features, out_features, kernel_init=kernel_init, bias_init=bias_init,
      dtype=dtype, rngs=rngs,
  )
