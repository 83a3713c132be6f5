"""One process of a multi-process CPU training run, launched by test_multihost.py.

Each process sets its number of virtual CPU devices, joins the others through
``initialize_distributed`` and trains a small MLP with Weak-SIGReg on a
synthetic data set that every process builds identically from a fixed seed.
With ``--num_processes=1`` it is the single-process reference run. Without
the three start-up flags, ``initialize_distributed`` reads ``JAX_NUM_PROCESSES``,
``JAX_PROCESS_ID`` and ``JAX_COORDINATOR_ADDRESS``.

    python tests/multihost_worker.py --workdir=/tmp/run --num_processes=2 \
        --process_id=0 --coordinator_address=127.0.0.1:12345 --local_devices=2
"""

from __future__ import annotations

import argparse
import logging
import os
import sys


def parse_args(argv: list[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True, help="run directory, shared by all processes")
  parser.add_argument("--num_processes", type=int, default=None, help="processes in the run")
  parser.add_argument("--process_id", type=int, default=None, help="this process's id, from 0")
  parser.add_argument("--coordinator_address", default=None, help="host:port of process 0")
  parser.add_argument("--local_devices", type=int, default=2,
                      help="virtual CPU devices in this process")
  parser.add_argument("--max_steps", type=int, default=4, help="stop after this many steps")
  parser.add_argument("--checkpoint_every_steps", type=int, default=2,
                      help="save a checkpoint at multiples of this step")
  parser.add_argument("--initialization_timeout", type=int, default=60,
                      help="seconds to wait for every process to connect")
  parser.add_argument("--heartbeat_timeout", type=int, default=10,
                      help="seconds without a heartbeat after which a peer counts as dead")
  parser.add_argument("--connect_only", action="store_true",
                      help="stop after connecting, before training")
  return parser.parse_args(argv)


def synthetic_dataset(num_classes: int = 4):
  """Builds 64 training and 16 test 4x4 RGB images with class-dependent means."""
  import numpy as np

  from sigreg_jax.data import sources

  rng = np.random.default_rng(1234)

  def make(count: int):
    labels = rng.integers(0, num_classes, size=count).astype(np.int32)
    centres = np.linspace(40, 215, num_classes)[labels]
    images = centres[:, None, None, None] + rng.normal(0, 30, size=(count, 4, 4, 3))
    return np.clip(images, 0, 255).astype(np.uint8), labels

  train_images, train_labels = make(64)
  test_images, test_labels = make(16)
  empty_images = np.zeros((0, 4, 4, 3), np.uint8)
  return sources.Dataset(
      train_images=train_images,
      train_labels=train_labels,
      test_images=test_images,
      test_labels=test_labels,
      num_classes=num_classes,
      class_names=tuple(f"class_{i}" for i in range(num_classes)),
      mean=(0.5, 0.5, 0.5),
      std=(0.25, 0.25, 0.25),
      name="synthetic",
      validation_images=empty_images,
      validation_labels=np.zeros((0,), np.int32),
  )


def make_config(args: argparse.Namespace):
  import ml_collections

  from sigreg_jax.training import config as config_lib

  config = config_lib.default_config()
  config.dataset = "synthetic"
  config.model = ml_collections.ConfigDict(dict(name="mlp", hidden_widths=(16, 16)))
  config.regularizer = "weak"
  config.weak.num_sketches = 8
  config.optimizer.name = "sgd"
  config.optimizer.learning_rate = 0.05
  config.optimizer.momentum = 0.9
  config.optimizer.schedule = "constant"
  config.augment.randaugment = False
  config.augment.mix = False
  config.augment.crop_padding = 1
  config.batch_size = 8
  config.num_epochs = 100
  config.max_steps = args.max_steps
  config.log_every_steps = 1
  config.eval_every_epochs = 100
  config.checkpoint_every_steps = args.checkpoint_every_steps
  config.keep_checkpoints = 10
  config.progress_bar = False
  return config


def check_interleaved_batch_rows() -> None:
  """Checks ``process_batch_rows`` on a mesh that alternates between processes.

  Topology-aware TPU meshes can interleave processes along the batch axis;
  here the mesh takes one device of each process in turn.
  """
  import jax
  import numpy as np
  from jax.sharding import NamedSharding, PartitionSpec

  from sigreg_jax import distributed

  by_process = [jax.local_devices(process_index=p) for p in range(jax.process_count())]
  devices = [device for group in zip(*by_process) for device in group]
  mesh = jax.make_mesh((len(devices),), ("data",), devices=devices,
                       axis_types=(jax.sharding.AxisType.Auto,))
  global_batch = np.arange(2 * len(devices) * 3, dtype=np.float32).reshape(-1, 3)
  rows = distributed.process_batch_rows(len(global_batch), mesh)
  sharded = jax.make_array_from_process_local_data(
      NamedSharding(mesh, PartitionSpec("data")), global_batch[rows], global_batch.shape)
  gathered = jax.jit(lambda x: x, out_shardings=NamedSharding(mesh, PartitionSpec()))(sharded)
  np.testing.assert_array_equal(np.asarray(gathered.addressable_data(0)), global_batch)
  print(f"batch rows {rows.tolist()} assemble the global batch", flush=True)


def main(argv: list[str]) -> int:
  args = parse_args(argv)
  logging.basicConfig(
      level=logging.INFO, stream=sys.stderr,
      format=f"[process {os.environ.get('JAX_PROCESS_ID', args.process_id)}] "
      "%(asctime)s %(name)s: %(message)s")
  # Orbax logs every checkpoint step through absl at INFO.
  logging.getLogger("absl").setLevel(logging.WARNING)

  import jax

  # Both must precede the first JAX computation.
  jax.config.update("jax_platforms", "cpu")
  jax.config.update("jax_num_cpu_devices", args.local_devices)

  from sigreg_jax import distributed

  distributed.initialize_distributed(
      args.coordinator_address,
      num_processes=args.num_processes,
      process_id=args.process_id,
      initialization_timeout=args.initialization_timeout,
      heartbeat_timeout=args.heartbeat_timeout,
      shutdown_timeout=30,
  )
  print(f"connected: process {jax.process_index()} of {jax.process_count()}, "
        f"{jax.device_count()} devices", flush=True)
  check_interleaved_batch_rows()
  if args.connect_only:
    return 0

  from sigreg_jax.training import loop

  summary = loop.train_and_evaluate(make_config(args), args.workdir, dataset=synthetic_dataset())
  print(f"finished: process {jax.process_index()} at step {summary['step']}", flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
