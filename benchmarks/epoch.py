"""Time one CIFAR-100 epoch of the collapse-setting ViT with the real trainer.

Runs `sigreg_jax.training.loop.train_and_evaluate` for one epoch per
regulariser arm (none, weak, strong). The data set has CIFAR-100's shapes:
50,000 training and 10,000 test images of 32 x 32 x 3 in 100 classes. At
batch 128, as in the CIFAR-100 runs of Akbar, 2026, "Weak-SIGReg: Covariance
Regularization for Stable Deep Learning" (arXiv 2603.05924), an epoch is 390
steps and one evaluation. The images are uniform random uint8 values. The
step does the same work for any pixel values, so the time is that of
CIFAR-100 without a download, which matters on machines without internet
access.

For each arm it reports:

- the wall time of the whole epoch, compilation, evaluation and checkpoint
  included;
- the steady images per second of the training steps, the median over the
  trainer's logging intervals after the first (which includes compilation);
- the epoch time at that speed (50,000 images / images per second), the
  figure to compare across machines.

Run `python -m benchmarks.epoch` (meant for a GPU; hours on a 2-core CPU) or
`python -m benchmarks.epoch --quick` for a small ViT on 1,024 images.
"""

import argparse
import json
import logging
import os
import statistics
import tempfile
import time

import jax
import numpy as np

from benchmarks import timing
from benchmarks import train_step
from sigreg_jax.data import sources
from sigreg_jax.training import loop

REGULARIZERS = train_step.REGULARIZERS
CIFAR100 = sources.METADATA["cifar100"]


def random_cifar100(num_train: int, num_test: int, seed: int = 0) -> sources.Dataset:
  """Return a data set with CIFAR-100's shapes, classes and statistics, of random pixels."""
  rng = np.random.default_rng(seed)
  shape = CIFAR100.image_shape
  return sources.Dataset(
      train_images=rng.integers(0, 256, (num_train, *shape), dtype=np.uint8),
      train_labels=rng.integers(0, CIFAR100.num_classes, num_train, dtype=np.int32),
      test_images=rng.integers(0, 256, (num_test, *shape), dtype=np.uint8),
      test_labels=rng.integers(0, CIFAR100.num_classes, num_test, dtype=np.int32),
      num_classes=CIFAR100.num_classes,
      class_names=tuple(f"class_{index}" for index in range(CIFAR100.num_classes)),
      mean=CIFAR100.mean,
      std=CIFAR100.std,
      name="cifar100",
  )


def make_config(regularizer: str, *, batch_size: int, model_overrides: dict,
                log_every_steps: int):
  """Return a one-epoch run config of the collapse-setting ViT, every augmentation on."""
  config = train_step.make_config(regularizer, batch_size=batch_size,
                                  model_overrides=model_overrides, light_augment=False)
  config.num_epochs = 1
  config.log_every_steps = log_every_steps
  config.progress_bar = False
  return config


def time_epoch(config, dataset: sources.Dataset) -> dict:
  """Train one epoch in a fresh workdir; return the wall time and the steady speed."""
  with tempfile.TemporaryDirectory() as workdir:
    start = time.perf_counter()
    summary = loop.train_and_evaluate(config, workdir, dataset=dataset)
    wall_s = time.perf_counter() - start
    with open(os.path.join(workdir, "metrics.jsonl")) as metrics_file:
      records = [json.loads(line) for line in metrics_file]

  speeds = [record["images_per_second"] for record in records
            if record.get("kind") == "train" and "images_per_second" in record]
  # The first interval includes compilation.
  steady = speeds[1:] or speeds
  images_per_second = statistics.median(steady)
  num_train = len(dataset.train_labels)
  return dict(
      wall_s=wall_s,
      images_per_second=images_per_second,
      steady_epoch_s=num_train / images_per_second,
      num_intervals=len(steady),
      steps=summary["step"],
      final_train_loss=summary.get("final_train_loss"),
  )


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--quick", action="store_true",
                      help="a 2-block ViT on 1,024 training and 256 test images, batch 32")
  parser.add_argument("--regularizers", nargs="+", choices=REGULARIZERS,
                      default=list(REGULARIZERS), help="arms to time (default: all three)")
  parser.add_argument("--json", default=None, help="also write the results to this JSON file")
  return parser.parse_args(argv)


def main(argv=None):
  args = parse_args(argv)
  logging.basicConfig(level=logging.INFO, format="%(message)s", force=True)

  if args.quick:
    dataset = random_cifar100(1024, 256)
    batch_size, model_overrides, log_every_steps = 32, train_step.QUICK_MODEL, 8
  else:
    dataset = random_cifar100(50_000, 10_000)
    batch_size, model_overrides, log_every_steps = 128, {}, 30

  machine = timing.machine_description()
  machine["devices"] = [str(device) for device in jax.devices()]
  logging.info("machine: %s", machine)

  results = {"machine": machine, "batch_size": batch_size,
             "num_train": len(dataset.train_labels), "arms": {}}
  for regularizer in args.regularizers:
    config = make_config(regularizer, batch_size=batch_size,
                         model_overrides=model_overrides, log_every_steps=log_every_steps)
    results["arms"][regularizer] = time_epoch(config, dataset)
    logging.info("%s: %s", regularizer, results["arms"][regularizer])

  print(f"\nOne epoch of {results['num_train']} images, batch {batch_size}, "
        f"on {machine['devices'][0]} ({len(machine['devices'])} devices)")
  print("| regulariser | images/s (steady) | epoch at that speed | wall time, compile and eval "
        "included |\n|---|---|---|---|")
  for regularizer, arm in results["arms"].items():
    print(f"| {regularizer} | {arm['images_per_second']:.0f} | "
          f"{timing.format_seconds(arm['steady_epoch_s'])} | "
          f"{timing.format_seconds(arm['wall_s'])} |")

  if args.json:
    with open(args.json, "w") as json_file:
      json.dump(results, json_file, indent=2)


if __name__ == "__main__":
  main()
