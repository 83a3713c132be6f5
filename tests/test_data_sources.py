"""Tests of the data sources on tiny data sets written to tmp_path."""

import gzip
import os
import pathlib
import pickle
import time

import numpy as np
import pytest

from sigreg_jax.data import idx
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


def test_cifar10_archive_named_after_folder_loads(tmp_path):
  data_fixtures.write_cifar_python(tmp_path, "cifar10", as_archive=True)
  (tmp_path / "cifar-10-python.tar.gz").rename(tmp_path / "cifar-10-batches-py.tar.gz")

  dataset = load_dataset("cifar10", source="cifar_python", data_dir=tmp_path)
  detected = load_dataset("cifar10", source="auto", data_dir=tmp_path)

  assert dataset.train_images.shape[0] > 0
  assert detected.train_images.shape == dataset.train_images.shape


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


# The files each local source reads, as its error messages list them.
EXPECTED_FILES = [
    ("cifar10", "cifar_python", "cifar-10-batches-py/"),
    ("cifar100", "cifar_python", "cifar-100-python.tar.gz"),
    ("cifar10", "image_folder", "train/<class>/<image> and test/<class>/<image>"),
    ("fashion_mnist", "idx", "t10k-labels-idx1-ubyte"),
]


def test_missing_data_dir_names_path(tmp_path):
  missing = tmp_path / "nowhere"

  with pytest.raises(FileNotFoundError, match="nowhere"):
    load_dataset("cifar10", source="image_folder", data_dir=missing)


@pytest.mark.parametrize("name, source, expected", EXPECTED_FILES)
def test_missing_data_dir_says_files_and_flag(tmp_path, name, source, expected):
  with pytest.raises(FileNotFoundError) as error:
    load_dataset(name, source=source, data_dir=tmp_path / "nowhere")

  assert "does not exist" in str(error.value)
  assert expected in str(error.value)
  assert "--config.data_dir=/path/to/files" in str(error.value)


@pytest.mark.parametrize("name, source, expected", EXPECTED_FILES)
def test_local_source_without_data_dir_raises(name, source, expected):
  with pytest.raises(ValueError) as error:
    load_dataset(name, source=source)

  assert f"source={source!r} needs data_dir" in str(error.value)
  assert expected in str(error.value)
  assert "--config.data_dir=/path/to/files" in str(error.value)


@pytest.mark.parametrize("split", ["train", "test", "validation"])
def test_dataset_label_out_of_range_raises(split):
  images = np.zeros((3, 32, 32, 3), np.uint8)
  labels = {name: np.array([0, 1, 2], np.int32) for name in ("train", "test", "validation")}
  labels[split] = np.array([0, 3, 1], np.int32)

  with pytest.raises(ValueError, match=f"{split}_labels\\[1\\] = 3, outside \\[0, 3\\)"):
    sources.Dataset(
        train_images=images, train_labels=labels["train"],
        test_images=images, test_labels=labels["test"],
        validation_images=images, validation_labels=labels["validation"],
        num_classes=3, class_names=("a", "b", "c"), mean=(0.5,) * 3, std=(0.25,) * 3,
        name="tiny",
    )


@pytest.mark.parametrize("as_archive", [False, True])
def test_image_folder_matches_written_arrays(tmp_path, as_archive):
  written = data_fixtures.write_image_folder(tmp_path, as_archive=as_archive)

  dataset = load_dataset("cifar10", source="image_folder", data_dir=written["path"])

  assert dataset.class_names == data_fixtures.CIFAR10_CLASS_NAMES
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


def test_image_folder_class_count_mismatch_raises(tmp_path):
  # The CIFAR-10 archive loaded as CIFAR-100 would train a 100-way head on
  # 10 classes without any error.
  written = data_fixtures.write_image_folder(tmp_path)

  with pytest.raises(ValueError, match="has 10 class folders in train/, but cifar100 has 100"):
    load_dataset("cifar100", source="image_folder", data_dir=written["path"])


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
  assert from_folder.class_names == data_fixtures.CIFAR10_CLASS_NAMES


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
  assert len(subset.test_labels) == 4
  full_test_rows = [image.tobytes() for image in full.test_images]
  subset_test_rows = [image.tobytes() for image in subset.test_images]
  assert set(subset_test_rows) <= set(full_test_rows)
  positions = [full_test_rows.index(row) for row in subset_test_rows]
  assert positions == sorted(positions)


def test_max_test_examples_spans_classes(tmp_path):
  # An image folder lists the test split class by class, so the first
  # examples would all carry one label and give a meaningless accuracy.
  written = data_fixtures.write_image_folder(tmp_path, num_test=30)

  subset = load_dataset(
      "cifar10", source="image_folder", data_dir=written["path"], max_test_examples=6
  )

  assert len(subset.test_labels) == 6
  assert len(set(subset.test_labels.tolist())) > 1


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


# IDX files (Fashion-MNIST).

DEBIAN_FASHION_MNIST = pathlib.Path("/usr/share/datasets/fashion-mnist")


def _write_idx(path, array, *, magic=None, gzipped=False, truncate_bytes=0):
  """Write `array` (uint8) as an IDX file; `magic` overrides the header's magic number."""
  if magic is None:
    magic = 0x0800 | array.ndim
  content = magic.to_bytes(4, "big")
  content += b"".join(size.to_bytes(4, "big") for size in array.shape)
  content += array.astype(np.uint8).tobytes()
  content = content[: len(content) - truncate_bytes]
  if gzipped:
    path = path.with_name(path.name + ".gz")
    content = gzip.compress(content)
  path.write_bytes(content)
  return path


def _write_fashion_mnist_idx(folder, *, gzipped=False, num_train=12, num_test=6):
  """Write the four Fashion-MNIST IDX files of a tiny data set into `folder`."""
  folder.mkdir(parents=True, exist_ok=True)
  written = {}
  for split, seed, count, prefix in (
      ("train", 1, num_train, "train"),
      ("test", 2, num_test, "t10k"),
  ):
    images, labels = data_fixtures.random_split(seed, count, 10, shape=(28, 28))
    _write_idx(folder / f"{prefix}-images-idx3-ubyte", images, gzipped=gzipped)
    _write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels, gzipped=gzipped)
    written[split] = (images[..., None], labels)
  return written


@pytest.mark.parametrize("gzipped", [False, True])
def test_idx_matches_written_arrays(tmp_path, gzipped):
  written = _write_fashion_mnist_idx(tmp_path, gzipped=gzipped)

  dataset = load_dataset("fashion_mnist", source="idx", data_dir=tmp_path)

  np.testing.assert_array_equal(dataset.train_images, written["train"][0])
  np.testing.assert_array_equal(dataset.train_labels, written["train"][1])
  np.testing.assert_array_equal(dataset.test_images, written["test"][0])
  np.testing.assert_array_equal(dataset.test_labels, written["test"][1])
  assert dataset.train_images.dtype == np.uint8
  assert dataset.train_images.shape == (12, 28, 28, 1)
  assert dataset.train_labels.dtype == np.int32
  assert dataset.train_images.flags.writeable
  assert dataset.validation_images.shape == (0, 28, 28, 1)


def test_idx_fashion_mnist_metadata(tmp_path):
  _write_fashion_mnist_idx(tmp_path)

  dataset = load_dataset("fashion_mnist", source="idx", data_dir=tmp_path)

  assert dataset.class_names == (
      "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
  )
  assert dataset.num_classes == 10
  assert dataset.mean == (0.2860,)
  assert dataset.std == (0.3530,)
  assert dataset.name == "fashion_mnist"


def test_idx_mixed_gzipped_and_plain_files(tmp_path):
  written = _write_fashion_mnist_idx(tmp_path, gzipped=True)
  plain = tmp_path / "t10k-labels-idx1-ubyte"
  plain.write_bytes(gzip.decompress((tmp_path / "t10k-labels-idx1-ubyte.gz").read_bytes()))
  os.remove(tmp_path / "t10k-labels-idx1-ubyte.gz")

  dataset = load_dataset("fashion_mnist", source="idx", data_dir=tmp_path)

  np.testing.assert_array_equal(dataset.test_labels, written["test"][1])


def test_idx_auto_detects_layout(tmp_path):
  written = _write_fashion_mnist_idx(tmp_path, gzipped=True)

  dataset = load_dataset("fashion_mnist", source="auto", data_dir=tmp_path)

  np.testing.assert_array_equal(dataset.train_images, written["train"][0])
  assert sources._detect_local_source("fashion_mnist", tmp_path) == "idx"


def test_idx_validation_and_subsets(tmp_path):
  _write_fashion_mnist_idx(tmp_path)

  dataset = load_dataset(
      "fashion_mnist", source="idx", data_dir=tmp_path, validation_fraction=0.25,
      max_test_examples=4,
  )

  assert dataset.validation_images.shape == (3, 28, 28, 1)
  assert dataset.train_images.shape == (9, 28, 28, 1)
  assert dataset.test_images.shape == (4, 28, 28, 1)


def test_idx_missing_file_lists_names(tmp_path):
  _write_fashion_mnist_idx(tmp_path, gzipped=True)
  os.remove(tmp_path / "t10k-images-idx3-ubyte.gz")
  os.remove(tmp_path / "train-labels-idx1-ubyte.gz")

  with pytest.raises(FileNotFoundError) as error:
    load_dataset("fashion_mnist", source="idx", data_dir=tmp_path)

  assert "t10k-images-idx3-ubyte" in str(error.value)
  assert "train-labels-idx1-ubyte" in str(error.value)
  assert str(tmp_path) in str(error.value)


@pytest.mark.parametrize("gzipped", [False, True])
def test_idx_truncated_file_raises(tmp_path, gzipped):
  _write_fashion_mnist_idx(tmp_path, gzipped=gzipped)
  images, _ = data_fixtures.random_split(1, 12, 10, shape=(28, 28))
  path = _write_idx(
      tmp_path / "train-images-idx3-ubyte", images, gzipped=gzipped, truncate_bytes=100
  )

  with pytest.raises(ValueError, match="truncated") as error:
    load_dataset("fashion_mnist", source="idx", data_dir=tmp_path)

  assert str(path) in str(error.value)
  assert str(12 * 28 * 28) in str(error.value)


def test_idx_truncated_gzip_stream_raises(tmp_path):
  _write_fashion_mnist_idx(tmp_path, gzipped=True)
  path = tmp_path / "train-images-idx3-ubyte.gz"
  path.write_bytes(path.read_bytes()[:-20])

  with pytest.raises(ValueError, match="not a valid gzip stream") as error:
    load_dataset("fashion_mnist", source="idx", data_dir=tmp_path)

  assert str(path) in str(error.value)


def test_idx_extra_bytes_raise(tmp_path):
  _write_fashion_mnist_idx(tmp_path)
  path = tmp_path / "t10k-labels-idx1-ubyte"
  path.write_bytes(path.read_bytes() + b"\x00")

  with pytest.raises(ValueError, match="followed by extra bytes"):
    load_dataset("fashion_mnist", source="idx", data_dir=tmp_path)


def test_idx_truncated_header_raises(tmp_path):
  _write_fashion_mnist_idx(tmp_path)
  path = tmp_path / "train-images-idx3-ubyte"
  path.write_bytes((0x0803).to_bytes(4, "big") + (12).to_bytes(4, "big"))

  with pytest.raises(ValueError, match="ends inside its header"):
    load_dataset("fashion_mnist", source="idx", data_dir=tmp_path)


@pytest.mark.parametrize("gzipped", [False, True])
def test_idx_wrong_magic_names_expected(tmp_path, gzipped):
  _write_fashion_mnist_idx(tmp_path, gzipped=gzipped)
  _, labels = data_fixtures.random_split(1, 12, 10, shape=(28, 28))
  # A labels file with an images magic number: a swapped or renamed file.
  path = _write_idx(
      tmp_path / "train-labels-idx1-ubyte", labels, magic=0x0803, gzipped=gzipped
  )

  with pytest.raises(ValueError, match="magic number 0x00000803; expected 0x00000801") as error:
    load_dataset("fashion_mnist", source="idx", data_dir=tmp_path)

  assert str(path) in str(error.value)


def test_idx_invalid_magic_raises(tmp_path):
  path = tmp_path / "not-idx"
  path.write_bytes(b"PK\x03\x04" + bytes(16))

  with pytest.raises(ValueError, match="invalid magic number 0x504B0304"):
    idx.read_idx(path)


def test_idx_wrong_image_size_raises(tmp_path):
  _write_fashion_mnist_idx(tmp_path)
  images, _ = data_fixtures.random_split(1, 12, 10, shape=(32, 32))
  _write_idx(tmp_path / "train-images-idx3-ubyte", images)

  with pytest.raises(ValueError, match="32x32 pixels; expected 28x28"):
    load_dataset("fashion_mnist", source="idx", data_dir=tmp_path)


def test_idx_count_mismatch_raises(tmp_path):
  _write_fashion_mnist_idx(tmp_path)
  _, labels = data_fixtures.random_split(1, 11, 10)
  _write_idx(tmp_path / "train-labels-idx1-ubyte", labels)

  with pytest.raises(ValueError, match="12 images but .* 11 labels"):
    load_dataset("fashion_mnist", source="idx", data_dir=tmp_path)


def test_idx_label_out_of_range_raises(tmp_path):
  _write_fashion_mnist_idx(tmp_path)
  _write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.full(6, 10, np.uint8))

  with pytest.raises(ValueError, match=r"span \[10, 10\]; expected \[0, 9\]"):
    load_dataset("fashion_mnist", source="idx", data_dir=tmp_path)


def test_idx_rejects_cifar(tmp_path):
  _write_fashion_mnist_idx(tmp_path)

  with pytest.raises(ValueError, match="supports fashion_mnist, not 'cifar10'"):
    load_dataset("cifar10", source="idx", data_dir=tmp_path)


def test_read_idx_other_value_types(tmp_path):
  array = (np.arange(6) - 3).astype(">i4").reshape(2, 3)
  path = tmp_path / "int32-idx2"
  header = (0x0C02).to_bytes(4, "big") + (2).to_bytes(4, "big") + (3).to_bytes(4, "big")
  path.write_bytes(header + array.tobytes())

  loaded = idx.read_idx(path)

  np.testing.assert_array_equal(loaded, array)
  assert loaded.dtype == np.int32


def test_idx_file_as_data_dir_raises(tmp_path):
  _write_fashion_mnist_idx(tmp_path, gzipped=True)
  path = tmp_path / "train-images-idx3-ubyte.gz"

  with pytest.raises(NotADirectoryError, match="is not a folder") as error:
    load_dataset("fashion_mnist", source="idx", data_dir=path)

  assert str(tmp_path) in str(error.value)


@pytest.mark.skipif(
    not DEBIAN_FASHION_MNIST.is_dir(),
    reason=f"{DEBIAN_FASHION_MNIST} absent; install the Debian package "
    f"dataset-fashion-mnist to run this test",
)
def test_debian_fashion_mnist_loads():
  dataset = load_dataset("fashion_mnist", source="auto", data_dir=DEBIAN_FASHION_MNIST)

  assert dataset.train_images.shape == (60_000, 28, 28, 1)
  assert dataset.test_images.shape == (10_000, 28, 28, 1)
  assert np.bincount(dataset.train_labels).tolist() == [6000] * 10
  assert np.bincount(dataset.test_labels).tolist() == [1000] * 10
  np.testing.assert_allclose(dataset.train_images.mean() / 255, 0.2860, atol=5e-4)
  np.testing.assert_allclose(dataset.train_images.std() / 255, 0.3530, atol=5e-4)

