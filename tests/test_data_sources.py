"""Tests of the data sources on tiny data sets written to tmp_path."""

import os
import pathlib
import pickle
import time

import numpy as np
import pytest

from sigreg_jax.data import sources
from sigreg_jax.data.sources import load_dataset

import data_fixtures

SHARED_CIFAR10_JPEG = pathlib.Path(__file__).resolve().parents[2] / "shared/data/cifar10-jpeg.tar.gz"


def _sorted_examples(images, labels):
  """Return the (image bytes, label) pairs in a canonical order."""
  return sorted((image.tobytes(), int(label)) for image, label in zip(images, labels))


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
@pytest.mark.parametrize("as_archive", [False, True])
def test_cifar_python_matches_written_arrays(tmp_path, name, as_archive):
  written = data_fixtures.write_cifar_python(tmp_path, name, as_archive=as_archive)

  dataset = load_dataset(name, source="cifar_python", data_dir=tmp_path)

  np.testing.assert_array_equal(dataset.train_images, written["train"][0])
  np.testing.assert_array_equal(dataset.train_labels, written["train"][1])
  np.testing.assert_array_equal(dataset.test_images, written["test"][0])
  np.testing.assert_array_equal(dataset.test_labels, written["test"][1])
  assert dataset.train_images.dtype == np.uint8
  assert dataset.train_labels.dtype == np.int32
  assert dataset.class_names == tuple(written["class_names"])
  assert dataset.num_classes == len(written["class_names"])
  assert dataset.name == name
  assert dataset.validation_images.shape == (0, 32, 32, 3)
  assert dataset.validation_labels.shape == (0,)


def test_cifar_python_accepts_folder_itself(tmp_path):
  data_fixtures.write_cifar_python(tmp_path, "cifar100")

  dataset = load_dataset("cifar100", source="cifar_python", data_dir=tmp_path / "cifar-100-python")

  assert dataset.train_images.shape == (20, 32, 32, 3)


def test_cifar100_statistics_are_standard(tmp_path):
  data_fixtures.write_cifar_python(tmp_path, "cifar100")

  dataset = load_dataset("cifar100", source="cifar_python", data_dir=tmp_path)

  assert dataset.mean == (0.5071, 0.4865, 0.4409)
  assert dataset.std == (0.2673, 0.2564, 0.2762)


def test_cifar_python_missing_files_names_path(tmp_path):
  with pytest.raises(FileNotFoundError, match="cifar-100-python"):
    load_dataset("cifar100", source="cifar_python", data_dir=tmp_path)


def test_cifar_python_missing_batch_names_file(tmp_path):
  data_fixtures.write_cifar_python(tmp_path, "cifar10")
  os.remove(tmp_path / "cifar-10-batches-py" / "data_batch_3")

  with pytest.raises(FileNotFoundError, match="data_batch_3"):
    load_dataset("cifar10", source="cifar_python", data_dir=tmp_path)


def test_cifar_python_malformed_batch_raises(tmp_path):
  data_fixtures.write_cifar_python(tmp_path, "cifar100")
  (tmp_path / "cifar-100-python" / "train").write_bytes(pickle.dumps({b"wrong": 1}))

  with pytest.raises(ValueError, match="Malformed CIFAR"):
    load_dataset("cifar100", source="cifar_python", data_dir=tmp_path)


def test_missing_data_dir_names_path(tmp_path):
  missing = tmp_path / "nowhere"

  with pytest.raises(FileNotFoundError, match="nowhere"):
    load_dataset("cifar10", source="image_folder", data_dir=missing)


def test_local_source_without_data_dir_raises():
  with pytest.raises(ValueError, match="needs data_dir"):
    load_dataset("cifar10", source="image_folder")


@pytest.mark.parametrize("as_archive", [False, True])
def test_image_folder_matches_written_arrays(tmp_path, as_archive):
  written = data_fixtures.write_image_folder(tmp_path, as_archive=as_archive)

  dataset = load_dataset("cifar10", source="image_folder", data_dir=written["path"])

  assert dataset.class_names == ("cat", "dog", "frog")
  for split in ("train", "test"):
    loaded = (getattr(dataset, f"{split}_images"), getattr(dataset, f"{split}_labels"))
    assert _sorted_examples(*loaded) == _sorted_examples(*written[split])


def test_image_folder_finds_single_subfolder(tmp_path):
  written = data_fixtures.write_image_folder(tmp_path)

  dataset = load_dataset("cifar10", source="image_folder", data_dir=written["path"].parent)

  assert len(dataset.train_labels) == 12


def test_image_folder_grayscale(tmp_path):
  written = data_fixtures.write_image_folder(
      tmp_path, shape=(28, 28, 1), top_folder="fashion_mnist", as_archive=True
  )

  dataset = load_dataset("fashion_mnist", source="image_folder", data_dir=written["path"])

  assert dataset.train_images.shape == (12, 28, 28, 1)
  assert dataset.mean == (0.2860,)


def test_image_folder_wrong_image_size_raises(tmp_path):
  written = data_fixtures.write_image_folder(tmp_path, shape=(16, 16, 3))

  with pytest.raises(ValueError, match="expected uint8"):
    load_dataset("cifar10", source="image_folder", data_dir=written["path"])


def test_image_folder_without_test_split_raises(tmp_path):
  (tmp_path / "train" / "cat").mkdir(parents=True)

  with pytest.raises(FileNotFoundError, match="train/<class>"):
    load_dataset("cifar10", source="image_folder", data_dir=tmp_path)


def test_image_folder_corrupt_image_names_file(tmp_path):
  written = data_fixtures.write_image_folder(tmp_path)
  (written["path"] / "train" / "cat" / "0000.png").write_bytes(b"not an image")

  with pytest.raises(ValueError, match="0000.png"):
    load_dataset("cifar10", source="image_folder", data_dir=written["path"])


def test_auto_source_detects_layouts(tmp_path):
  (tmp_path / "python").mkdir()
  (tmp_path / "folder").mkdir()
  data_fixtures.write_cifar_python(tmp_path / "python", "cifar10", as_archive=True)
  written = data_fixtures.write_image_folder(tmp_path / "folder", as_archive=True)

  from_python = load_dataset("cifar10", source="auto", data_dir=tmp_path / "python")
  from_folder = load_dataset("cifar10", source="auto", data_dir=written["path"])

  assert from_python.class_names[0] == "class_000"
  assert from_folder.class_names == ("cat", "dog", "frog")


def test_validation_split_is_held_out(tmp_path):
  data_fixtures.write_cifar_python(tmp_path, "cifar10", num_train=40)
  full = load_dataset("cifar10", source="cifar_python", data_dir=tmp_path)

  split = load_dataset(
      "cifar10", source="cifar_python", data_dir=tmp_path, validation_fraction=0.25, seed=3
  )
  again = load_dataset(
      "cifar10", source="cifar_python", data_dir=tmp_path, validation_fraction=0.25, seed=3
  )
  other_seed = load_dataset(
      "cifar10", source="cifar_python", data_dir=tmp_path, validation_fraction=0.25, seed=4
  )

  assert len(split.validation_labels) == 10
  assert len(split.train_labels) == 30
  combined = np.concatenate([split.train_images, split.validation_images])
  # Every training image lands in exactly one of the two splits (images are random, so unique).
  full_rows = {image.tobytes() for image in full.train_images}
  assert {image.tobytes() for image in combined} == full_rows
  assert len(combined) == len(full_rows)
  np.testing.assert_array_equal(split.validation_images, again.validation_images)
  assert not np.array_equal(split.validation_images, other_seed.validation_images)


def test_max_examples_take_subsets(tmp_path):
  data_fixtures.write_cifar_python(tmp_path, "cifar10", num_train=40, num_test=10)
  full = load_dataset("cifar10", source="cifar_python", data_dir=tmp_path)

  subset = load_dataset(
      "cifar10", source="cifar_python", data_dir=tmp_path, max_train_examples=7,
      max_test_examples=4,
  )

  assert len(subset.train_labels) == 7
  full_rows = {image.tobytes() for image in full.train_images}
  assert {image.tobytes() for image in subset.train_images} <= full_rows
  np.testing.assert_array_equal(subset.test_images, full.test_images[:4])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(validation_fraction=1.0), "validation_fraction"),
        (dict(max_train_examples=0), "max_train_examples"),
        (dict(source="hdf5"), "Unknown data source"),
    ],
)
def test_invalid_arguments_raise(tmp_path, kwargs, message):
  with pytest.raises(ValueError, match=message):
    load_dataset("cifar10", data_dir=tmp_path, **{"source": "cifar_python", **kwargs})


def test_unknown_dataset_raises():
  with pytest.raises(ValueError, match="Unknown data set 'imagenet'"):
    load_dataset("imagenet")


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "fashion_mnist"])
def test_tfds_reads_prepared_array_record(tmp_path, name):
  written = data_fixtures.write_tfds_dataset(tmp_path, name)

  dataset = load_dataset(name, source="tfds", data_dir=tmp_path)

  # tfds stores examples in an order of its own, so compare (image, label) pairs.
  assert _sorted_examples(dataset.train_images, dataset.train_labels) == _sorted_examples(
      *written["train"]
  )
  assert _sorted_examples(dataset.test_images, dataset.test_labels) == _sorted_examples(
      *written["test"]
  )
  assert dataset.train_images.shape[1:] == written["train"][0].shape[1:]
  assert dataset.class_names == tuple(written["class_names"])


def test_tfds_failed_download_explains_local_sources(tmp_path, monkeypatch):
  import tensorflow_datasets as tfds

  def offline_data_source(*args, **kwargs):
    raise ConnectionError("Failed to resolve 'www.cs.toronto.edu'")

  monkeypatch.setattr(tfds, "data_source", offline_data_source)
  monkeypatch.setattr(sources, "_tensorflow_installed", lambda: True)

  with pytest.raises(RuntimeError) as error:
    load_dataset("cifar100", source="tfds", data_dir=tmp_path)

  message = str(error.value)
  assert "could not download and prepare 'cifar100'" in message
  assert "source='cifar_python'" in message
  assert "cifar-100-python.tar.gz" in message
  assert "source='image_folder'" in message
  assert "www.cs.toronto.edu" in message


def _serve_cifar_archive(tmp_path, monkeypatch, name="cifar100", md5=None):
  """Write a fixture archive and point the no-TensorFlow download at it."""
  served = tmp_path / "served"
  served.mkdir()
  written = data_fixtures.write_cifar_python(served, name, as_archive=True)
  archive = next(served.glob("*.tar.gz"))
  monkeypatch.setattr(sources, "_tensorflow_installed", lambda: False)
  monkeypatch.setitem(
      sources.CIFAR_PYTHON_ARCHIVES, name, (archive.as_uri(), md5 or sources._md5(archive))
  )
  return written, archive


def test_tfds_without_tensorflow_downloads_cifar_archive(tmp_path, monkeypatch):
  written, archive = _serve_cifar_archive(tmp_path, monkeypatch)
  data_dir = tmp_path / "tfds"

  dataset = load_dataset("cifar100", source="tfds", data_dir=data_dir)
  archive.unlink()  # A second load must reuse the downloaded copy.
  again = load_dataset("cifar100", source="tfds", data_dir=data_dir)

  assert (data_dir / "downloads" / "cifar-100-python.tar.gz").is_file()
  np.testing.assert_array_equal(dataset.train_images, written["train"][0])
  np.testing.assert_array_equal(again.test_labels, written["test"][1])


def test_tfds_without_tensorflow_checks_md5(tmp_path, monkeypatch):
  _serve_cifar_archive(tmp_path, monkeypatch, md5="0" * 32)

  with pytest.raises(RuntimeError, match="expected 0000"):
    load_dataset("cifar100", source="tfds", data_dir=tmp_path / "tfds")


def test_tfds_without_tensorflow_fashion_mnist_raises(tmp_path, monkeypatch):
  monkeypatch.setattr(sources, "_tensorflow_installed", lambda: False)

  with pytest.raises(RuntimeError, match="needs TensorFlow to prepare 'fashion_mnist'"):
    load_dataset("fashion_mnist", source="tfds", data_dir=tmp_path)


def test_auto_without_local_files_uses_tfds(tmp_path):
  data_fixtures.write_tfds_dataset(tmp_path, "cifar10")

  dataset = load_dataset("cifar10", source="auto", data_dir=tmp_path)

  assert len(dataset.train_labels) == 12


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_CIFAR10_JPEG.is_file(), reason="shared CIFAR-10 JPEG archive absent")
def test_shared_cifar10_jpeg_archive_loads():
  start = time.perf_counter()
  dataset = load_dataset("cifar10", source="image_folder", data_dir=SHARED_CIFAR10_JPEG)
  seconds = time.perf_counter() - start

  assert dataset.train_images.shape == (50_000, 32, 32, 3)
  assert dataset.test_images.shape == (10_000, 32, 32, 3)
  assert np.bincount(dataset.train_labels).tolist() == [5000] * 10
  assert dataset.class_names[0] == "airplane"
  print(f"loaded {SHARED_CIFAR10_JPEG} in {seconds:.1f} s")


def test_metadata_covers_supported_names():
  assert set(sources.METADATA) == {"cifar10", "cifar100", "fashion_mnist"}
