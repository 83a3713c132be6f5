"""Tiny data sets on disk in the layouts the data sources read, for tests.

Each writer fills a directory under the test's tmp_path and returns the arrays
it wrote, so a test can compare what a source loads with what is on disk.
"""

from __future__ import annotations

import io
import pathlib
import pickle
import tarfile

import numpy as np
from PIL import Image


def random_split(seed: int, num_examples: int, num_classes: int, shape=(32, 32, 3)):
  """Return uint8 images [N, *shape] and int32 labels [N] cycling over the classes."""
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, (num_examples, *shape), dtype=np.uint8)
  labels = (np.arange(num_examples) % num_classes).astype(np.int32)
  return images, labels


def write_cifar_python(
    root: pathlib.Path, name: str, *, num_train: int = 20, num_test: int = 10,
    as_archive: bool = False,
) -> dict:
  """Write a CIFAR python-version folder (or its .tar.gz) as the CIFAR authors do.

  Returns:
    {"train": (images, labels), "test": (images, labels), "class_names": [...]}
  """
  num_classes = 100 if name == "cifar100" else 10
  train = random_split(1, num_train, num_classes)
  test = random_split(2, num_test, num_classes)
  class_names = [f"class_{index:03d}" for index in range(num_classes)]

  def batch(images, labels, label_key):
    data = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    return {b"data": data, label_key: labels.tolist()}

  if name == "cifar100":
    folder = "cifar-100-python"
    files = {
        "train": batch(*train, b"fine_labels"),
        "test": batch(*test, b"fine_labels"),
        "meta": {b"fine_label_names": [n.encode() for n in class_names]},
    }
  else:
    folder = "cifar-10-batches-py"
    files = {"test_batch": batch(*test, b"labels")}
    for index, part in enumerate(np.array_split(np.arange(num_train), 5)):
      files[f"data_batch_{index + 1}"] = batch(train[0][part], train[1][part], b"labels")
    files["batches.meta"] = {b"label_names": [n.encode() for n in class_names]}

  if as_archive:
    # The authors' archive names: cifar-100-python.tar.gz, cifar-10-python.tar.gz.
    archive = "cifar-100-python.tar.gz" if name == "cifar100" else "cifar-10-python.tar.gz"
    with tarfile.open(root / archive, "w:gz") as tar:
      for file, content in files.items():
        data = pickle.dumps(content)
        info = tarfile.TarInfo(f"{folder}/{file}")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
  else:
    (root / folder).mkdir(parents=True)
    for file, content in files.items():
      (root / folder / file).write_bytes(pickle.dumps(content))
  return {"train": train, "test": test, "class_names": class_names}


# The 10 class folders of CIFAR-10 and Fashion-MNIST image folders must match
# the data set's class count.
CIFAR10_CLASS_NAMES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)


def write_image_folder(
    root: pathlib.Path, *, class_names=CIFAR10_CLASS_NAMES, num_train: int = 12,
    num_test: int = 6, shape=(32, 32, 3), top_folder: str = "cifar10",
    as_archive: bool = False,
) -> dict:
  """Write lossless PNGs as <top_folder>/{train,test}/<class>/<index>.png, or a .tar.gz of them.

  Returns:
    {"train": (images, labels), "test": (images, labels), "path": folder or archive}.
    The arrays are sorted by file name within each class, the order in which a
    folder is read.
  """
  written = {}
  base = root / "tree"
  for split, seed, count in (("train", 3, num_train), ("test", 4, num_test)):
    images, labels = random_split(seed, count, len(class_names), shape)
    order = np.argsort(labels, kind="stable")
    images, labels = images[order], labels[order]
    for index, (image, label) in enumerate(zip(images, labels)):
      folder = base / top_folder / split / class_names[label]
      folder.mkdir(parents=True, exist_ok=True)
      Image.fromarray(image.squeeze(-1) if shape[-1] == 1 else image).save(
          folder / f"{index:04d}.png"
      )
    written[split] = (images, labels)

  if as_archive:
    archive = root / f"{top_folder}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
      tar.add(base / top_folder, arcname=top_folder)
    written["path"] = archive
  else:
    written["path"] = base / top_folder
  return written


def write_tfds_dataset(
    data_dir: pathlib.Path, name: str, *, num_train: int = 12, num_test: int = 6
) -> dict:
  """Prepare a tiny `name` data set in tfds's array_record on-disk format.

  A builder with the registered data set's name, version and features writes
  `data_dir/<name>/<version>/`, so `tfds.data_source(name, data_dir=data_dir)`
  reads it as if tfds had downloaded and prepared it. Images are passed as PIL
  images, which tfds encodes without TensorFlow.
  """
  import tensorflow_datasets as tfds
  from tensorflow_datasets.core import registered

  registered_builder = tfds.builder_cls(name)
  num_classes = 100 if name == "cifar100" else 10
  shape = (28, 28, 1) if name == "fashion_mnist" else (32, 32, 3)
  splits = {
      "train": random_split(5, num_train, num_classes, shape),
      "test": random_split(6, num_test, num_classes, shape),
  }
  # tfds reads the class names of fashion_mnist from its builder code, so the
  # fixture must use those. CIFAR class names are read from the prepared files.
  if name == "fashion_mnist":
    class_names = list(tfds.builder(name, data_dir=str(data_dir)).info.features["label"].names)
  else:
    class_names = [f"fixture_{index}" for index in range(num_classes)]

  features = {
      "image": tfds.features.Image(shape=shape),
      "label": tfds.features.ClassLabel(names=class_names),
  }
  if name.startswith("cifar"):
    features["id"] = tfds.features.Text()
  if name == "cifar100":
    features["coarse_label"] = tfds.features.ClassLabel(num_classes=20)

  with registered.skip_registration():

    class FixtureBuilder(tfds.core.GeneratorBasedBuilder):
      VERSION = registered_builder.VERSION

      def _info(self):
        return tfds.core.DatasetInfo(
            builder=self, features=tfds.features.FeaturesDict(features)
        )

      def _split_generators(self, download_manager):
        del download_manager
        return {split: self._generate_examples(split) for split in splits}

      def _generate_examples(self, split):
        images, labels = splits[split]
        for index, (image, label) in enumerate(zip(images, labels)):
          pil_image = Image.fromarray(image.squeeze(-1) if shape[-1] == 1 else image)
          example = {"image": pil_image, "label": int(label)}
          if "id" in features:
            example["id"] = f"{split}_{index}"
          if "coarse_label" in features:
            example["coarse_label"] = int(label) % 20
          yield index, example

    FixtureBuilder.name = name

  FixtureBuilder(data_dir=str(data_dir), file_format="array_record").download_and_prepare()
  return {**splits, "class_names": class_names}
