"""Invariants of the batched augmentation and of the RandAugment ops."""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from sigreg_jax.data import augment
from sigreg_jax.data import randaugment

MEAN = (0.5, 0.4, 0.3)
STD = (0.2, 0.25, 0.3)
ALL_OFF = dict(crop_padding=0, flip=False, randaugment=False, mix=False)


def _images(seed=0, shape=(8, 32, 32, 3), low=0):
  rng = np.random.default_rng(seed)
  return rng.integers(low, 256, shape, dtype=np.uint8)


_apply_op = jax.jit(randaugment.apply_op, static_argnames="magnitude")
_random_crop = jax.jit(augment.random_crop, static_argnames="padding")
_mix_batch = jax.jit(augment.mix_batch)


def _op(name):
  return jnp.int32(randaugment.OPS.index(name))


def test_flip_twice_is_identity():
  images = jnp.asarray(_images(), jnp.float32)

  flipped = augment.flip_left_right(images)

  np.testing.assert_array_equal(augment.flip_left_right(flipped), images)
  np.testing.assert_array_equal(flipped[:, :, 0], images[:, :, -1])


def test_crop_is_shift_with_zero_fill():
  padding = 4
  image = jnp.asarray(_images(shape=(32, 32, 3), low=1), jnp.float32)
  padded = np.pad(np.asarray(image), ((padding, padding), (padding, padding), (0, 0)))
  offsets_seen = set()

  for seed in range(40):
    cropped = np.asarray(_random_crop(jax.random.key(seed), image, padding=padding))

    assert cropped.shape == image.shape
    matches = [
        (row, column)
        for row in range(2 * padding + 1)
        for column in range(2 * padding + 1)
        if np.array_equal(cropped, padded[row : row + 32, column : column + 32])
    ]
    assert len(matches) == 1
    offsets_seen.add(matches[0])

  # 40 draws over 81 equally likely offsets: both ends of the range should appear.
  rows = {row for row, _ in offsets_seen}
  assert len(offsets_seen) > 20
  assert min(rows) <= 1
  assert max(rows) >= 2 * padding - 1


def test_mixup_labels_sum_to_one():
  images = jnp.asarray(_images(), jnp.float32)
  labels = jax.nn.one_hot(jnp.arange(8) % 5, 5)

  mixed, soft_labels, lam = augment.mixup(jax.random.key(1), images, labels, alpha=0.8)

  np.testing.assert_allclose(soft_labels.sum(axis=1), 1.0, rtol=1e-6)
  np.testing.assert_allclose(
      mixed, lam * images + (1 - lam) * jnp.roll(images, 1, axis=0), rtol=1e-5, atol=1e-3
  )
  assert 0.0 <= float(lam) <= 1.0


@pytest.mark.parametrize("seed", range(6))
def test_cutmix_lambda_equals_kept_area(seed):
  # Example b is filled with the value b + 1, so a pixel shows which example it came from.
  batch, height, width = 4, 32, 32
  images = jnp.broadcast_to(
      jnp.arange(1, batch + 1, dtype=jnp.float32)[:, None, None, None], (batch, height, width, 3)
  )
  labels = jax.nn.one_hot(jnp.arange(batch), batch)

  mixed, soft_labels, lam = augment.cutmix(jax.random.key(seed), images, labels, alpha=1.0)

  own_fraction = np.mean(np.asarray(mixed) == np.asarray(images), axis=(1, 2, 3))
  partner_fraction = np.mean(
      np.asarray(mixed) == np.asarray(jnp.roll(images, 1, axis=0)), axis=(1, 2, 3)
  )
  np.testing.assert_allclose(own_fraction, float(lam), atol=1e-6)
  np.testing.assert_allclose(own_fraction + partner_fraction, 1.0, atol=1e-6)
  np.testing.assert_allclose(soft_labels.sum(axis=1), 1.0, rtol=1e-6)
  np.testing.assert_allclose(np.diag(np.asarray(soft_labels)), float(lam), atol=1e-6)


def test_cutmix_box_is_rectangle():
  images = jnp.zeros((2, 32, 32, 1)).at[1].set(1.0)
  labels = jax.nn.one_hot(jnp.arange(2), 2)

  mixed, _, _ = augment.cutmix(jax.random.key(3), images, labels, alpha=1.0)

  box = np.asarray(mixed[0, :, :, 0]) == 1.0
  rows, columns = np.nonzero(box)
  if rows.size:
    assert box[rows.min() : rows.max() + 1, columns.min() : columns.max() + 1].all()


def test_mix_batch_picks_both_methods():
  # CutMix copies every pixel from the image or its partner; MixUp blends them.
  images = jnp.asarray(_images(shape=(4, 8, 8, 3)), jnp.float32)
  partners = jnp.roll(images, 1, axis=0)
  labels = jax.nn.one_hot(jnp.arange(4), 4)
  kinds = set()

  for seed in range(20):
    mixed, soft_labels = _mix_batch(jax.random.key(seed), images, labels)
    np.testing.assert_allclose(soft_labels.sum(axis=1), 1.0, rtol=1e-6)
    copied = bool(jnp.all((mixed == images) | (mixed == partners)))
    kinds.add("cutmix" if copied else "mixup")

  assert kinds == {"mixup", "cutmix"}


@pytest.mark.parametrize("name", ["shear_x", "shear_y", "translate_x", "translate_y", "rotate"])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_magnitude_zero_geometric_op_is_identity(name, sign):
  image = jnp.asarray(_images(shape=(32, 32, 3)), jnp.float32)

  out = _apply_op(image, _op(name), magnitude=0, sign=jnp.float32(sign))

  np.testing.assert_array_equal(out, image)


@pytest.mark.parametrize("name", ["identity", "brightness", "color", "contrast", "sharpness", "posterize"])
def test_magnitude_zero_color_op_is_identity(name):
  image = jnp.asarray(_images(shape=(32, 32, 3)), jnp.float32)

  out = _apply_op(image, _op(name), magnitude=0, sign=jnp.float32(-1.0))

  np.testing.assert_array_equal(out, image)


def test_torchvision_magnitudes_at_bin_nine():
  magnitudes = randaugment.op_magnitudes(9, (32, 32, 3))

  assert magnitudes["shear"] == pytest.approx(0.09)
  assert magnitudes["translate_x"] == 4.0  # int(150 / 331 * 32 * 9 / 30) = int(4.35)
  assert magnitudes["rotate"] == pytest.approx(9.0)
  assert magnitudes["enhance"] == pytest.approx(0.27)
  assert magnitudes["posterize_bits"] == 7.0
  assert magnitudes["solarize_threshold"] == pytest.approx(178.5)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_translate_x_shifts_columns(sign):
  image = jnp.asarray(_images(shape=(32, 32, 3), low=1), jnp.float32)

  out = np.asarray(_apply_op(image, _op("translate_x"), magnitude=9, sign=jnp.float32(sign)))

  shift = int(4 * sign)
  expected = np.zeros_like(out)
  if shift > 0:
    expected[:, shift:] = np.asarray(image)[:, :-shift]
  else:
    expected[:, :shift] = np.asarray(image)[:, -shift:]
  np.testing.assert_array_equal(out, expected)


def test_rotate_keeps_centre_and_zero_fills_corners():
  image = jnp.asarray(_images(shape=(33, 33, 3), low=1), jnp.float32)

  out = np.asarray(_apply_op(image, _op("rotate"), magnitude=30, sign=jnp.float32(1.0)))

  np.testing.assert_array_equal(out[16, 16], np.asarray(image)[16, 16])
  assert (out[0, 0] == 0).all()
  assert not np.array_equal(out, np.asarray(image))


def test_shear_x_moves_rows_in_proportion():
  image = jnp.asarray(_images(shape=(32, 32, 1), low=1), jnp.float32)

  out = np.asarray(_apply_op(image, _op("shear_x"), magnitude=30, sign=jnp.float32(1.0)))

  # Tangent 0.3: the first row moves by round(0.15) = 0 pixels, the last by about 9.6.
  np.testing.assert_array_equal(out[0], np.asarray(image)[0])
  assert (out[31, -9:] == 0).all()


def test_posterize_and_solarize_tables():
  image = jnp.arange(256, dtype=jnp.float32).reshape(16, 16, 1)

  posterized = _apply_op(image, _op("posterize"), magnitude=9, sign=jnp.float32(1.0))
  solarized = _apply_op(image, _op("solarize"), magnitude=9, sign=jnp.float32(1.0))

  values = np.arange(256).reshape(16, 16, 1)
  np.testing.assert_array_equal(posterized, values & 0b11111110)
  np.testing.assert_array_equal(solarized, np.where(values >= 178.5, 255 - values, values))


def test_brightness_scales_and_truncates():
  image = jnp.asarray(_images(shape=(8, 8, 3)), jnp.float32)

  out = _apply_op(image, _op("brightness"), magnitude=9, sign=jnp.float32(1.0))

  np.testing.assert_array_equal(out, np.floor(np.clip(np.asarray(image) * 1.27, 0, 255)))


def test_autocontrast_stretches_each_channel():
  rng = np.random.default_rng(0)
  image = rng.integers(50, 150, (16, 16, 3)).astype(np.float32)
  image[0, 0] = (50, 50, 50)
  image[0, 1] = (149, 149, 149)

  out = np.asarray(_apply_op(jnp.asarray(image), _op("autocontrast"), magnitude=9, sign=jnp.float32(1.0)))

  expected = np.floor(np.clip((image - 50) * (255.0 / 99.0), 0, 255))
  np.testing.assert_array_equal(out, expected)


def _reference_equalize(channel: np.ndarray) -> np.ndarray:
  """torchvision's _scale_channel, in NumPy."""
  histogram = np.bincount(channel.ravel(), minlength=256)
  nonzero = histogram[histogram != 0]
  step = nonzero[:-1].sum() // 255
  if step == 0:
    return channel
  table = (np.cumsum(histogram) + step // 2) // step
  table = np.clip(np.concatenate([[0], table[:-1]]), 0, 255)
  return table[channel]


def test_equalize_matches_reference():
  rng = np.random.default_rng(1)
  image = np.clip(rng.normal(100, 20, (32, 32, 3)), 0, 255).astype(np.int64)

  out = _apply_op(jnp.asarray(image, jnp.float32), _op("equalize"), magnitude=9, sign=jnp.float32(1.0))

  expected = np.stack([_reference_equalize(image[..., c]) for c in range(3)], axis=-1)
  np.testing.assert_array_equal(out, expected)


def test_equalize_constant_image_unchanged():
  image = jnp.full((8, 8, 1), 77.0)

  out = _apply_op(image, _op("equalize"), magnitude=9, sign=jnp.float32(1.0))

  np.testing.assert_array_equal(out, image)


@pytest.mark.parametrize("name", randaugment.OPS)
@pytest.mark.parametrize("channels", [1, 3])
def test_every_op_keeps_uint8_range(name, channels):
  image = jnp.asarray(_images(shape=(28, 28, channels)), jnp.float32)

  out = np.asarray(_apply_op(image, _op(name), magnitude=9, sign=jnp.float32(-1.0)))

  assert out.shape == image.shape
  assert out.min() >= 0
  assert out.max() <= 255
  np.testing.assert_array_equal(out, np.round(out))


def test_color_op_leaves_grayscale_unchanged():
  image = jnp.asarray(_images(shape=(28, 28, 1)), jnp.float32)

  out = _apply_op(image, _op("color"), magnitude=20, sign=jnp.float32(1.0))

  np.testing.assert_array_equal(out, image)


@functools.cache
def _cached_augment(config_items, num_classes, mean, std):
  config = None if config_items is None else dict(config_items)
  return jax.jit(
      functools.partial(
          augment.augment_batch, num_classes=num_classes, config=config, mean=mean, std=std
      )
  )


def _augment(config=None, num_classes=10, mean=MEAN, std=STD):
  """Return a jitted augment_batch, shared by tests with equal arguments to save compiles."""
  if isinstance(config, ml_collections.ConfigDict):
    config = config.to_dict()
  config_items = None if config is None else tuple(sorted(config.items()))
  return _cached_augment(config_items, num_classes, mean, std)


def test_augment_batch_same_key_same_batch():
  images, labels = _images(), np.arange(8, dtype=np.int32)
  augment_fn = _augment()

  first = augment_fn(jax.random.key(7), images, labels)
  second = augment_fn(jax.random.key(7), images, labels)
  other = augment_fn(jax.random.key(8), images, labels)

  np.testing.assert_array_equal(first[0], second[0])
  np.testing.assert_array_equal(first[1], second[1])
  assert not np.array_equal(first[0], other[0])


def test_augment_batch_shapes_and_labels():
  images, labels = _images(), np.arange(8, dtype=np.int32)

  out_images, soft_labels = _augment()(jax.random.key(0), images, labels)

  assert out_images.shape == (8, 32, 32, 3)
  assert out_images.dtype == jnp.float32
  assert soft_labels.shape == (8, 10)
  assert bool(jnp.all(jnp.isfinite(out_images)))
  np.testing.assert_allclose(soft_labels.sum(axis=1), 1.0, rtol=1e-6)


def test_examples_get_different_randomness():
  # The same image eight times: per-example keys give different crops and ops.
  images = np.broadcast_to(_images(shape=(1, 32, 32, 3)), (8, 32, 32, 3))
  config = dict(mix=False)

  out_images, _ = _augment(config)(jax.random.key(0), images, np.zeros(8, np.int32))

  distinct = {np.asarray(image).tobytes() for image in out_images}
  assert len(distinct) == 8


def test_augment_batch_grayscale():
  images = _images(shape=(4, 28, 28, 1))
  labels = np.arange(4, dtype=np.int32)

  out_images, soft_labels = _augment(mean=(0.286,), std=(0.353,))(jax.random.key(0), images, labels)

  assert out_images.shape == (4, 28, 28, 1)
  np.testing.assert_allclose(soft_labels.sum(axis=1), 1.0, rtol=1e-6)


def test_all_augmentations_off_equals_eval():
  images, labels = _images(), np.arange(8, dtype=np.int32)
  config = ml_collections.ConfigDict(ALL_OFF)

  train_images, train_labels = _augment(config)(jax.random.key(0), images, labels)
  eval_images, eval_labels = augment.prepare_eval_batch(
      images, labels, num_classes=10, mean=MEAN, std=STD
  )

  np.testing.assert_allclose(train_images, eval_images, rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(train_labels, eval_labels)


def test_prepare_eval_batch_is_deterministic_normalisation():
  images, labels = _images(), np.arange(8, dtype=np.int32)
  prepare = jax.jit(
      functools.partial(augment.prepare_eval_batch, num_classes=10, mean=MEAN, std=STD)
  )

  first_images, first_labels = prepare(images, labels)
  second_images, _ = prepare(images, labels)

  expected = (images / 255.0 - np.asarray(MEAN)) / np.asarray(STD)
  np.testing.assert_allclose(first_images, expected, rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(first_images, second_images)
  np.testing.assert_array_equal(first_labels, np.eye(10)[labels])


def test_crop_and_flip_only_keep_pixel_values():
  # Without RandAugment or mixing, every output pixel is an input pixel or zero padding.
  images, labels = _images(shape=(4, 32, 32, 3)), np.arange(4, dtype=np.int32)
  config = dict(crop_padding=4, flip=True, randaugment=False, mix=False)

  out_images, _ = _augment(config, mean=(0.0,) * 3, std=(1.0,) * 3)(jax.random.key(2), images, labels)

  values = np.round(np.asarray(out_images) * 255.0).astype(np.int64)
  for index in range(4):
    allowed = set(np.unique(images[index])) | {0}
    assert set(np.unique(values[index])) <= allowed


@pytest.mark.parametrize(
    "config, message",
    [
        (dict(cutmix_probability=0.5), "Unknown augmentation settings"),
        (dict(crop_padding=-1), "crop_padding"),
        (dict(mix_probability=1.5), "mix_probability"),
        (dict(randaugment_magnitude=31), "magnitude"),
        (dict(mixup_alpha=0.0), "mixup_alpha"),
    ],
)
def test_invalid_config_raises(config, message):
  with pytest.raises(ValueError, match=message):
    _augment(config)(jax.random.key(0), _images(shape=(2, 32, 32, 3)), np.arange(2, dtype=np.int32))


def test_mean_length_must_match_channels():
  with pytest.raises(ValueError, match="one value per channel"):
    augment.prepare_eval_batch(
        _images(shape=(2, 28, 28, 1)), np.arange(2), num_classes=10, mean=MEAN, std=STD
    )


@pytest.mark.parametrize("function", ["augment_batch", "prepare_eval_batch"])
def test_float_images_raise(function):
  images = jnp.zeros((2, 8, 8, 3), jnp.float32)
  labels = jnp.zeros((2,), jnp.int32)
  kwargs = dict(num_classes=10, mean=(0.5,) * 3, std=(0.25,) * 3)
  if function == "augment_batch":
    call = functools.partial(
        augment.augment_batch, jax.random.key(0), config=None, **kwargs)
  else:
    call = functools.partial(augment.prepare_eval_batch, **kwargs)

  with pytest.raises(ValueError, match="images must be uint8 in \\[0, 255\\], got dtype float32"):
    call(images, labels)


@pytest.mark.parametrize("function", ["augment_batch", "prepare_eval_batch"])
@pytest.mark.parametrize("bad_label", [10, -1])
def test_out_of_range_label_raises(function, bad_label):
  images = _images(shape=(4, 8, 8, 3))
  labels = np.array([0, 1, bad_label, 2], np.int32)
  kwargs = dict(num_classes=10, mean=MEAN, std=STD)
  if function == "augment_batch":
    call = functools.partial(
        augment.augment_batch, jax.random.key(0), config=ALL_OFF, **kwargs)
  else:
    call = functools.partial(augment.prepare_eval_batch, **kwargs)

  message = f"labels\\[2\\] = {bad_label} is outside \\[0, 10\\)"
  with pytest.raises(ValueError, match=message):
    call(images, labels)
  with pytest.raises(ValueError, match=message):
    call(jnp.asarray(images), jnp.asarray(labels))


def test_traced_labels_are_not_checked():
  # Under jit the values are unknown at trace time: one_hot's zero row is
  # the documented result, and Dataset checks labels before training.
  prepare = jax.jit(
      functools.partial(augment.prepare_eval_batch, num_classes=10, mean=MEAN, std=STD))

  _, one_hot = prepare(_images(shape=(2, 8, 8, 3)), np.array([3, 10], np.int32))

  np.testing.assert_array_equal(one_hot[0], np.eye(10)[3])
  np.testing.assert_array_equal(one_hot[1], np.zeros(10))
