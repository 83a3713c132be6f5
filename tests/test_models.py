"""Tests for the ViT, its 2-D rotary embedding, the MLP and create_model."""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from sigreg_jax.models import MLP
from sigreg_jax.models import ViT
from sigreg_jax.models import create_model
from sigreg_jax.models import initializers
from sigreg_jax.models import rotary
from sigreg_jax.models import vit_collapse_kwargs
from sigreg_jax.models import vit_tuned_kwargs

# 8x8 images in 2x2 patches: a 4x4 grid of 16 tokens, head dimension 8.
TINY_VIT = dict(
    num_classes=5, image_size=8, in_channels=3, patch_size=2, width=16,
    depth=3, num_heads=2, mlp_dim=32,
)


def _images(batch=4, size=8, seed=0):
  return jax.random.normal(jax.random.key(seed), (batch, size, size, 3))


@nnx.jit
def _forward(model, images):
  return model(images)


def _reference_tokens_after_blocks(model, images):
  """Run the ViT's layers one by one and return the token tensor per block."""
  patches = model.patch_embedding(images)
  tokens = patches.reshape(images.shape[0], -1, patches.shape[-1])
  if model.class_token is not None:
    class_tokens = jnp.broadcast_to(
        model.class_token[...], (images.shape[0], 1, tokens.shape[-1])
    )
    tokens = jnp.concatenate([class_tokens, tokens], axis=1)
  if model.position_embedding is not None:
    tokens = tokens + model.position_embedding[...]
  angles = model._rotary_angles(model.blocks[0].attention.head_dim)
  per_block = []
  for block in model.blocks:
    tokens = block(tokens, angles)
    per_block.append(tokens)
  return per_block


# ---------------------------------------------------------------- rotary


def test_grid_positions_row_major():
  positions = np.asarray(rotary.grid_positions(2, 3))
  expected = [[0, 0], [1, 0], [2, 0], [0, 1], [1, 1], [2, 1]]
  np.testing.assert_array_equal(positions, expected)


def test_axial_frequencies_formula():
  head_dim, base = 32, 10000.0
  frequencies = np.asarray(rotary.axial_frequencies(head_dim, base))
  axis_dim = head_dim // 2
  expected = [base ** (-2 * i / axis_dim) for i in range(axis_dim // 2)]
  assert frequencies.shape == (head_dim // 4,)
  np.testing.assert_allclose(frequencies, expected, rtol=1e-6)


def test_axial_angles_x_then_y():
  positions = jnp.array([[3, 5]])
  angles = np.asarray(rotary.axial_rotary_angles(positions, 16, 100.0))
  frequencies = np.asarray(rotary.axial_frequencies(16, 100.0))
  np.testing.assert_allclose(angles[0, :4], 3 * frequencies, rtol=1e-6)
  np.testing.assert_allclose(angles[0, 4:], 5 * frequencies, rtol=1e-6)


def _numpy_within_axis(vector, x, y, base):
  """Rotate channel pairs (j, j + head_dim/4) of each axis half explicitly."""
  head_dim = vector.shape[-1]
  axis_dim, quarter = head_dim // 2, head_dim // 4
  output = np.array(vector, dtype=np.float64)
  for axis_start, position in ((0, x), (axis_dim, y)):
    for i in range(quarter):
      theta = position * base ** (-2 * i / axis_dim)
      rotation = np.array([[np.cos(theta), -np.sin(theta)],
                           [np.sin(theta), np.cos(theta)]])
      pair = [axis_start + i, axis_start + i + quarter]
      output[pair] = rotation @ vector[pair]
  return output


def _numpy_cross_axis(vector, x, y, base):
  """The Weak-SIGReg authors' PyTorch formula, transcribed to numpy."""
  head_dim = vector.shape[-1]
  axis_dim = head_dim // 2
  inverse_frequencies = 1.0 / base ** (np.arange(0, axis_dim, 2) / axis_dim)
  embedding_x = np.concatenate([x * inverse_frequencies] * 2)
  embedding_y = np.concatenate([y * inverse_frequencies] * 2)
  angles = np.concatenate([embedding_x, embedding_y])
  first, second = vector[:axis_dim], vector[axis_dim:]
  rotated_half = np.concatenate([-second, first])
  return vector * np.cos(angles) + rotated_half * np.sin(angles)


@pytest.mark.parametrize(
    "pairing, reference",
    [("within_axis", _numpy_within_axis), ("cross_axis", _numpy_cross_axis)],
)
def test_rotary_matches_numpy_reference(pairing, reference):
  head_dim, base = 16, 10000.0
  positions = jnp.array([[0, 0], [3, 1], [7, 5], [2, 6]])
  vectors = np.asarray(
      jax.random.normal(jax.random.key(1), (4, head_dim)), np.float64
  )
  angles = rotary.axial_rotary_angles(positions, head_dim, base)
  rotated = np.asarray(
      rotary.apply_axial_rotary(jnp.asarray(vectors, jnp.float32), angles,
                                pairing=pairing)
  )
  for index, (x, y) in enumerate(np.asarray(positions)):
    expected = reference(vectors[index], x, y, base)
    np.testing.assert_allclose(rotated[index], expected, atol=1e-5)


def _rotary_score(query, key, query_position, key_position, pairing):
  positions = jnp.array([query_position, key_position])
  angles = rotary.axial_rotary_angles(positions, query.shape[-1], 10000.0)
  rotated = rotary.apply_axial_rotary(
      jnp.stack([query, key]), angles, pairing=pairing
  )
  return float(rotated[0] @ rotated[1])


def test_rotary_scores_depend_only_on_offset():
  query, key = jax.random.normal(jax.random.key(2), (2, 32))
  cases = [
      ((0, 0), (3, 1), (2, 5)),
      ((1, 4), (6, 2), (-1, 3)),
      ((5, 5), (0, 7), (7, 0)),
      ((2, 3), (2, 3), (4, 4)),
  ]
  for query_position, key_position, shift in cases:
    score = _rotary_score(query, key, query_position, key_position,
                          "within_axis")
    shifted_query = tuple(np.add(query_position, shift))
    shifted_key = tuple(np.add(key_position, shift))
    shifted_score = _rotary_score(query, key, shifted_query, shifted_key,
                                  "within_axis")
    assert shifted_score == pytest.approx(score, abs=1e-4)


def test_rotary_score_changes_with_offset():
  query, key = jax.random.normal(jax.random.key(3), (2, 32))
  near = _rotary_score(query, key, (0, 0), (1, 0), "within_axis")
  far = _rotary_score(query, key, (0, 0), (0, 5), "within_axis")
  assert abs(near - far) > 1e-3


def test_rotary_preserves_norm():
  vectors = jax.random.normal(jax.random.key(4), (16, 32))
  angles = rotary.axial_rotary_angles(rotary.grid_positions(4, 4), 32)
  rotated = rotary.apply_axial_rotary(vectors, angles)
  np.testing.assert_allclose(
      jnp.linalg.norm(rotated, axis=-1), jnp.linalg.norm(vectors, axis=-1),
      rtol=1e-5,
  )


def test_cross_axis_scores_depend_on_position():
  query, key = jax.random.normal(jax.random.key(5), (2, 32))
  score = _rotary_score(query, key, (0, 0), (3, 1), "cross_axis")
  shifted = _rotary_score(query, key, (2, 5), (5, 6), "cross_axis")
  assert abs(score - shifted) > 1e-3


def test_rotary_keeps_bfloat16():
  vectors = jnp.ones((4, 8), jnp.bfloat16)
  angles = rotary.axial_rotary_angles(rotary.grid_positions(2, 2), 8)
  assert rotary.apply_axial_rotary(vectors, angles).dtype == jnp.bfloat16


def test_rotary_rejects_bad_head_dim():
  with pytest.raises(ValueError, match="divisible by 4"):
    rotary.axial_frequencies(6)
  with pytest.raises(ValueError, match="head_dim // 2"):
    rotary.apply_axial_rotary(jnp.ones((2, 8)), jnp.ones((2, 3)))


# ---------------------------------------------------------------- ViT


@pytest.mark.parametrize("class_token, pool", [(False, "mean"),
                                               (True, "class_token"),
                                               (True, "mean")])
def test_vit_output_shapes(class_token, pool):
  model = ViT(**TINY_VIT, class_token=class_token, pool=pool,
              rngs=nnx.Rngs(0))
  logits, features = _forward(model, _images())
  assert logits.shape == (4, 5)
  assert logits.dtype == jnp.float32
  assert len(features) == TINY_VIT["depth"]
  for feature in features:
    assert feature.shape == (4, TINY_VIT["width"])


@pytest.mark.parametrize("preset", [vit_collapse_kwargs, vit_tuned_kwargs])
def test_vit_preset_shapes(preset):
  kwargs = preset()

  def forward(images):
    model = ViT(num_classes=100, **kwargs, rngs=nnx.Rngs(0))
    return model(images)

  logits, features = jax.eval_shape(
      forward, jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32)
  )
  assert logits.shape == (2, 100)
  assert len(features) == kwargs["depth"]
  for feature in features:
    assert feature.shape == (2, kwargs["width"])


def test_vit_collapse_parameter_count():
  model = nnx.eval_shape(
      lambda: ViT(num_classes=100, **vit_collapse_kwargs(), rngs=nnx.Rngs(0))
  )
  count = sum(
      math.prod(leaf.shape) for leaf in jax.tree.leaves(nnx.state(model,
                                                                 nnx.Param))
  )
  # Patch conv 48*256+256, six blocks of (2 LayerNorms, qkv without bias,
  # output projection, MLP 256-512-256), final LayerNorm, head 256*100+100.
  block = 2 * 512 + 256 * 768 + (256 * 256 + 256) + (256 * 512 + 512) + (
      512 * 256 + 256)
  expected = (48 * 256 + 256) + 6 * block + 512 + (256 * 100 + 100)
  assert count == expected


def test_vit_tuned_stochastic_depth_rates():
  model = nnx.eval_shape(
      lambda: ViT(num_classes=100, **vit_tuned_kwargs(), rngs=nnx.Rngs(0))
  )
  rates = [block.attention_drop_path.rate for block in model.blocks]
  np.testing.assert_allclose(rates, np.linspace(0.0, 0.1, 9))
  mlp_rates = [block.mlp_drop_path.rate for block in model.blocks]
  assert mlp_rates == rates


def test_vit_features_are_token_means():
  model = ViT(**TINY_VIT, rngs=nnx.Rngs(0))
  images = _images()
  _, features = _forward(model, images)
  per_block = nnx.jit(_reference_tokens_after_blocks)(model, images)
  for feature, tokens in zip(features, per_block):
    np.testing.assert_allclose(feature, tokens.mean(axis=1), atol=1e-5)


def test_vit_features_include_class_token():
  model = ViT(**TINY_VIT, class_token=True, pool="class_token",
              position_embedding="learned", rngs=nnx.Rngs(0))
  images = _images()
  _, features = _forward(model, images)
  per_block = nnx.jit(_reference_tokens_after_blocks)(model, images)
  last_tokens = per_block[-1]
  assert last_tokens.shape[1] == 17
  np.testing.assert_allclose(features[-1], last_tokens.mean(axis=1),
                             atol=1e-5)
  patch_mean = last_tokens[:, 1:].mean(axis=1)
  assert not np.allclose(features[-1], patch_mean, atol=1e-4)


def test_vit_mean_pool_skips_class_token():
  model = ViT(**TINY_VIT, class_token=True, pool="mean", rngs=nnx.Rngs(0))
  images = _images()
  logits, _ = _forward(model, images)

  @nnx.jit
  def head_on_patch_mean(model, images):
    tokens = model.final_norm(_reference_tokens_after_blocks(model, images)[-1])
    return model.head(tokens[:, 1:].mean(axis=1))

  np.testing.assert_allclose(logits, head_on_patch_mean(model, images),
                             atol=1e-5)


def test_vit_class_token_not_rotated():
  model = ViT(**TINY_VIT, class_token=True, pool="class_token",
              rngs=nnx.Rngs(0))
  angles = np.asarray(model._rotary_angles(8))
  assert angles.shape == (17, 4)
  np.testing.assert_array_equal(angles[0], 0.0)
  assert np.any(angles[1:] != 0.0)


def test_vit_stochastic_depth_train_only():
  model = ViT(**TINY_VIT, stochastic_depth_rate=0.5,
              rngs=nnx.Rngs(params=0, dropout=1))
  images = _images(batch=8)

  model.eval()
  eval_logits, _ = _forward(model, images)
  eval_again, _ = _forward(model, images)
  np.testing.assert_array_equal(eval_logits, eval_again)

  model.train()
  train_logits, _ = _forward(model, images)
  train_again, _ = _forward(model, images)
  assert not np.allclose(train_logits, eval_logits, atol=1e-5)
  assert not np.allclose(train_logits, train_again, atol=1e-5)


def test_vit_eval_matches_no_stochastic_depth():
  images = _images()
  dropped = ViT(**TINY_VIT, stochastic_depth_rate=0.5,
                rngs=nnx.Rngs(params=0, dropout=1))
  plain = ViT(**TINY_VIT, rngs=nnx.Rngs(params=0, dropout=1))
  dropped.eval()
  np.testing.assert_allclose(_forward(dropped, images)[0],
                             _forward(plain, images)[0], atol=1e-6)


def test_vit_stochastic_depth_drops_whole_examples():
  # Depth 2 puts rate 0.9 on the second block's branches only.
  model = ViT(**dict(TINY_VIT, depth=2), stochastic_depth_rate=0.9,
              rngs=nnx.Rngs(params=0, dropout=1))
  block = model.blocks[1]
  tokens = jnp.ones((64, 16, 16))
  dropped = nnx.jit(lambda drop, x: drop(x))(block.attention_drop_path, tokens)
  per_example = np.asarray(dropped).reshape(64, -1)
  kept_examples = per_example[:, 0] != 0.0
  for row, keep in zip(per_example, kept_examples):
    expected = 1.0 / (1.0 - 0.9) if keep else 0.0
    np.testing.assert_allclose(row, expected, rtol=1e-5)
  assert 0 < kept_examples.sum() < 64


def test_vit_no_random_state_without_stochastic_depth():
  model = ViT(**TINY_VIT, rngs=nnx.Rngs(0))
  assert not jax.tree.leaves(nnx.state(model, nnx.RngState))


def test_vit_truncated_normal_init():
  model = ViT(**dict(TINY_VIT, width=64, num_heads=4, mlp_dim=128,
                     depth=1), qkv_bias=True, rngs=nnx.Rngs(0))
  block = model.blocks[0]
  for layer in (block.attention.qkv, block.attention.output,
                block.mlp.hidden, block.mlp.output, model.head):
    kernel = np.asarray(layer.kernel[...])
    assert abs(kernel.std() - 0.02) < 0.002
    assert abs(kernel.mean()) < 0.002
    assert np.abs(kernel).max() <= 2 * 0.02 / 0.8796 + 1e-6
    np.testing.assert_array_equal(layer.bias[...], 0.0)
  kernel = np.asarray(model.patch_embedding.kernel[...])
  assert abs(kernel.std() - 0.02) < 0.004


def test_truncated_normal_std():
  samples = initializers.truncated_normal(0.02)(jax.random.key(0),
                                                (400_000,))
  assert float(samples.std()) == pytest.approx(0.02, rel=0.01)
  assert float(jnp.abs(samples).max()) <= 2 * 0.02 / 0.8796 + 1e-7


def test_vit_pytorch_default_init():
  model = ViT(**TINY_VIT, linear_init="pytorch_default",
              patch_embedding_init="pytorch_default",
              head_init="xavier_uniform", qkv_bias=True, rngs=nnx.Rngs(0))
  qkv = model.blocks[0].attention.qkv
  bound = 1.0 / math.sqrt(16)
  assert np.abs(np.asarray(qkv.kernel[...])).max() <= bound
  assert np.abs(np.asarray(qkv.kernel[...])).max() > 0.8 * bound
  assert np.abs(np.asarray(qkv.bias[...])).max() <= bound
  assert np.any(np.asarray(qkv.bias[...]) != 0.0)
  patch_bound = 1.0 / math.sqrt(3 * 2 * 2)
  assert np.abs(np.asarray(model.patch_embedding.kernel[...])).max() <= (
      patch_bound)
  xavier_bound = math.sqrt(6.0 / (16 + 5))
  head = np.asarray(model.head.kernel[...])
  assert np.abs(head).max() <= xavier_bound
  assert np.abs(head).max() > 0.5 * xavier_bound


def test_vit_bfloat16_compute():
  model = ViT(**TINY_VIT, dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
  logits, features = _forward(model, _images())
  assert logits.dtype == jnp.float32
  assert all(feature.dtype == jnp.bfloat16 for feature in features)
  for leaf in jax.tree.leaves(nnx.state(model, nnx.Param)):
    assert leaf.dtype == jnp.float32
  reference = ViT(**TINY_VIT, rngs=nnx.Rngs(0))
  np.testing.assert_allclose(logits, _forward(reference, _images())[0],
                             atol=0.1)


def test_vit_gradients_reach_every_parameter():
  model = ViT(**TINY_VIT, class_token=True, pool="class_token",
              position_embedding="learned", rngs=nnx.Rngs(0))

  @nnx.jit
  def gradients(model, images):
    def loss(model):
      logits, features = model(images)
      return jnp.sum(logits ** 2) + sum(jnp.sum(f ** 2) for f in features)
    return nnx.grad(loss)(model)

  for path, leaf in jax.tree.leaves_with_path(gradients(model, _images())):
    assert float(jnp.abs(leaf).max()) > 0.0, jax.tree_util.keystr(path)


def test_vit_rejects_wrong_image_shape():
  model = ViT(**TINY_VIT, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="images must have shape"):
    model(jnp.zeros((2, 16, 16, 3)))


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(image_size=9), "multiple of patch_size"),
        (dict(num_heads=3), "must divide width"),
        (dict(width=24, num_heads=4), "divisible by 4"),
        (dict(pool="class_token"), "class_token=True"),
        (dict(pool="max"), "pool must be"),
        (dict(position_embedding="sincos"), "position_embedding must be"),
        (dict(stochastic_depth_rate=1.0), r"\[0, 1\)"),
        (dict(rope_pairing="interleaved"), "rope_pairing must be"),
        (dict(linear_init="orthogonal"), "linear_init must be"),
    ],
)
def test_vit_rejects_invalid_arguments(overrides, message):
  with pytest.raises(ValueError, match=message):
    nnx.eval_shape(lambda: ViT(**{**TINY_VIT, **overrides}, rngs=nnx.Rngs(0)))


def test_vit_rectangular_images():
  model = ViT(**dict(TINY_VIT, image_size=(8, 12)), rngs=nnx.Rngs(0))
  logits, features = _forward(model, jnp.zeros((2, 8, 12, 3)))
  assert logits.shape == (2, 5)
  assert model._rotary_angles(8).shape == (24, 4)


# ---------------------------------------------------------------- MLP


def test_mlp_shapes_and_pre_activations():
  model = MLP(in_features=48, hidden_widths=(32, 16, 8), num_classes=5,
              rngs=nnx.Rngs(0))
  images = _images(size=4)
  logits, features = _forward(model, images)
  assert logits.shape == (4, 5)
  assert [feature.shape for feature in features] == [(4, 32), (4, 16), (4, 8)]

  flat = images.reshape(4, 48)
  first = flat @ model.hidden_layers[0].kernel[...] + (
      model.hidden_layers[0].bias[...])
  np.testing.assert_allclose(features[0], first, atol=1e-5)
  second = jax.nn.relu(first) @ model.hidden_layers[1].kernel[...] + (
      model.hidden_layers[1].bias[...])
  np.testing.assert_allclose(features[1], second, atol=1e-5)
  assert np.any(np.asarray(features[0]) < 0.0)


def test_mlp_pytorch_default_init():
  model = MLP(in_features=3072, hidden_widths=(256,), num_classes=10,
              rngs=nnx.Rngs(0))
  layer = model.hidden_layers[0]
  bound = 1.0 / math.sqrt(3072)
  kernel = np.asarray(layer.kernel[...])
  assert np.abs(kernel).max() <= bound
  assert kernel.std() == pytest.approx(bound / math.sqrt(3.0), rel=0.01)
  bias = np.asarray(layer.bias[...])
  assert np.abs(bias).max() <= bound
  assert np.abs(bias).max() > 0.5 * bound
  head_bound = 1.0 / math.sqrt(256)
  assert np.abs(np.asarray(model.head.kernel[...])).max() <= head_bound


@pytest.mark.parametrize("activation", ["relu", "gelu", "tanh", "silu"])
def test_mlp_activations(activation):
  model = MLP(in_features=48, hidden_widths=(8, 8), num_classes=3,
              activation=activation, rngs=nnx.Rngs(0))
  logits, features = _forward(model, _images(size=4))
  assert logits.shape == (4, 3)
  assert len(features) == 2


def test_mlp_jit_matches_eager():
  model = MLP(in_features=48, hidden_widths=(8, 8), num_classes=3,
              rngs=nnx.Rngs(0))
  images = _images(size=4)
  eager_logits, eager_features = model(images)
  jit_logits, jit_features = _forward(model, images)
  np.testing.assert_allclose(jit_logits, eager_logits, atol=1e-6)
  np.testing.assert_allclose(jit_features[-1], eager_features[-1], atol=1e-6)


def test_mlp_rejects_bad_arguments():
  with pytest.raises(ValueError, match="activation must be"):
    MLP(in_features=4, num_classes=2, activation="swish", rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="hidden_widths"):
    MLP(in_features=4, hidden_widths=(), num_classes=2, rngs=nnx.Rngs(0))
  model = MLP(in_features=48, hidden_widths=(4,), num_classes=2,
              rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="in_features=48"):
    model(jnp.zeros((2, 5, 5, 3)))


# ---------------------------------------------------------------- create_model


def test_create_model_vit_from_config():
  config = ml_collections.ConfigDict(
      dict(name="vit", image_size=8, **{k: v for k, v in TINY_VIT.items()
                                        if k not in ("num_classes",
                                                     "image_size",
                                                     "in_channels")}))
  model = create_model(config, 5, (8, 8, 3), nnx.Rngs(0))
  assert isinstance(model, ViT)
  logits, features = _forward(model, _images())
  assert logits.shape == (4, 5)
  assert len(features) == 3


def test_create_model_vit_preset():
  config = ml_collections.ConfigDict(dict(name="vit", **vit_tuned_kwargs()))
  model = nnx.eval_shape(
      lambda: create_model(config, 100, (32, 32, 3), nnx.Rngs(0))
  )
  assert isinstance(model, ViT)
  assert len(model.blocks) == 9


def test_create_model_mlp_with_dtype():
  config = ml_collections.ConfigDict(
      dict(name="mlp", hidden_widths=[8, 8], activation="tanh",
           dtype="bfloat16"))
  model = create_model(config, 3, (4, 4, 3), nnx.Rngs(0))
  assert isinstance(model, MLP)
  logits, features = _forward(model, _images(size=4))
  assert logits.shape == (4, 3)
  assert features[0].dtype == jnp.bfloat16


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(name="resnet"), "must be one of"),
        (dict(name="mlp", depth=3), "does not take"),
        (dict(name="vit", image_size=16), "image_size"),
        (dict(name="mlp", num_classes=7), "num_classes"),
        (dict(name="mlp", dtype="float65"), "config.model.dtype='float65' is not a dtype"),
    ],
)
def test_create_model_rejects_bad_config(fields, message):
  config = ml_collections.ConfigDict(fields)
  with pytest.raises(ValueError, match=message):
    nnx.eval_shape(lambda: create_model(config, 3, (8, 8, 3), nnx.Rngs(0)))


def _attention_logits(model, tokens):
  """Query-key logits `[num_heads, num_tokens, num_tokens]` of block 0."""
  attention = model.blocks[0].attention
  qkv = attention.qkv(tokens).reshape(
      tokens.shape[0], tokens.shape[1], 3, attention.num_heads,
      attention.head_dim,
  )
  angles = model._rotary_angles(attention.head_dim)[:, None, :]
  query = rotary.apply_axial_rotary(qkv[:, :, 0], angles,
                                    pairing=attention.rope_pairing)
  key = rotary.apply_axial_rotary(qkv[:, :, 1], angles,
                                  pairing=attention.rope_pairing)
  return jnp.einsum("tnh,snh->nts", query[0], key[0])


@pytest.mark.parametrize("pairing, relative", [("within_axis", True),
                                               ("cross_axis", False)])
def test_vit_attention_logits_shift(pairing, relative):
  # Identical content at every patch, so only position can change a logit.
  model = ViT(**TINY_VIT, rope_pairing=pairing, rngs=nnx.Rngs(0))
  content = jax.random.normal(jax.random.key(6), (1, 1, 16))
  logits = np.asarray(_attention_logits(model, jnp.tile(content, (1, 16, 1))))

  def token(x, y):
    return y * 4 + x

  pairs = [((0, 0), (2, 1), (1, 2)), ((1, 3), (0, 0), (2, 0)),
           ((3, 1), (1, 2), (-1, 1))]
  for (x1, y1), (x2, y2), (dx, dy) in pairs:
    score = logits[:, token(x1, y1), token(x2, y2)]
    shifted = logits[:, token(x1 + dx, y1 + dy), token(x2 + dx, y2 + dy)]
    assert np.allclose(score, shifted, atol=1e-5) == relative


def test_vit_reseed_gives_independent_masks():
  model = ViT(**dict(TINY_VIT, depth=2), stochastic_depth_rate=0.9,
              rngs=nnx.Rngs(params=0, dropout=1))
  nnx.reseed(model, dropout=jax.random.key(7))
  block = model.blocks[1]
  tokens = jnp.ones((64, 16, 16))

  @nnx.jit
  def masks(block, tokens):
    attention_mask = block.attention_drop_path(tokens)[:, 0, 0]
    mlp_mask = block.mlp_drop_path(tokens)[:, 0, 0]
    return attention_mask, mlp_mask

  attention_mask, mlp_mask = masks(block, tokens)
  assert not np.array_equal(attention_mask, mlp_mask)
