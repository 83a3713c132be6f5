"""Tests for the data mesh, batch sharding and replication."""

import jax
import numpy as np
import pytest
from jax.sharding import AxisType

from sigreg_jax import parallel


def _devices(count):
  if jax.device_count() < count:
    pytest.skip(f"needs {count} devices, found {jax.device_count()}")
  return jax.devices()[:count]


def test_make_data_mesh_axis():
  mesh = parallel.make_data_mesh(_devices(2))
  assert mesh.axis_names == ("data",)
  assert mesh.devices.shape == (2,)
  assert mesh.axis_types == (AxisType.Auto,)


def test_make_data_mesh_all_devices():
  mesh = parallel.make_data_mesh()
  assert mesh.devices.size == jax.device_count()


def test_make_data_mesh_rejects_empty():
  with pytest.raises(ValueError, match="devices is empty"):
    parallel.make_data_mesh([])


def test_check_global_batch_size_indivisible():
  mesh = parallel.make_data_mesh(_devices(4))
  with pytest.raises(ValueError, match="not divisible by the 4 devices"):
    parallel.check_global_batch_size(10, mesh)


def test_check_global_batch_size_nonpositive():
  mesh = parallel.make_data_mesh(_devices(1))
  with pytest.raises(ValueError, match="must be positive"):
    parallel.check_global_batch_size(0, mesh)


def test_shard_batch_splits_rows():
  mesh = parallel.make_data_mesh(_devices(4))
  images = np.arange(8 * 3, dtype=np.float32).reshape(8, 3)
  labels = np.arange(8, dtype=np.int32)

  batch = parallel.shard_batch(mesh, {"images": images, "labels": labels})

  assert batch["images"].shape == (8, 3)
  np.testing.assert_array_equal(np.asarray(batch["images"]), images)
  np.testing.assert_array_equal(np.asarray(batch["labels"]), labels)
  shard_shapes = {shard.data.shape for shard in batch["images"].addressable_shards}
  assert shard_shapes == {(2, 3)}


def test_shard_batch_rejects_indivisible():
  mesh = parallel.make_data_mesh(_devices(4))
  with pytest.raises(ValueError, match="not divisible"):
    parallel.shard_batch(mesh, np.zeros((6, 2), np.float32))


def test_replicate_full_copies():
  mesh = parallel.make_data_mesh(_devices(2))
  tree = {"w": np.ones((3, 2), np.float32)}

  replicated = parallel.replicate(mesh, tree)

  assert replicated["w"].sharding.is_fully_replicated
  assert len(replicated["w"].addressable_shards) == 2

