"""The run config that ``train_and_evaluate`` reads, with its defaults.

Tests and notebooks start from ``default_config()`` and override fields; the
experiment configs under ``experiments/configs`` build the same fields. The
defaults are the ViT collapse setting of Weak-SIGReg (Akbar, 2026,
arXiv 2603.05924): CIFAR-100, AdamW lr 1e-3, weight decay 5e-4, cosine to 0,
batch 128, 400 epochs, all augmentations.
"""

from __future__ import annotations

import ml_collections

from sigreg_jax.data import augment

def default_config() -> ml_collections.ConfigDict:
  """Returns a config with every field the trainer reads, at its default."""
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.dataset = "cifar100"
  config.data_source = "tfds"
  config.data_dir = ml_collections.FieldReference(None, field_type=str)
  config.validation_fraction = 0.0
  config.max_train_examples = ml_collections.FieldReference(None, field_type=int)
  config.max_test_examples = ml_collections.FieldReference(None, field_type=int)

  config.model = ml_collections.ConfigDict(dict(
      name="vit",
      patch_size=4,
      width=256,
      depth=6,
      num_heads=8,
      mlp_dim=512,
  ))

  config.regularizer = "none"
  config.alpha = ml_collections.FieldReference(None, field_type=float)
  # Epochs over which alpha rises linearly from 0 (the paper's ImageNet runs
  # use 5); 0 keeps it constant, as on CIFAR.
  config.alpha_warmup_epochs = 0.0
  config.weak = ml_collections.ConfigDict(dict(num_sketches=64, sketch="gaussian"))
  config.strong = ml_collections.ConfigDict(dict(num_slices=64, t_max=5.0, num_knots=9))

  config.optimizer = ml_collections.ConfigDict(dict(
      name="adamw",
      learning_rate=1e-3,
      b1=0.9,
      b2=0.999,
      eps=1e-8,
      momentum=ml_collections.FieldReference(None, field_type=float),
      nesterov=False,
      weight_decay=5e-4,
      weight_decay_mask="all",
      muon_learning_rate=1e-2,
      adam_b1=0.9,
      adam_b2=0.95,
      schedule="cosine",
      warmup_epochs=0.0,
      final_learning_rate=0.0,
      grad_clip_norm=ml_collections.FieldReference(None, field_type=float),
  ))

  # Crop, flip, RandAugment (2 ops, magnitude 9) and MixUp/CutMix, all on.
  config.augment = augment.default_augment_config()

  config.batch_size = 128
  config.eval_batch_size = ml_collections.FieldReference(None, field_type=int)
  config.num_epochs = 400
  config.max_steps = ml_collections.FieldReference(None, field_type=int)

  config.log_every_steps = 50
  config.eval_every_epochs = 1
  config.checkpoint_every_steps = 1000
  config.keep_checkpoints = 3
  config.progress_bar = True
  return config
