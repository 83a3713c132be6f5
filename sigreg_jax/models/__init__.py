"""Models that return `(logits, features)` for per-layer regularisation.

`features` lists the per-layer `[batch, channels]` tensors that Weak-SIGReg
(Akbar, 2026, arXiv 2603.05924) regularises. The models never compute the
regulariser themselves.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import ml_collections
from flax import nnx

from sigreg_jax.models.mlp import MLP
from sigreg_jax.models.vit import ViT
from sigreg_jax.models.vit import vit_collapse_kwargs
from sigreg_jax.models.vit import vit_tuned_kwargs

MODELS = {"vit": ViT, "mlp": MLP}


def create_model(
    config_model: ml_collections.ConfigDict | dict[str, Any],
    num_classes: int,
    image_shape: Sequence[int],
    rngs: nnx.Rngs,
) -> nnx.Module:
  """Build the model that `config_model.name` names.

  The fields of `config_model` other than `name` go to the constructor as
  keyword arguments. This function fills in the arguments that follow from
  the data: `num_classes` for both models, `image_size` and `in_channels`
  for "vit", `in_features` for "mlp". A config may repeat them only with the
  same values. A `dtype` field may be a string such as "bfloat16".

  Args:
    config_model: a ConfigDict (or dict) with `name` "vit" or "mlp" and the
      model's keyword arguments.
    num_classes: number of classes of the dataset.
    image_shape: `(height, width, channels)` of one input image.
    rngs: `nnx.Rngs` for the parameters (and the ViT's "dropout" stream).

  Returns:
    The `ViT` or `MLP`.

  Raises:
    ValueError: for an unknown name, an unknown field, an invalid `dtype`,
      or a field that contradicts `num_classes` or `image_shape`.

  Example:
    >>> import ml_collections
    >>> from flax import nnx
    >>> config = ml_collections.ConfigDict(
    ...     dict(name="mlp", hidden_widths=(16, 16), activation="relu"))
    >>> model = create_model(config, 10, (32, 32, 3), nnx.Rngs(0))
    >>> type(model).__name__
    'MLP'
  """
  if isinstance(config_model, ml_collections.ConfigDict):
    fields = config_model.to_dict()
  else:
    fields = dict(config_model)
  name = fields.pop("name", None)
  if name not in MODELS:
    raise ValueError(
        f"config.model.name must be one of {sorted(MODELS)}, got {name!r}."
    )
  if len(image_shape) != 3:
    raise ValueError(
        f"image_shape must be (height, width, channels), got {image_shape}."
    )
  height, width, channels = (int(size) for size in image_shape)

  derived: dict[str, Any] = {"num_classes": int(num_classes)}
  if name == "vit":
    derived["image_size"] = height if height == width else (height, width)
    derived["in_channels"] = channels
  else:
    derived["in_features"] = height * width * channels

  for field, value in derived.items():
    if field in fields and not _same_value(fields.pop(field), value):
      raise ValueError(
          f"config.model.{field} does not match the data, which gives "
          f"{field}={value!r}. Remove the field or correct it."
      )

  model_class = MODELS[name]
  accepted = set(inspect.signature(model_class.__init__).parameters)
  unknown = sorted(set(fields) - accepted)
  if unknown:
    valid = sorted(accepted - {"self", "rngs", *derived})
    raise ValueError(
        f"config.model has fields {unknown} that {model_class.__name__} does "
        f"not take. Valid fields are {valid}."
    )

  if isinstance(fields.get("dtype"), str):
    try:
      fields["dtype"] = jnp.dtype(fields["dtype"])
    except TypeError as error:
      raise ValueError(
          f"config.model.dtype={fields['dtype']!r} is not a dtype; use, for "
          "example, 'float32' or 'bfloat16'."
      ) from error
  if "hidden_widths" in fields:
    fields["hidden_widths"] = tuple(fields["hidden_widths"])
  return model_class(**derived, **fields, rngs=rngs)


def _same_value(configured: Any, derived: Any) -> bool:
  if isinstance(configured, (list, tuple)) or isinstance(derived, (list, tuple)):
    configured_pair = _as_pair(configured)
    derived_pair = _as_pair(derived)
    return configured_pair == derived_pair
  return configured == derived


def _as_pair(value: Any) -> tuple[int, ...]:
  if isinstance(value, (list, tuple)):
    return tuple(int(item) for item in value)
  return (int(value), int(value))


__all__ = [
    "MLP",
    "MODELS",
    "ViT",
    "create_model",
    "vit_collapse_kwargs",
    "vit_tuned_kwargs",
]
