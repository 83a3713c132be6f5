"""Image classification data sets held in memory as uint8 arrays.

Four sources return the same `Dataset`. tensorflow-datasets is read through
`tfds.data_source`, so no TensorFlow is needed once a data set is prepared. The
CIFAR "python version" archives are read as Krizhevsky (2009) distributes them.
An image-folder layout (`train/<class>/*.jpg`, `test/<class>/*.jpg`) is read
from a folder or straight from a `.tar.gz`. MNIST-style IDX files are read as
their authors distribute them, gzipped or plain.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import io
import logging
import os
import pathlib
import pickle
import tarfile
import time
import urllib.request
from collections.abc import Iterator, Sequence

import numpy as np
from PIL import Image

from sigreg_jax.data import idx

SOURCES = ("tfds", "cifar_python", "image_folder", "idx", "auto")

# The CIFAR authors' python-version archives and their MD5 sums (as torchvision
# lists them), downloaded when tfds cannot prepare a data set without TensorFlow.
CIFAR_PYTHON_ARCHIVES = {
    "cifar100": (
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "eb9058c3a382ffc7106e4002c42a8d85",
    ),
    "cifar10": (
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "c58f30108f718f92721af3b95e74349a",
    ),
}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


@dataclasses.dataclass(frozen=True)
class DatasetMetadata:
  """Fixed facts about a supported data set."""

  num_classes: int
  image_shape: tuple[int, int, int]
  mean: tuple[float, ...]
  std: tuple[float, ...]
  cifar_python_folder: str | None
  # Class names for sources whose files do not store them (IDX).
  class_names: tuple[str, ...] | None = None


METADATA = {
    "cifar100": DatasetMetadata(
        num_classes=100,
        image_shape=(32, 32, 3),
        mean=(0.5071, 0.4865, 0.4409),
        std=(0.2673, 0.2564, 0.2762),
        cifar_python_folder="cifar-100-python",
    ),
    "cifar10": DatasetMetadata(
        num_classes=10,
        image_shape=(32, 32, 3),
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2470, 0.2435, 0.2616),
        cifar_python_folder="cifar-10-batches-py",
    ),
    "fashion_mnist": DatasetMetadata(
        num_classes=10,
        image_shape=(28, 28, 1),
        mean=(0.2860,),
        std=(0.3530,),
        cifar_python_folder=None,
        # Label order from the Fashion-MNIST README (github.com/zalandoresearch/fashion-mnist).
        class_names=(
            "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
        ),
    ),
}


@dataclasses.dataclass(frozen=True)
class Dataset:
  """A labelled image data set held in host memory.

  Attributes:
    train_images: uint8 [N, H, W, C] training images.
    train_labels: int32 [N] class indices.
    test_images: uint8 [M, H, W, C].
    test_labels: int32 [M].
    num_classes: number of classes.
    class_names: class names, indexed by label.
    mean: per-channel mean of the training images in [0, 1] units.
    std: per-channel standard deviation in [0, 1] units.
    name: data set name, for example "cifar100".
    validation_images: uint8 [V, H, W, C] held out from the training split;
      V is 0 unless a validation fraction was requested.
    validation_labels: int32 [V].

  Raises:
    ValueError: if a label of any split is outside [0, num_classes), because
      the jitted training step cannot check labels and would turn such a
      label into an all-zero soft label.
  """

  train_images: np.ndarray
  train_labels: np.ndarray
  test_images: np.ndarray
  test_labels: np.ndarray
  num_classes: int
  class_names: tuple[str, ...]
  mean: tuple[float, ...]
  std: tuple[float, ...]
  name: str
  validation_images: np.ndarray | None = None
  validation_labels: np.ndarray | None = None

  def __post_init__(self):
    if self.validation_images is None:
      empty = np.zeros((0, *self.train_images.shape[1:]), np.uint8)
      object.__setattr__(self, "validation_images", empty)
    if self.validation_labels is None:
      object.__setattr__(self, "validation_labels", np.zeros((0,), np.int32))
    for split in ("train", "test", "validation"):
      labels = np.asarray(getattr(self, f"{split}_labels"))
      invalid = np.flatnonzero((labels < 0) | (labels >= self.num_classes))
      if invalid.size:
        index = invalid[0]
        raise ValueError(
            f"Data set {self.name!r} has {split}_labels[{index}] = {labels[index]}, "
            f"outside [0, {self.num_classes}) for num_classes={self.num_classes} "
            f"({invalid.size} of {labels.size} labels are out of range). Relabel the "
            f"classes as 0 to num_classes - 1, or raise num_classes."
        )

  @property
  def image_shape(self) -> tuple[int, int, int]:
    """Shape [H, W, C] of one image."""
    return tuple(self.train_images.shape[1:])


def load_dataset(
    name: str,
    *,
    source: str = "tfds",
    data_dir: str | os.PathLike[str] | None = None,
    validation_fraction: float = 0.0,
    max_train_examples: int | None = None,
    max_test_examples: int | None = None,
    seed: int = 0,
) -> Dataset:
  """Load a whole data set into uint8 arrays.

  Sources:

  - ``"tfds"``: `tfds.data_source(name, data_dir=data_dir, download=True)`,
    which downloads and prepares the data set in array_record format on first
    use and reads it without TensorFlow afterwards. Preparing needs
    TensorFlow; without it, CIFAR-10 and CIFAR-100 are instead downloaded as
    the authors' python-version archive into `<data_dir>/downloads` and read
    from there.
  - ``"cifar_python"``: the CIFAR python-version archive, given as the
    ``cifar-100-python`` (or ``cifar-10-batches-py``) folder, the authors'
    ``cifar-100-python.tar.gz`` (or ``cifar-10-python.tar.gz``), any other
    ``.tar.gz`` of the folder given as a file, or a folder containing the
    folder or the authors' archive.
  - ``"image_folder"``: ``train/<class>/<image>`` and ``test/<class>/<image>``,
    given as a folder, a folder whose single subfolder has that layout, or a
    ``.tar.gz`` of either. Class names are the sorted subfolder names.
  - ``"idx"``: a folder with the four IDX files of the MNIST-style release,
    ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each gzipped
    (``.gz``) or plain. Only fashion_mnist has this layout here.
  - ``"auto"``: a local layout under `data_dir` when one is found, otherwise
    tfds.

  The validation split, when requested, is a random subset of the training
  split chosen from `seed` and removed from it. `max_train_examples` then keeps
  a random subset of the remaining training examples (chosen from `seed`, kept
  in their original order), and `max_test_examples` likewise keeps a random
  subset of the test examples. Classes are not stratified.

  Args:
    name: one of "cifar100", "cifar10", "fashion_mnist".
    source: one of "tfds", "cifar_python", "image_folder", "idx", "auto".
    data_dir: tfds data directory (None: tfds's default, ~/tensorflow_datasets)
      or the path of the local files.
    validation_fraction: fraction of the training split held out, in [0, 1).
    max_train_examples: keep at most this many training examples.
    max_test_examples: keep at most this many test examples.
    seed: seed of the validation split and of the training and test subsets.

  Returns:
    A `Dataset` with uint8 images and int32 labels.

  Raises:
    ValueError: on an unknown name or source, a local source without
      `data_dir`, invalid fractions or counts, or files that do not have the
      expected layout.
    FileNotFoundError: when `data_dir` does not exist or lacks the files.
    NotADirectoryError: when source="idx" and `data_dir` is a file.
    RuntimeError: when tfds fails to download or prepare the data set.

  Example:
    >>> dataset = load_dataset(  # doctest: +SKIP
    ...     "cifar10", source="image_folder", data_dir="cifar10-jpeg.tar.gz")
    >>> dataset.train_images.shape  # doctest: +SKIP
    (50000, 32, 32, 3)
  """
  if name not in METADATA:
    raise ValueError(f"Unknown data set {name!r}; expected one of {sorted(METADATA)}.")
  if source not in SOURCES:
    raise ValueError(f"Unknown data source {source!r}; expected one of {SOURCES}.")
  if not 0.0 <= validation_fraction < 1.0:
    raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}.")
  for argument, value in (
      ("max_train_examples", max_train_examples),
      ("max_test_examples", max_test_examples),
  ):
    if value is not None and value < 1:
      raise ValueError(f"{argument} must be None or a positive integer, got {value}.")

  metadata = METADATA[name]
  if source == "auto":
    source = _detect_local_source(name, data_dir) or "tfds"

  start = time.perf_counter()
  if source == "tfds":
    splits, class_names = _load_tfds(name, data_dir)
  elif source == "cifar_python":
    splits, class_names = _load_cifar_python(name, _require_path(data_dir, source, name))
  elif source == "idx":
    splits, class_names = _load_idx(name, _require_path(data_dir, source, name))
  else:
    splits, class_names = _load_image_folder(name, _require_path(data_dir, source, name))
  logging.info(
      "Loaded %s from %s (%s) in %.1f s: %d train, %d test images.",
      name, source, data_dir, time.perf_counter() - start,
      len(splits["train"][1]), len(splits["test"][1]),
  )

  (train_images, train_labels), (test_images, test_labels) = splits["train"], splits["test"]
  _check_arrays(name, source, data_dir, train_images, train_labels, test_images, test_labels)

  validation_images = validation_labels = None
  if validation_fraction > 0:
    rng = np.random.default_rng([seed, 0])
    order = rng.permutation(len(train_labels))
    num_validation = int(round(validation_fraction * len(train_labels)))
    if not 0 < num_validation < len(train_labels):
      raise ValueError(
          f"validation_fraction={validation_fraction} of {len(train_labels)} training "
          f"examples leaves an empty split; choose a fraction that keeps both non-empty."
      )
    validation_index = np.sort(order[:num_validation])
    train_index = np.sort(order[num_validation:])
    validation_images, validation_labels = train_images[validation_index], train_labels[validation_index]
    train_images, train_labels = train_images[train_index], train_labels[train_index]

  if max_train_examples is not None and max_train_examples < len(train_labels):
    rng = np.random.default_rng([seed, 1])
    keep = np.sort(rng.choice(len(train_labels), max_train_examples, replace=False))
    train_images, train_labels = train_images[keep], train_labels[keep]
  if max_test_examples is not None and max_test_examples < len(test_labels):
    # A random subset, because image folders and archives list the test split
    # class by class, so its first examples may all share one label.
    rng = np.random.default_rng([seed, 2])
    keep = np.sort(rng.choice(len(test_labels), max_test_examples, replace=False))
    test_images, test_labels = test_images[keep], test_labels[keep]

  return Dataset(
      train_images=train_images,
      train_labels=train_labels,
      test_images=test_images,
      test_labels=test_labels,
      num_classes=metadata.num_classes,
      class_names=tuple(class_names),
      mean=metadata.mean,
      std=metadata.std,
      name=name,
      validation_images=validation_images,
      validation_labels=validation_labels,
  )


def _require_path(data_dir, source: str, name: str) -> pathlib.Path:
  """Return `data_dir` as a path, or raise with the files `source` reads if it is unset or missing."""
  expected = _expected_files(name, source)
  if data_dir is None:
    raise ValueError(
        f"source={source!r} needs data_dir, the path of {expected}. Pass data_dir to "
        f"load_dataset, or add --config.data_dir=/path/to/files to the experiment "
        f"command line."
    )
  path = pathlib.Path(data_dir).expanduser()
  if not path.exists():
    raise FileNotFoundError(
        f"Data path {path} does not exist. source={source!r} reads {expected}. Pass "
        f"the path of these files as data_dir to load_dataset, or as "
        f"--config.data_dir=/path/to/files on the experiment command line."
    )
  return path


def _expected_files(name: str, source: str) -> str:
  """Describe the files that a local source reads, for error messages."""
  if source == "cifar_python":
    folder = METADATA[name].cifar_python_folder
    if folder is None:
      return "the CIFAR python-version files, which exist for cifar10 and cifar100 only"
    archive = _cifar_archive_names(name)[0]
    return (
        f"the CIFAR python-version data: the {folder}/ folder, the authors' {archive}, "
        f"or a folder that contains {folder}/ or {archive}"
    )
  if source == "idx":
    names = [file for split in ("train", "test") for file in idx.IDX_FILE_NAMES[split]]
    return f"a folder with the IDX files {', '.join(names)} (each may end in .gz)"
  return "a folder or .tar.gz with train/<class>/<image> and test/<class>/<image>"


def _check_arrays(name, source, data_dir, train_images, train_labels, test_images, test_labels):
  """Check shapes, dtypes and label range against the data set's metadata."""
  metadata = METADATA[name]
  for split, images, labels in (
      ("train", train_images, train_labels),
      ("test", test_images, test_labels),
  ):
    if images.shape[1:] != metadata.image_shape or images.dtype != np.uint8:
      raise ValueError(
          f"{name} {split} images from {data_dir} (source={source!r}) have shape "
          f"{images.shape} and dtype {images.dtype}; expected uint8 [N, "
          f"{', '.join(map(str, metadata.image_shape))}]. Check that data_dir holds {name}."
      )
    if len(labels) != len(images) or len(labels) == 0:
      raise ValueError(
          f"{name} {split} split from {data_dir} has {len(images)} images and "
          f"{len(labels)} labels; expected the same non-zero count."
      )
    if labels.min() < 0 or labels.max() >= metadata.num_classes:
      raise ValueError(
          f"{name} {split} labels from {data_dir} span [{labels.min()}, {labels.max()}]; "
          f"expected [0, {metadata.num_classes - 1}]."
      )


def _detect_local_source(name: str, data_dir) -> str | None:
  """Return the local source whose layout `data_dir` has, or None."""
  if data_dir is None or not pathlib.Path(data_dir).exists():
    return None
  path = pathlib.Path(data_dir)
  folder = METADATA[name].cifar_python_folder
  if folder is not None:
    archives = _cifar_archive_names(name)
    if path.name in (folder, *archives) or (path / folder).is_dir() or any(
        (path / archive).is_file() for archive in archives
    ):
      return "cifar_python"
  if METADATA[name].class_names is not None and idx.find_idx_files(path):
    return "idx"
  if path.is_file() and path.name.endswith((".tar.gz", ".tgz", ".tar")):
    return "image_folder"
  if _find_image_folder_root(path) is not None:
    return "image_folder"
  return None


# tensorflow-datasets.


def _load_tfds(name: str, data_dir) -> tuple[dict, list[str]]:
  """Read both splits through `tfds.data_source`, preparing them if needed."""
  import tensorflow_datasets as tfds  # Imported here: slow, and only this source needs it.

  # tfds's CIFAR and Fashion-MNIST builders read and encode with TensorFlow while
  # preparing (tfds 4.9.10); reading prepared array_record files does not need it.
  builder = tfds.builder(name, data_dir=data_dir)
  if not builder.is_prepared() and not _tensorflow_installed():
    if name not in CIFAR_PYTHON_ARCHIVES:
      raise RuntimeError(
          f"tensorflow-datasets needs TensorFlow to prepare {name!r} (once) in "
          f"{builder.data_dir_root}, and TensorFlow is not installed. Install it "
          f"(`pip install tensorflow`) for that step, or load local files with "
          f"source='idx' (the four IDX files, for example from the Debian package "
          f"dataset-fashion-mnist in /usr/share/datasets/fashion-mnist) or "
          f"source='image_folder'."
      )
    archive = _download_cifar_python(name, pathlib.Path(builder.data_dir_root) / "downloads")
    return _load_cifar_python(name, archive)

  try:
    sources = tfds.data_source(
        name, split=["train", "test"], data_dir=data_dir, download=True
    )
  except Exception as error:  # tfds raises many types for a failed download.
    folder = METADATA[name].cifar_python_folder
    local_hint = (
        f"source='cifar_python' with data_dir pointing at {folder}/ or "
        f"{_cifar_archive_names(name)[0]}, or "
        if folder
        else ""
    )
    raise RuntimeError(
        f"tensorflow-datasets could not download and prepare {name!r} into "
        f"data_dir={data_dir!r}: {type(error).__name__}: {error}. Preparing needs internet "
        f"access and TensorFlow (`pip install tensorflow`, needed only for this one-time "
        f"step; reading the prepared array_record files does not need it). Without them, "
        f"load local files instead: {local_hint}source='image_folder' with data_dir "
        f"pointing at a folder or .tar.gz with train/<class>/ and test/<class>/ images."
    ) from error

  class_names = list(sources[0].dataset_info.features["label"].names)
  splits = {}
  for split, data_source in zip(("train", "test"), sources):
    examples = data_source.__getitems__(range(len(data_source)))
    images = np.stack([np.asarray(example["image"], np.uint8) for example in examples])
    labels = np.asarray([example["label"] for example in examples], np.int32)
    splits[split] = (images, labels)
  return splits, class_names


def _tensorflow_installed() -> bool:
  return importlib.util.find_spec("tensorflow") is not None


def _download_cifar_python(name: str, download_dir: pathlib.Path) -> pathlib.Path:
  """Download the CIFAR python-version archive once and check its MD5 sum."""
  url, expected_md5 = CIFAR_PYTHON_ARCHIVES[name]
  archive = download_dir / url.rsplit("/", 1)[-1]
  if archive.is_file() and _md5(archive) == expected_md5:
    return archive

  logging.warning(
      "TensorFlow is not installed, so tensorflow-datasets cannot prepare %s; "
      "downloading the authors' archive %s to %s instead.", name, url, archive,
  )
  download_dir.mkdir(parents=True, exist_ok=True)
  partial = archive.with_name(archive.name + ".partial")
  try:
    urllib.request.urlretrieve(url, partial)
  except OSError as error:
    raise RuntimeError(
        f"Download of {url} to {partial} failed: {error}. Without internet access, "
        f"copy {archive.name} there by hand, or load local files with "
        f"source='cifar_python' or source='image_folder' and data_dir."
    ) from error
  actual_md5 = _md5(partial)
  if actual_md5 != expected_md5:
    raise RuntimeError(
        f"{url} downloaded to {partial} has MD5 {actual_md5}, expected {expected_md5}; "
        f"delete the file and retry, or pass a verified copy with source='cifar_python'."
    )
  partial.replace(archive)
  return archive


def _md5(path: pathlib.Path) -> str:
  digest = hashlib.md5()
  with open(path, "rb") as stream:
    for chunk in iter(lambda: stream.read(1 << 20), b""):
      digest.update(chunk)
  return digest.hexdigest()


# CIFAR python-version archives.


def _load_cifar_python(name: str, path: pathlib.Path) -> tuple[dict, list[str]]:
  """Read the pickled batches of a CIFAR python-version folder or archive."""
  folder = METADATA[name].cifar_python_folder
  if folder is None:
    raise ValueError(
        f"source='cifar_python' supports cifar10 and cifar100, not {name!r}; use "
        f"source='tfds' or source='image_folder'."
    )
  if name == "cifar100":
    train_files, test_files, meta_file = ["train"], ["test"], "meta"
    label_key, names_key = b"fine_labels", b"fine_label_names"
  else:
    train_files = [f"data_batch_{index}" for index in range(1, 6)]
    test_files, meta_file = ["test_batch"], "batches.meta"
    label_key, names_key = b"labels", b"label_names"
  expected = f"{folder}/ with {', '.join(train_files + test_files + [meta_file])}"

  archive = _find_cifar_python(path, name)
  if archive is None:
    raise FileNotFoundError(
        f"No CIFAR python-version data found at {path}: expected {expected}, or "
        f"{' or '.join(_cifar_archive_names(name))}, at or directly under that path."
    )
  with _PickleReader(archive, folder) as reader:
    try:
      meta = reader.load(meta_file)
      splits = {}
      for split, files in (("train", train_files), ("test", test_files)):
        batches = [reader.load(file) for file in files]
        data = np.concatenate([np.asarray(batch[b"data"], np.uint8) for batch in batches])
        labels = np.concatenate([np.asarray(batch[label_key], np.int32) for batch in batches])
        images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        splits[split] = (np.ascontiguousarray(images), labels)
      class_names = [label.decode() for label in meta[names_key]]
    except (KeyError, ValueError, pickle.UnpicklingError, EOFError) as error:
      raise ValueError(
          f"Malformed CIFAR python-version data at {archive}: {type(error).__name__}: "
          f"{error}. Expected {expected} as distributed by the CIFAR authors."
      ) from error
  return splits, class_names


def _cifar_archive_names(name: str) -> tuple[str, ...]:
  """Return the archive names to look for: the authors' name, then `<folder>.tar.gz`."""
  url, _ = CIFAR_PYTHON_ARCHIVES[name]
  folder_archive = f"{METADATA[name].cifar_python_folder}.tar.gz"
  return tuple(dict.fromkeys((url.rsplit("/", 1)[-1], folder_archive)))


def _find_cifar_python(path: pathlib.Path, name: str) -> pathlib.Path | None:
  folder = METADATA[name].cifar_python_folder
  candidates = [path, path / folder, *(path / archive for archive in _cifar_archive_names(name))]
  for candidate in candidates:
    if candidate.is_dir() and candidate.name == folder:
      return candidate
    if candidate.is_file() and candidate.name.endswith((".tar.gz", ".tgz", ".tar")):
      return candidate
  return None


class _PickleReader:
  """Reads pickled batches by file name from a folder or a tar archive."""

  def __init__(self, path: pathlib.Path, folder: str):
    self.path = path
    self.folder = folder
    self.tar = tarfile.open(path) if path.is_file() else None

  def __enter__(self):
    return self

  def __exit__(self, *exc_info):
    if self.tar is not None:
      self.tar.close()

  def load(self, file: str) -> dict:
    if self.tar is None:
      file_path = self.path / file
      if not file_path.is_file():
        raise FileNotFoundError(f"Missing CIFAR batch file {file_path}.")
      with open(file_path, "rb") as stream:
        return pickle.load(stream, encoding="bytes")
    member = f"{self.folder}/{file}"
    try:
      stream = self.tar.extractfile(member)
    except KeyError:
      stream = None
    if stream is None:
      raise FileNotFoundError(f"Missing {member} inside archive {self.path}.")
    return pickle.load(stream, encoding="bytes")


# Image folders.


def _load_image_folder(name: str, path: pathlib.Path) -> tuple[dict, list[str]]:
  """Decode every image of a train/ and test/ class-folder layout."""
  mode = "L" if METADATA[name].image_shape[-1] == 1 else "RGB"
  expected = "train/<class>/<image> and test/<class>/<image>"

  if path.is_file():
    files = _iterate_tar_images(path)
  else:
    root = _find_image_folder_root(path)
    if root is None:
      raise FileNotFoundError(
          f"No image folder found at {path}: expected {expected}, directly or in "
          f"one subfolder."
      )
    files = _iterate_folder_images(root)

  images = {"train": [], "test": []}
  class_of_image = {"train": [], "test": []}
  for split, class_name, member, data in files:
    try:
      with Image.open(io.BytesIO(data)) as image:
        images[split].append(np.asarray(image.convert(mode)))
    except (OSError, ValueError) as error:
      raise ValueError(f"Cannot decode image {member} in {path}: {error}.") from error
    class_of_image[split].append(class_name)

  if not class_of_image["train"] or not class_of_image["test"]:
    found = {split: len(names) for split, names in class_of_image.items()}
    raise FileNotFoundError(
        f"Image folder {path} lacks images in a split (found {found}); expected {expected}."
    )
  class_names = sorted(set(class_of_image["train"]))
  num_classes = METADATA[name].num_classes
  if len(class_names) != num_classes:
    raise ValueError(
        f"Image folder {path} has {len(class_names)} class folders in train/, but "
        f"{name} has {num_classes} classes. Choose the data set that data_dir holds "
        f"(for example cifar10 for a CIFAR-10 folder) or point data_dir at {name}."
    )
  if set(class_of_image["test"]) - set(class_names):
    raise ValueError(
        f"Test classes {sorted(set(class_of_image['test']) - set(class_names))} in {path} "
        f"have no training folder; expected the same class folders in train/ and test/."
    )
  index_of_class = {class_name: index for index, class_name in enumerate(class_names)}

  splits = {}
  for split in ("train", "test"):
    shapes = {image.shape for image in images[split]}
    if len(shapes) != 1:
      raise ValueError(
          f"Images in {path}/{split} have different shapes {sorted(shapes)[:4]}; expected "
          f"one shape, {METADATA[name].image_shape[:2]}."
      )
    stacked = np.stack(images[split])
    if stacked.ndim == 3:
      stacked = stacked[..., None]
    labels = np.asarray([index_of_class[c] for c in class_of_image[split]], np.int32)
    splits[split] = (stacked, labels)
  return splits, class_names


def _find_image_folder_root(path: pathlib.Path) -> pathlib.Path | None:
  if not path.is_dir():
    return None
  if (path / "train").is_dir() and (path / "test").is_dir():
    return path
  subfolders = [child for child in path.iterdir() if child.is_dir()]
  if len(subfolders) == 1:
    return _find_image_folder_root(subfolders[0])
  return None


def _split_image_path(parts: Sequence[str]) -> tuple[str, str] | None:
  """Return (split, class name) for a path ending in split/class/file, else None."""
  if len(parts) < 3 or parts[-3] not in ("train", "test"):
    return None
  if not parts[-1].lower().endswith(IMAGE_SUFFIXES):
    return None
  return parts[-3], parts[-2]


def _iterate_folder_images(root: pathlib.Path) -> Iterator[tuple[str, str, str, bytes]]:
  for split in ("train", "test"):
    for file in sorted((root / split).glob("*/*")):
      located = _split_image_path(file.parts)
      if located is not None:
        yield located[0], located[1], str(file), file.read_bytes()


def _iterate_tar_images(path: pathlib.Path) -> Iterator[tuple[str, str, str, bytes]]:
  """Stream images out of a tar archive in archive order, without extracting."""
  try:
    with tarfile.open(path, "r|*") as tar:
      for member in tar:
        if not member.isfile():
          continue
        located = _split_image_path(member.name.split("/"))
        if located is not None:
          yield located[0], located[1], member.name, tar.extractfile(member).read()
  except tarfile.TarError as error:
    raise ValueError(
        f"Cannot read {path} as a tar archive: {error}. Expected a .tar.gz of "
        f"train/<class>/<image> and test/<class>/<image>."
    ) from error


# IDX files (MNIST-style releases).


def _load_idx(name: str, path: pathlib.Path) -> tuple[dict, list[str]]:
  """Read a folder of MNIST-style IDX files and attach the release's class names."""
  metadata = METADATA[name]
  if metadata.class_names is None or metadata.image_shape[-1] != 1:
    raise ValueError(
        f"source='idx' supports fashion_mnist, not {name!r}; use source='tfds', "
        f"'cifar_python' or 'image_folder'."
    )
  splits = idx.load_idx_splits(path, image_size=metadata.image_shape[:2])
  return splits, list(metadata.class_names)
