r"""Deep vanilla MLP on CIFAR-100 trained with plain SGD.

Settings and accuracies from Akbar, 2026, "Weak-SIGReg: Covariance
Regularization for Stable Deep Learning", arXiv 2603.05924: flattened 3072
inputs, five hidden layers of width 1024 with ReLU, a linear head, no
normalisation, residuals or dropout. SGD lr 0.1 at a constant rate, no
momentum, no weight decay, gradient clipping at norm 1.0. The regulariser
acts on the five hidden pre-activations. Best test accuracy over 400 epochs,
baseline / strong / weak:

  crop + flip only (default)            26.77 / 35.99 / 42.17
      python -m experiments.mlp_sgd --config.regularizer=none|strong|weak
  crop + flip + MixUp/CutMix ("mix")    38.08 / 38.70 / 38.40
      python -m experiments.mlp_sgd \
          --config=experiments/configs/mlp_sgd.py:mix \
          --config.regularizer=none|strong|weak
"""

import ml_collections

from experiments.configs import common

VARIANTS = ("nomix", "mix")


def get_config(variant: str | None = None) -> ml_collections.ConfigDict:
  """Return the MLP config; `None` or "" selects "nomix".

  Args:
    variant: "nomix" (crop and flip only) or "mix" (adds MixUp/CutMix), the
      part after ":" in `--config=experiments/configs/mlp_sgd.py:<variant>`.

  Raises:
    ValueError: if `variant` is not in `VARIANTS`.
  """
  variant = variant or "nomix"
  if variant not in VARIANTS:
    raise ValueError(
        f"Unknown MLP config variant {variant!r}; expected one of "
        f"{list(VARIANTS)}, as in --config=experiments/configs/mlp_sgd.py:mix.")

  config = common.get_base_config()
  config.experiment = "mlp_sgd"
  config.variant = variant

  config.model = ml_collections.ConfigDict(
      dict(name="mlp", hidden_widths=(1024,) * 5, activation="relu"))

  config.optimizer.update(
      name="sgd",
      learning_rate=0.1,
      nesterov=False,
      weight_decay=0.0,
      schedule="constant",
      grad_clip_norm=1.0,
  )

  config.augment.update(randaugment=False, mix=variant == "mix")
  return config
