"""Data sets in host memory, epoch batching, and on-device augmentation."""

from sigreg_jax.data.augment import augment_batch
from sigreg_jax.data.augment import cutmix
from sigreg_jax.data.augment import default_augment_config
from sigreg_jax.data.augment import mix_batch
from sigreg_jax.data.augment import mixup
from sigreg_jax.data.augment import normalize
from sigreg_jax.data.augment import prepare_eval_batch
from sigreg_jax.data.pipeline import batch_indices
from sigreg_jax.data.pipeline import epoch_permutation
from sigreg_jax.data.pipeline import steps_per_epoch
from sigreg_jax.data.sources import Dataset
from sigreg_jax.data.sources import load_dataset
