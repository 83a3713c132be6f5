"""Batched image augmentation on the accelerator, in the order of torchvision pipelines.

Per example: random crop with zero padding, horizontal flip and RandAugment on
[0, 255] values, then scaling to [0, 1] and normalisation. Per batch: MixUp
(Zhang et al., 2018, arXiv 1710.09412) or CutMix (Yun et al., 2019, arXiv
1905.04899), each paired with the batch rolled by one, as torchvision's
`transforms.v2.MixUp` and `CutMix` do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dm_pix as pix
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from sigreg_jax.data import randaugment as randaugment_lib

_DEFAULTS = dict(
    crop_padding=4,
    flip=True,
    randaugment=True,
    randaugment_num_ops=2,
    randaugment_magnitude=9,
    mix=True,
    mixup_alpha=0.8,
    cutmix_alpha=1.0,
    mix_probability=0.5,
)


def default_augment_config() -> ml_collections.ConfigDict:
  """Return the augmentation settings of the ViT experiments: every augmentation on."""
  return ml_collections.ConfigDict(dict(_DEFAULTS))


def augment_batch(
    key: jax.Array,
    images: jax.Array,
    labels: jax.Array,
    *,
    num_classes: int,
    config: ml_collections.ConfigDict | Mapping[str, Any] | None,
    mean: Sequence[float],
    std: Sequence[float],
) -> tuple[jax.Array, jax.Array]:
  """Augment a training batch and turn its labels into soft labels.

  Each example gets its own key, split from `key`, for crop, flip and
  RandAugment, and the whole batch shares one draw of MixUp or CutMix. The
  output is `(x / 255 - mean) / std` of the augmented images.

  Args:
    key: PRNG key of this step.
    images: uint8 [B, H, W, C] with C equal to len(mean).
    labels: int32 [B] class indices in [0, num_classes). Concrete labels
      (NumPy or JAX arrays outside `jax.jit`) are checked. Under `jax.jit`
      they are tracers and are not checked, so an out-of-range label becomes
      an all-zero soft label row, as in `jax.nn.one_hot`. The trainer relies
      on `Dataset`, which checks the labels of every split when it is built.
    num_classes: number of classes of the soft labels.
    config: fields `crop_padding` (pixels, 0 disables), `flip`, `randaugment`,
      `randaugment_num_ops`, `randaugment_magnitude` (bin in [0, 30]), `mix`,
      `mixup_alpha`, `cutmix_alpha`, `mix_probability` (probability of MixUp
      rather than CutMix). Read at trace time; missing fields take the
      defaults of `default_augment_config`, and None means all defaults.
    mean: per-channel mean in [0, 1] units.
    std: per-channel standard deviation in [0, 1] units.

  Returns:
    float32 [B, H, W, C] normalised images and float32 [B, num_classes] soft
    labels whose rows sum to 1.

  Raises:
    ValueError: on an invalid config, images that are not uint8 [B, H, W, C],
      a mean or std without one value per channel, or a concrete label outside
      [0, num_classes).

  Example:
    >>> images = jnp.zeros((4, 32, 32, 3), jnp.uint8)
    >>> labels = jnp.arange(4)
    >>> out, soft = augment_batch(jax.random.key(0), images, labels, num_classes=10,
    ...     config=None, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    >>> out.shape, soft.shape
    ((4, 32, 32, 3), (4, 10))
  """
  settings = _read_config(config)
  _check_batch(images, labels, mean, std)
  _check_label_range(labels, num_classes)

  example_key, mix_key = jax.random.split(key)
  example_keys = jax.random.split(example_key, images.shape[0])

  def augment_example(example_key, image):
    crop_key, flip_key, randaugment_key = jax.random.split(example_key, 3)
    if settings["crop_padding"] > 0:
      image = random_crop(crop_key, image, padding=settings["crop_padding"])
    if settings["flip"]:
      image = pix.random_flip_left_right(flip_key, image)
    if settings["randaugment"]:
      image = randaugment_lib.randaugment(
          randaugment_key,
          image,
          num_ops=settings["randaugment_num_ops"],
          magnitude=settings["randaugment_magnitude"],
      )
    return image

  images = jax.vmap(augment_example)(example_keys, images.astype(jnp.float32))
  images = normalize(images, mean, std)
  soft_labels = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)

  if settings["mix"]:
    images, soft_labels = mix_batch(
        mix_key,
        images,
        soft_labels,
        mixup_alpha=settings["mixup_alpha"],
        cutmix_alpha=settings["cutmix_alpha"],
        mix_probability=settings["mix_probability"],
    )
  return images, soft_labels


def prepare_eval_batch(
    images: jax.Array,
    labels: jax.Array,
    *,
    num_classes: int,
    mean: Sequence[float],
    std: Sequence[float],
) -> tuple[jax.Array, jax.Array]:
  """Normalise an evaluation batch without augmentation.

  Args:
    images: uint8 [B, H, W, C].
    labels: int32 [B] class indices in [0, num_classes), checked as in
      `augment_batch`: concrete labels raise, labels traced under `jax.jit`
      are not checked and an out-of-range one gives an all-zero row.
    num_classes: number of classes.
    mean: per-channel mean in [0, 1] units.
    std: per-channel standard deviation in [0, 1] units.

  Returns:
    float32 [B, H, W, C] equal to `(images / 255 - mean) / std`, and float32
    one-hot labels [B, num_classes].

  Example:
    >>> images = jnp.full((2, 28, 28, 1), 255, jnp.uint8)
    >>> out, one_hot = prepare_eval_batch(images, jnp.array([0, 3]), num_classes=10,
    ...     mean=(0.5,), std=(0.5,))
    >>> float(out[0, 0, 0, 0]), one_hot.shape
    (1.0, (2, 10))
  """
  _check_batch(images, labels, mean, std)
  _check_label_range(labels, num_classes)
  images = normalize(images.astype(jnp.float32), mean, std)
  return images, jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)


def normalize(images: jax.Array, mean: Sequence[float], std: Sequence[float]) -> jax.Array:
  """Return `(images / 255 - mean) / std` for images with values in [0, 255]."""
  mean = jnp.asarray(mean, jnp.float32)
  std = jnp.asarray(std, jnp.float32)
  return (images / 255.0 - mean) / std


def random_crop(key: jax.Array, image: jax.Array, *, padding: int) -> jax.Array:
  """Pad one [H, W, C] image with `padding` zeros on each side and crop it back to [H, W].

  Matches torchvision's `RandomCrop(size, padding=padding)`: every offset in
  [0, 2 * padding] along each axis is equally likely.
  """
  padded = jnp.pad(image, ((padding, padding), (padding, padding), (0, 0)))
  return pix.random_crop(key, padded, image.shape)


def flip_left_right(image: jax.Array) -> jax.Array:
  """Mirror one [H, W, C] image or a [B, H, W, C] batch along its width."""
  return jnp.flip(image, axis=-2)


def mixup(
    key: jax.Array, images: jax.Array, soft_labels: jax.Array, *, alpha: float
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Blend each example with the next one in the batch.

  With lambda ~ Beta(alpha, alpha) and x' the batch rolled by one:
  images = lambda * x + (1 - lambda) * x', and the same for the labels.

  Args:
    key: PRNG key of the batch.
    images: float [B, H, W, C].
    soft_labels: float [B, K].
    alpha: Beta parameter, positive.

  Returns:
    The mixed images, the mixed labels and lambda, a float32 scalar.
  """
  _check_alpha("mixup_alpha", alpha)
  return _mixup_with_lambda(images, soft_labels, jax.random.beta(key, alpha, alpha))


def _mixup_with_lambda(images, soft_labels, lam):
  images = lam * images + (1.0 - lam) * jnp.roll(images, 1, axis=0)
  soft_labels = lam * soft_labels + (1.0 - lam) * jnp.roll(soft_labels, 1, axis=0)
  return images, soft_labels, lam


def cutmix(
    key: jax.Array, images: jax.Array, soft_labels: jax.Array, *, alpha: float
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Paste one box of the batch rolled by one into every example.

  lambda ~ Beta(alpha, alpha) sets the box's side to sqrt(1 - lambda) times
  the image's, centred at a uniform pixel and clipped to the image. The labels
  are mixed with the corrected lambda, the fraction of each image left
  outside the box.

  Args:
    key: PRNG key of the batch.
    images: float [B, H, W, C].
    soft_labels: float [B, K].
    alpha: Beta parameter, positive.

  Returns:
    The mixed images, the mixed labels and the corrected lambda, a float32
    scalar.
  """
  _check_alpha("cutmix_alpha", alpha)
  lam_key, box_key = jax.random.split(key)
  return _cutmix_with_lambda(box_key, images, soft_labels, jax.random.beta(lam_key, alpha, alpha))


def _cutmix_with_lambda(key, images, soft_labels, lam):
  height, width = images.shape[1:3]
  row_key, column_key = jax.random.split(key)
  centre_row = jax.random.randint(row_key, (), 0, height)
  centre_column = jax.random.randint(column_key, (), 0, width)

  # Half sides truncated to whole pixels, as torchvision does.
  half_side = 0.5 * jnp.sqrt(1.0 - lam)
  half_height = jnp.floor(half_side * height).astype(jnp.int32)
  half_width = jnp.floor(half_side * width).astype(jnp.int32)
  top = jnp.maximum(centre_row - half_height, 0)
  bottom = jnp.minimum(centre_row + half_height, height)
  left = jnp.maximum(centre_column - half_width, 0)
  right = jnp.minimum(centre_column + half_width, width)

  rows = jnp.arange(height)[:, None]
  columns = jnp.arange(width)[None, :]
  inside = (rows >= top) & (rows < bottom) & (columns >= left) & (columns < right)
  images = jnp.where(inside[None, :, :, None], jnp.roll(images, 1, axis=0), images)

  box_area = (bottom - top) * (right - left)
  corrected_lam = 1.0 - box_area.astype(jnp.float32) / (height * width)
  soft_labels = corrected_lam * soft_labels + (1.0 - corrected_lam) * jnp.roll(
      soft_labels, 1, axis=0
  )
  return images, soft_labels, corrected_lam


def mix_batch(
    key: jax.Array,
    images: jax.Array,
    soft_labels: jax.Array,
    *,
    mixup_alpha: float = 0.8,
    cutmix_alpha: float = 1.0,
    mix_probability: float = 0.5,
) -> tuple[jax.Array, jax.Array]:
  """Apply MixUp with probability `mix_probability`, otherwise CutMix, to the batch."""
  _check_alpha("mixup_alpha", mixup_alpha)
  _check_alpha("cutmix_alpha", cutmix_alpha)
  choice_key, lam_key, box_key = jax.random.split(key, 3)
  use_mixup = jax.random.bernoulli(choice_key, mix_probability)

  alphas = jnp.array([mixup_alpha, cutmix_alpha], jnp.float32)
  mixup_lam, cutmix_lam = jax.random.beta(lam_key, alphas, alphas)

  images, soft_labels, _ = jax.lax.cond(
      use_mixup,
      lambda: _mixup_with_lambda(images, soft_labels, mixup_lam),
      lambda: _cutmix_with_lambda(box_key, images, soft_labels, cutmix_lam),
  )
  return images, soft_labels


def _read_config(config) -> dict[str, Any]:
  if config is None:
    return dict(_DEFAULTS)
  if isinstance(config, ml_collections.ConfigDict):
    config = config.to_dict()
  unknown = set(config) - set(_DEFAULTS)
  if unknown:
    raise ValueError(
        f"Unknown augmentation settings {sorted(unknown)}; expected fields among "
        f"{sorted(_DEFAULTS)}."
    )
  settings = {**_DEFAULTS, **config}
  if settings["crop_padding"] < 0:
    raise ValueError(f"crop_padding must be non-negative, got {settings['crop_padding']}.")
  if not 0.0 <= settings["mix_probability"] <= 1.0:
    raise ValueError(f"mix_probability must be in [0, 1], got {settings['mix_probability']}.")
  return settings


def _check_batch(images, labels, mean, std) -> None:
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise ValueError(f"images must have shape [B, H, W, 1 or 3], got {images.shape}.")
  if images.dtype != jnp.uint8:
    # Float images already scaled to [0, 1] or normalised would be divided by
    # 255 again without any error.
    raise ValueError(
        f"images must be uint8 in [0, 255], got dtype {images.dtype}; pass the raw "
        "images, because this function scales and normalises them itself."
    )
  if labels.shape != images.shape[:1]:
    raise ValueError(
        f"labels must have shape [B] = {images.shape[:1]}, got {labels.shape}."
    )
  if len(mean) != images.shape[-1] or len(std) != images.shape[-1]:
    raise ValueError(
        f"mean and std need one value per channel ({images.shape[-1]}), got "
        f"mean={tuple(mean)}, std={tuple(std)}."
    )


def _check_label_range(labels, num_classes: int) -> None:
  """Raise if a concrete label is outside [0, num_classes), where one_hot gives a zero row."""
  # Traced labels have no values yet, and labels sharded over several
  # processes cannot be read from one process; neither is checked.
  if isinstance(labels, jax.core.Tracer):
    return
  if isinstance(labels, jax.Array) and not labels.is_fully_addressable:
    return
  labels = np.asarray(labels)
  invalid = np.flatnonzero((labels < 0) | (labels >= num_classes))
  if invalid.size:
    index = invalid[0]
    raise ValueError(
        f"labels[{index}] = {labels[index]} is outside [0, {num_classes}), the class "
        f"indices for num_classes={num_classes} ({invalid.size} of {labels.size} labels "
        f"are out of range). jax.nn.one_hot would turn it into an all-zero soft label; "
        f"pass class indices from 0 to num_classes - 1, or raise num_classes."
    )


def _check_alpha(name: str, alpha: float) -> None:
  if not alpha > 0:
    raise ValueError(f"{name} must be positive, got {alpha}; set mix=False to turn mixing off.")
