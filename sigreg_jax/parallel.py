"""Data parallelism: a 1-D device mesh, batch sharding and replication.

The batch is split over a mesh axis named ``"data"`` of type ``Auto``, so plain
``jnp`` code inside ``jax.jit`` computes statistics of the global batch and the
gradient of the global-batch loss. Parameters are replicated on every device.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def make_data_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
  """Builds a 1-D mesh with one ``Auto`` axis named ``"data"``.

  Args:
    devices: the devices to use, in mesh order; all devices of every process
      (``jax.devices()``) when None. Pass an explicit subset to run on fewer
      devices, for example ``jax.devices()[:1]`` for a single-device run.

  Returns:
    A ``Mesh`` of shape ``(len(devices),)`` whose only axis is ``"data"``.

  Example:
    >>> mesh = make_data_mesh(jax.devices()[:1])
    >>> mesh.axis_names
    ('data',)
  """
  if devices is None:
    devices = jax.devices()
  devices = list(devices)
  if not devices:
    raise ValueError("devices is empty; pass at least one device or None for all devices")
  return jax.make_mesh(
      (len(devices),),
      (DATA_AXIS,),
      axis_types=(AxisType.Auto,),
      devices=devices,
  )


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Returns the sharding that splits the leading (batch) axis over ``"data"``."""
  return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicated_sharding(mesh: Mesh) -> NamedSharding:
  """Returns the sharding that keeps a full copy on every device of ``mesh``."""
  return NamedSharding(mesh, PartitionSpec())


def num_processes_in_mesh(mesh: Mesh) -> int:
  """Counts the processes that own at least one device of ``mesh``."""
  return len({device.process_index for device in mesh.devices.flat})


def check_global_batch_size(global_batch_size: int, mesh: Mesh) -> None:
  """Checks that the global batch splits evenly over devices and processes.

  Args:
    global_batch_size: examples per training step summed over all devices.
    mesh: the data mesh the batch is sharded over.

  Raises:
    ValueError: if ``global_batch_size`` is not positive or not divisible by
      the number of devices or processes in ``mesh``.
  """
  num_devices = mesh.devices.size
  num_processes = num_processes_in_mesh(mesh)
  if global_batch_size <= 0:
    raise ValueError(f"global batch size must be positive, got {global_batch_size}")
  if global_batch_size % num_devices:
    raise ValueError(
        f"global batch size {global_batch_size} is not divisible by the "
        f"{num_devices} devices of the data mesh; use a multiple of {num_devices} "
        "or run on fewer devices"
    )
  if global_batch_size % num_processes:
    raise ValueError(
        f"global batch size {global_batch_size} is not divisible by the "
        f"{num_processes} processes; use a multiple of {num_processes}"
    )


def shard_batch(mesh: Mesh, batch: Any) -> Any:
  """Assembles global arrays sharded over ``"data"`` from process-local data.

  Args:
    mesh: the data mesh.
    batch: a pytree of numpy arrays holding this process's rows of the global
      batch (all rows on a single-process run); every leaf has the same
      leading size.

  Returns:
    The same pytree of ``jax.Array``s whose leading axis is the global batch,
    sharded over ``"data"``.

  Raises:
    ValueError: if the global batch size is not divisible by the number of
      devices or processes.

  Example:
    >>> mesh = make_data_mesh(jax.devices()[:1])
    >>> batch = shard_batch(mesh, {"x": np.zeros((4, 3), np.float32)})
    >>> batch["x"].shape
    (4, 3)
  """
  sharding = batch_sharding(mesh)
  num_processes = num_processes_in_mesh(mesh)

  def to_global(local: np.ndarray) -> jax.Array:
    local = np.asarray(local)
    global_shape = (local.shape[0] * num_processes,) + local.shape[1:]
    check_global_batch_size(global_shape[0], mesh)
    return jax.make_array_from_process_local_data(sharding, local, global_shape)

  return jax.tree.map(to_global, batch)


def replicate(mesh: Mesh, tree: Any) -> Any:
  """Places a full copy of every leaf of ``tree`` on each device of ``mesh``.

  Every process must pass the same values. The copy goes through ``jax.jit``
  because ``jax.device_put`` rejects typed PRNG keys for a sharding with
  devices of other processes (jax 0.10.2).
  """
  return jax.jit(lambda leaves: leaves, out_shardings=replicated_sharding(mesh))(tree)
