"""Measure what Weak-SIGReg and SIGReg add to a full training step, and whether augmentation keeps up.

Builds the jitted train step of `sigreg_jax.training.step` three times: with
no regulariser, with Weak-SIGReg (64 sketches) and with SIGReg (64 slices,
the Weak-SIGReg paper's grid). The regulariser acts on the six per-block
features of the collapse-setting ViT of Akbar, 2026, "Weak-SIGReg: Covariance
Regularization for Stable Deep Learning" (arXiv 2603.05924). It times the three steps in
interleaved rounds on one device, together with the regulariser alone (forward
and backward on every block's features, a steadier estimate of its share than
the difference of two step times on a busy machine). It reports XLA's FLOP
counts of each step and of the regulariser alone, and times `augment_batch`
alone against the step's consumption of images.

Run `python -m benchmarks.train_step` (a few minutes on 2 cores) or
`python -m benchmarks.train_step --quick` for a 2-block ViT at batch 32.
"""

import argparse
import json
import logging
import statistics

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from benchmarks import timing
from sigreg_jax import models
from sigreg_jax import parallel
from sigreg_jax.data import augment
from sigreg_jax.models import vit
from sigreg_jax.training import config as config_lib
from sigreg_jax.training import loss as loss_lib
from sigreg_jax.training import optimizers
from sigreg_jax.training import step as step_lib

REGULARIZERS = ("none", "weak", "strong")

NUM_CLASSES = 100
IMAGE_SHAPE = (32, 32, 3)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)

# A 2-block, width-64 ViT for --quick: same code path, seconds instead of minutes.
QUICK_MODEL = dict(width=64, depth=2, num_heads=4, mlp_dim=128)


def make_config(regularizer: str, *, batch_size: int, model_overrides: dict,
                light_augment: bool):
  """Return the run config of one arm: the collapse-setting ViT with all augmentations."""
  config = config_lib.default_config()
  config.model = dict(name="vit", **vit.vit_collapse_kwargs())
  config.model.update(model_overrides)
  config.regularizer = regularizer
  config.batch_size = batch_size
  if light_augment:
    config.augment.randaugment = False
    config.augment.mix = False
  return config


def build_step(config, mesh):
  """Return (jitted train step, initial replicated state) for one config."""
  tx, schedules = optimizers.create_optimizer(config.optimizer, total_steps=1000,
                                              steps_per_epoch=100)
  model = models.create_model(config.model, NUM_CLASSES, IMAGE_SHAPE,
                              rngs=nnx.Rngs(params=0, dropout=1))
  train_state = step_lib.TrainState.create(model, tx)
  train_step = step_lib.make_train_step(
      train_state, config, num_classes=NUM_CLASSES, mean=CIFAR100_MEAN, std=CIFAR100_STD,
      schedules=schedules, mesh=mesh)
  return train_step, parallel.replicate(mesh, train_state.state)


def compile_step(train_step, state, images, labels, key):
  """Compile the train step ahead of time; return (compiled step, XLA cost analysis).

  `make_train_step` returns a Python wrapper around its jitted function, so
  this jits the wrapper once more, with the state donated as the wrapper's
  inner function does. The inner jit is inlined, so the compiled program is
  the train step itself, compiled once for both timing and cost analysis.
  """
  compiled = jax.jit(train_step, donate_argnums=(0,)).lower(state, images, labels, key).compile()
  costs = compiled.cost_analysis()
  flops = {name: float(costs.get(name, 0.0)) for name in ("flops", "transcendentals")}
  return compiled, flops


def compile_regularizer(config, features_shape, num_layers, key):
  """Compile the regulariser alone, forward and backward, over all layers' features.

  Returns:
    (zero-argument callable that runs it and waits, XLA cost analysis).
  """
  regularizer, kwargs = loss_lib.make_regularizer(config)

  def mean_regularizer(features):
    return loss_lib.regularizer_per_layer(regularizer, key, features, **kwargs).mean()

  rng = np.random.default_rng(1)
  features = [jnp.asarray(rng.standard_normal(features_shape, dtype=np.float32))
              for _ in range(num_layers)]
  compiled = jax.jit(jax.value_and_grad(mean_regularizer)).lower(features).compile()
  costs = compiled.cost_analysis()
  flops = {name: float(costs.get(name, 0.0)) for name in ("flops", "transcendentals")}
  return (lambda: jax.block_until_ready(compiled(features))), flops


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--quick", action="store_true",
                      help="use a 2-block, width-64 ViT at batch 32 with few repeats")
  parser.add_argument("--batch-size", type=int, default=None,
                      help="images per step (default 128, or 32 with --quick)")
  parser.add_argument("--budget", type=float, default=None,
                      help="target seconds of timed rounds (default 120, or 5 with --quick)")
  parser.add_argument("--min-repeats", type=int, default=None,
                      help="fewest timed steps per arm (default 10, or 3 with --quick)")
  parser.add_argument("--width", type=int, default=None, help="override the ViT width")
  parser.add_argument("--depth", type=int, default=None, help="override the number of blocks")
  parser.add_argument("--light-augment", action="store_true",
                      help="crop and flip only (no RandAugment, MixUp or CutMix); compiles faster")
  parser.add_argument("--json", default=None, help="also write the results to this JSON file")
  return parser.parse_args(argv)


def main(argv=None):
  args = parse_args(argv)
  logging.basicConfig(level=logging.INFO, format="%(message)s", force=True)

  batch_size = args.batch_size or (32 if args.quick else 128)
  budget_s = args.budget or (5.0 if args.quick else 120.0)
  min_repeats = args.min_repeats or (3 if args.quick else 10)

  model_overrides = dict(QUICK_MODEL) if args.quick else {}
  if args.width is not None:
    model_overrides.update(width=args.width, num_heads=4, mlp_dim=2 * args.width)
  if args.depth is not None:
    model_overrides.update(depth=args.depth)

  machine = timing.machine_description()
  logging.info("machine: %s", machine)

  mesh = parallel.make_data_mesh(jax.devices()[:1])
  rng = np.random.default_rng(0)
  images_host = rng.integers(0, 256, (batch_size, *IMAGE_SHAPE), dtype=np.uint8)
  labels_host = rng.integers(0, NUM_CLASSES, (batch_size,), dtype=np.int32)
  key = jax.random.key(0)

  results = dict(machine=machine, batch_size=batch_size, model_overrides=model_overrides,
                 light_augment=args.light_augment, arms={})
  contenders = {}
  with jax.set_mesh(mesh):
    images, labels = parallel.shard_batch(mesh, (images_host, labels_host))

    for regularizer in REGULARIZERS:
      config = make_config(regularizer, batch_size=batch_size, model_overrides=model_overrides,
                           light_augment=args.light_augment)
      train_step, state = build_step(config, mesh)
      compiled_step, flops = compile_step(train_step, state, images, labels, key)
      arm = dict(step_flops=flops)
      if regularizer != "none":
        run_regularizer, arm["regularizer_flops"] = compile_regularizer(
            config, (batch_size, config.model.width), config.model.depth, key)
        contenders[f"{regularizer}_alone"] = run_regularizer
      results["arms"][regularizer] = arm

      # The step donates its state, so each call hands the new state to the next.
      holder = {"state": state}

      def run_step(compiled_step=compiled_step, holder=holder):
        holder["state"], metrics = compiled_step(holder["state"], images, labels, key)
        jax.block_until_ready(metrics)

      contenders[regularizer] = run_step

    augment_config = config.augment
    augment_only = jax.jit(lambda key, images, labels: augment.augment_batch(
        key, images, labels, num_classes=NUM_CLASSES, config=augment_config,
        mean=CIFAR100_MEAN, std=CIFAR100_STD))
    contenders["augment"] = lambda: jax.block_until_ready(augment_only(key, images, labels))

    samples = {}
    medians = timing.time_interleaved(contenders, budget_s=budget_s, min_repeats=min_repeats,
                                      max_repeats=max(min_repeats, 200), samples_out=samples)
  results["medians"] = medians
  results["rounds"] = len(samples["none"])

  baseline = medians["none"]
  baseline_flops = results["arms"]["none"]["step_flops"]["flops"]
  model_name = f"ViT with overrides {model_overrides}" if model_overrides else "collapse-setting ViT"
  print(f"\nTrain step, batch {batch_size}, {model_name} (median)")
  print(f"{results['rounds']} interleaved rounds")
  print("| regulariser | step | overhead (medians) | overhead (paired rounds) | images/s "
        "| regulariser alone | alone / step | step GFLOP "
        "| regulariser GFLOP (fwd+bwd, all layers) | regulariser / step FLOPs |")
  print("|---|---|---|---|---|---|---|---|---|---|")
  for regularizer in REGULARIZERS:
    arm = results["arms"][regularizer]
    step_time = medians[regularizer]
    overhead = step_time / baseline - 1.0
    # Steps of the same round ran back to back, so their ratio cancels slow
    # drifts in machine load that the ratio of two medians keeps.
    paired_overhead = statistics.median(
        arm_seconds / none_seconds - 1.0
        for arm_seconds, none_seconds in zip(samples[regularizer], samples["none"]))
    arm["paired_overhead"] = paired_overhead
    arm.update(step_seconds=step_time, overhead=overhead, images_per_second=batch_size / step_time)
    regularizer_cost = arm.get("regularizer_flops", {}).get("flops", 0.0)
    alone_time = medians.get(f"{regularizer}_alone", 0.0)
    arm.update(regularizer_alone_seconds=alone_time, alone_fraction=alone_time / baseline)
    print(f"| {regularizer} | {timing.format_seconds(step_time)} | {overhead:+.1%} "
          f"| {paired_overhead:+.1%} "
          f"| {batch_size / step_time:.1f} | {timing.format_seconds(alone_time)} "
          f"| {alone_time / baseline:.2%} | {arm['step_flops']['flops'] / 1e9:.2f} "
          f"| {regularizer_cost / 1e9:.4f} | {regularizer_cost / baseline_flops:.2%} |")

  augment_rate = batch_size / medians["augment"]
  results["augment_images_per_second"] = augment_rate
  print(f"\naugment_batch alone: {timing.format_seconds(medians['augment'])} per batch, "
        f"{augment_rate:.0f} images/s; the unregularised step consumes "
        f"{batch_size / baseline:.1f} images/s ({augment_rate * baseline / batch_size:.0f}x headroom)")

  if args.json:
    with open(args.json, "w") as output:
      json.dump(results, output, indent=1)
  return results


if __name__ == "__main__":
  main()
