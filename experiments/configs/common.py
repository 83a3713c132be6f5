"""Settings shared by every experiment config: data, regulariser, loop.

The values follow the CIFAR-100 protocol of Akbar, 2026, "Weak-SIGReg:
Covariance Regularization for Stable Deep Learning", arXiv 2603.05924.
"""

import ml_collections
from ml_collections import config_dict


def get_base_config() -> ml_collections.ConfigDict:
  """Return the fields that `train_and_evaluate` reads, at their shared defaults.

  The model, optimiser and augmentation blocks hold the collapse-setting ViT's
  values here; each experiment config overrides what differs.
  """
  config = ml_collections.ConfigDict()

  # Names used for the default workdir and in the plot legends.
  config.experiment = ""
  config.variant = ""

  config.seed = 0

  # Data: CIFAR-100 from tensorflow-datasets unless a local source is given.
  config.dataset = "cifar100"
  config.data_source = "tfds"
  config.data_dir = config_dict.placeholder(str)
  config.validation_fraction = 0.0
  config.max_train_examples = config_dict.placeholder(int)
  config.max_test_examples = config_dict.placeholder(int)

  config.model = ml_collections.ConfigDict()

  # Loss = (1 - alpha) * cross_entropy + alpha * mean over layers of the
  # regulariser. alpha=None picks 0.1 for weak, 0.01 for strong, 0 for none.
  config.regularizer = "none"
  config.alpha = config_dict.placeholder(float)
  config.weak = ml_collections.ConfigDict(
      dict(num_sketches=64, sketch="gaussian"))
  # 64 slices on the Weak-SIGReg paper's grid, linspace(-5, 5, 17) with the
  # plain trapezoid rule, written as the equivalent half-line grid.
  config.strong = ml_collections.ConfigDict(
      dict(num_slices=64, t_max=5.0, num_knots=9))

  config.optimizer = ml_collections.ConfigDict(
      dict(
          name="adamw",
          learning_rate=1e-3,
          b1=0.9,
          b2=0.999,
          eps=1e-8,
          momentum=config_dict.placeholder(float),
          nesterov=False,
          weight_decay=5e-4,
          weight_decay_mask="all",
          muon_learning_rate=1e-2,
          adam_b1=0.9,
          adam_b2=0.95,
          schedule="cosine",
          warmup_epochs=0.0,
          final_learning_rate=0.0,
          grad_clip_norm=config_dict.placeholder(float),
      ))

  config.augment = ml_collections.ConfigDict(
      dict(
          crop_padding=4,
          flip=True,
          randaugment=True,
          randaugment_num_ops=2,
          randaugment_magnitude=9,
          mix=True,
          mixup_alpha=0.8,
          cutmix_alpha=1.0,
          mix_probability=0.5,
      ))

  config.batch_size = 128
  config.num_epochs = 400
  # Stop after this many steps; the learning-rate schedule still spans
  # num_epochs, so set num_epochs too when the schedule should end early.
  config.max_steps = config_dict.placeholder(int)

  config.log_every_steps = 50
  config.eval_every_epochs = 1
  config.checkpoint_every_steps = 1000
  config.keep_checkpoints = 3
  config.progress_bar = True

  return config
