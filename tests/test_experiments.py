"""Tests of the experiment configs, entry points and plotting command.

The end-to-end tests train each experiment for a few steps on a small slice
of the real CIFAR-10 image-folder archive, which lives outside the
repository at ../shared/data/cifar10-jpeg.tar.gz; they are skipped when it is
absent.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from experiments.configs import mlp_sgd
from experiments.configs import vit_cifar100

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
CIFAR10_ARCHIVE = REPO_ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"


# Settings of Akbar, 2026, "Weak-SIGReg: Covariance Regularization for Stable
# Deep Learning", arXiv 2603.05924, CIFAR-100 protocol.
def test_common_defaults_match_paper():
  config = vit_cifar100.get_config()

  assert config.dataset == "cifar100"
  assert config.data_source == "tfds"
  assert config.batch_size == 128
  assert config.num_epochs == 400
  assert config.max_steps is None
  assert config.regularizer == "none"
  assert config.alpha is None
  assert config.weak.num_sketches == 64
  assert config.weak.sketch == "gaussian"
  assert config.strong.num_slices == 64
  assert (config.strong.t_max, config.strong.num_knots) == (5.0, 9)


def test_vit_collapse_defaults_match_paper():
  config = vit_cifar100.get_config()

  assert config.variant == "collapse"
  assert config.model.to_dict() == dict(
      name="vit", image_size=32, patch_size=4, width=256, depth=6,
      num_heads=8, mlp_dim=512, qkv_bias=False, position_embedding="rope2d",
      class_token=False, pool="mean", stochastic_depth_rate=0.0,
      rope_base=10000.0)

  optimizer = config.optimizer
  assert optimizer.name == "adamw"
  assert optimizer.learning_rate == 1e-3
  assert (optimizer.b1, optimizer.b2) == (0.9, 0.999)
  assert optimizer.weight_decay == 5e-4
  assert optimizer.weight_decay_mask == "all"
  assert optimizer.schedule == "cosine"
  assert optimizer.final_learning_rate == 0.0
  assert optimizer.warmup_epochs == 0.0
  assert optimizer.grad_clip_norm is None

  augment = config.augment
  assert (augment.crop_padding, augment.flip) == (4, True)
  assert augment.randaugment
  assert (augment.randaugment_num_ops, augment.randaugment_magnitude) == (2, 9)
  assert augment.mix
  assert (augment.mixup_alpha, augment.cutmix_alpha) == (0.8, 1.0)
  assert augment.mix_probability == 0.5


def test_vit_muon_variants_match_paper():
  for variant, mix in (("muon", True), ("muon_nomix", False)):
    config = vit_cifar100.get_config(variant)

    assert config.optimizer.name == "muon"
    assert config.optimizer.muon_learning_rate == 1e-2
    assert config.optimizer.learning_rate == 1e-3
    assert (config.optimizer.adam_b1, config.optimizer.adam_b2) == (0.9, 0.95)
    assert config.optimizer.weight_decay == 5e-4
    assert config.augment.mix == mix
    assert config.model.width == 256


def test_vit_tuned_variant_matches_paper():
  for variant, optimizer_name in (("tuned", "adamw"), ("tuned_muon", "muon")):
    config = vit_cifar100.get_config(variant)

    model = config.model
    assert (model.width, model.depth, model.num_heads, model.mlp_dim) == (
        192, 9, 3, 768)
    assert model.qkv_bias
    assert model.class_token
    assert model.position_embedding == "learned"
    assert model.stochastic_depth_rate == 0.1
    assert config.optimizer.name == optimizer_name
    assert config.optimizer.weight_decay == 0.05
    assert config.optimizer.grad_clip_norm == 1.0
    assert config.optimizer.final_learning_rate == 1e-5


def test_mlp_defaults_match_paper():
  config = mlp_sgd.get_config()

  assert config.model.to_dict() == dict(
      name="mlp", hidden_widths=(1024,) * 5, activation="relu")
  optimizer = config.optimizer
  assert optimizer.name == "sgd"
  assert optimizer.learning_rate == 0.1
  assert optimizer.momentum is None
  assert optimizer.weight_decay == 0.0
  assert optimizer.schedule == "constant"
  assert optimizer.grad_clip_norm == 1.0
  assert (config.augment.crop_padding, config.augment.flip) == (4, True)
  assert not config.augment.randaugment
  assert not config.augment.mix
  assert config.batch_size == 128
  assert config.num_epochs == 400


def test_mlp_mix_variant_adds_mixup_cutmix():
  config = mlp_sgd.get_config("mix")

  assert config.augment.mix
  assert not config.augment.randaugment


@pytest.mark.parametrize("module", [vit_cifar100, mlp_sgd])
def test_unknown_variant_raises(module):
  with pytest.raises(ValueError, match="variant 'bogus'"):
    module.get_config("bogus")
