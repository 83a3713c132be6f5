"""Settings shared by every experiment config: data, regulariser, loop.

The trainer's defaults follow the CIFAR-100 protocol of Akbar, 2026,
"Weak-SIGReg: Covariance Regularization for Stable Deep Learning", arXiv
2603.05924. They are batch 128, 400 epochs, 64 sketches or slices, all
augmentations and the collapse-setting ViT's AdamW; tests pin them.
"""

import ml_collections

from sigreg_jax.training import config as training_config


def get_base_config() -> ml_collections.ConfigDict:
  """Return the trainer's default config plus the fields the entry points use.

  Each experiment config replaces the model block and overrides what differs.
  """
  config = training_config.default_config()

  # Names used for the default workdir and in the logs.
  config.experiment = ""
  config.variant = ""

  return config
