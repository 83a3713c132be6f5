"""A tiny in-memory data set and run configs for fast training tests."""

from __future__ import annotations

import numpy as np

from sigreg_jax.data.sources import Dataset
from sigreg_jax.training import config as config_lib


def tiny_dataset(*, num_train=64, num_test=24, num_classes=4, image_size=8, seed=0) -> Dataset:
  """Returns random uint8 images whose labels depend on the mean colour, so they are learnable."""
  rng = np.random.default_rng(seed)

  def split(num_examples):
    labels = (np.arange(num_examples) % num_classes).astype(np.int32)
    images = rng.integers(0, 96, (num_examples, image_size, image_size, 3))
    images += (labels * (160 // num_classes))[:, None, None, None]
    return images.astype(np.uint8), labels

  train_images, train_labels = split(num_train)
  test_images, test_labels = split(num_test)
  return Dataset(
      train_images=train_images,
      train_labels=train_labels,
      test_images=test_images,
      test_labels=test_labels,
      num_classes=num_classes,
      class_names=tuple(f"class_{index}" for index in range(num_classes)),
      mean=(0.5, 0.5, 0.5),
      std=(0.25, 0.25, 0.25),
      name="tiny",
  )


def tiny_config(*, regularizer="weak", optimizer="adamw", model="mlp"):
  """Returns a run config for a 2-hidden-layer MLP (or 2-block ViT) on ``tiny_dataset``."""
  config = config_lib.default_config()
  config.dataset = "tiny"
  if model == "mlp":
    config.model = dict(name="mlp", hidden_widths=(32, 32))
  else:
    config.model = dict(
        name="vit", patch_size=4, width=16, depth=2, num_heads=2, mlp_dim=32,
        stochastic_depth_rate=0.1)
  config.regularizer = regularizer
  config.weak.num_sketches = 8
  config.strong.num_slices = 8

  config.optimizer.name = optimizer
  config.optimizer.learning_rate = {"adamw": 1e-2, "sgd": 0.1, "muon": 1e-2}[optimizer]
  config.optimizer.muon_learning_rate = 2e-2
  config.optimizer.schedule = "constant"

  config.augment.randaugment = False
  config.augment.mix = False

  config.batch_size = 16
  config.num_epochs = 2
  config.log_every_steps = 2
  config.checkpoint_every_steps = 2
  config.keep_checkpoints = 2
  config.progress_bar = False
  return config
