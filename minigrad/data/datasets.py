"""Data sets that read real files from a path the caller gives.

A missing or malformed file raises an error that names it (and the line, row or column
where it goes wrong); nothing is downloaded unless asked, and nothing is copied.
"""

from __future__ import annotations

import csv
import gzip
import math
import os
import struct
import urllib.error
import urllib.request
import warnings
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from minigrad.data.dataset import Dataset, TensorDataset
from minigrad.data.text import CharTokenizer, Tokenizer

# DEFLATE shrinks data by at most about 1032:1: a gzipped file announcing more is lying
_MAX_DEFLATE_RATIO = 1100

# -- scikit-learn's digits -----------------------------------------------------------------


class Digits(Dataset):
    """scikit-learn's bundled 8x8 digits (1,797 images, no download): samples are
    (image (1, 8, 8) float32 in [0, 1], label). A permutation drawn with ``seed`` puts the
    first ``test_fraction`` of the images (rounded down) in the test split and the rest in
    the train split; the README's main job trains on it."""

    def __init__(
        self,
        train: bool = True,
        test_fraction: float = 0.2,
        seed: int = 0,
        transform: Callable | None = None,
    ) -> None:
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise ImportError(
                "Digits needs scikit-learn (its bundled data): pip install 'minigrad[datasets]'"
            ) from None
        d = load_digits()
        order = np.random.default_rng(seed).permutation(len(d.target))
        n_test = int(len(order) * test_fraction)
        idx = order[n_test:] if train else order[:n_test]
        self.images = (d.images[idx] / 16.0).astype(np.float32)[:, None]
        self.targets = d.target[idx].astype(np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple:
        x = self.images[i]
        return (self.transform(x) if self.transform else x), int(self.targets[i])


# -- MNIST (IDX files) -----------------------------------------------------------------------

MNIST_MIRRORS = ["https://ossci-datasets.s3.amazonaws.com/mnist/"]
_MNIST_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path: str | os.PathLike, expected_magic: int) -> np.ndarray:
    """An IDX array (big-endian header, uint8 data), gzipped or raw, fully validated: the
    header is read first, and no more data than it announces (and than the compressed file
    can hold) is ever inflated or allocated."""
    path = Path(path)
    gzipped = path.suffix == ".gz"
    try:
        stored = path.stat().st_size
        with (gzip.open if gzipped else open)(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4:
                raise ValueError(f"MNIST: {path} is truncated ({len(head)} bytes, no header)")
            magic = struct.unpack(">I", head)[0]
            if magic != expected_magic:
                raise ValueError(
                    f"MNIST: {path} has magic number {magic}, expected {expected_magic} "
                    "(is it an IDX file of the right kind?)"
                )
            ndim = magic & 0xFF
            dims_raw = f.read(4 * ndim)
            if len(dims_raw) < 4 * ndim:
                raise ValueError(f"MNIST: {path} is truncated inside its header")
            dims = struct.unpack(f">{ndim}I", dims_raw)
            count = math.prod(dims)  # Python ints: no overflow
            room = stored * _MAX_DEFLATE_RATIO if gzipped else stored - 4 - 4 * ndim
            if count > room:
                raise ValueError(
                    f"MNIST: {path} is truncated or padded: the header says {dims} = {count} "
                    f"bytes of data, more than its {stored} bytes can hold"
                )
            data = f.read(count + 1)  # one more, to find trailing bytes
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"MNIST: cannot read {path} ({e})") from None
    if len(data) != count:
        raise ValueError(
            f"MNIST: {path} is truncated or padded: the header says {dims} = {count} bytes of "
            f"data, the file has {'more' if len(data) > count else len(data)}"
        )
    return np.frombuffer(data, np.uint8).reshape(dims)


def _find(root: Path, name: str) -> Path | None:
    for candidate in (
        root / name,
        root / f"{name}.gz",
        root / "MNIST" / "raw" / name,
        root / "MNIST" / "raw" / f"{name}.gz",
    ):
        if candidate.exists():
            return candidate
    return None


class MNIST(Dataset):
    """MNIST from its IDX files in ``root`` (``train-*`` or ``t10k-*``, gzipped or raw):
    samples are (image (1, 28, 28) float32 in [0, 1], or ``transform(PIL image)``, label).
    ``download=True`` fetches missing files from the official mirror when a network exists."""

    def __init__(
        self,
        root: str | os.PathLike,
        train: bool = True,
        download: bool = False,
        transform: Callable | None = None,
    ) -> None:
        self.root, self.train, self.transform = Path(root), train, transform
        paths = []
        for name in _MNIST_FILES[train]:
            path = _find(self.root, name)
            if path is None and download:
                path = self._download(name)
            if path is None:
                raise FileNotFoundError(
                    f"MNIST: {name}(.gz) not found in {self.root}; put the IDX files there or "
                    "pass download=True"
                )
            paths.append(path)
        self.images = read_idx(paths[0], 2051)
        self.targets = read_idx(paths[1], 2049).astype(np.int64)
        if self.images.ndim != 3 or len(self.images) != len(self.targets):
            raise ValueError(
                f"MNIST: {paths[0]} holds {self.images.shape} images but {paths[1]} "
                f"{self.targets.shape} labels"
            )

    def _download(self, name: str) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.root / f"{name}.gz"
        errors = []
        for mirror in MNIST_MIRRORS:
            try:
                with urllib.request.urlopen(f"{mirror}{name}.gz", timeout=20) as r:
                    data = r.read()
            except (urllib.error.URLError, OSError) as e:
                errors.append(f"{mirror}: {e}")
                continue
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
            return target
        raise RuntimeError(
            f"MNIST: cannot download {name}.gz (no network?): "
            + "; ".join(errors)
            + f". Copy the IDX files into {self.root} instead."
        )

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple:
        img = self.images[i]
        if self.transform is not None:
            return self.transform(Image.fromarray(img, mode="L")), int(self.targets[i])
        return (img.astype(np.float32) / 255.0)[None], int(self.targets[i])


# -- a folder of images ----------------------------------------------------------------------

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


class ImageFolder(Dataset):
    """``root/<class>/<image>``: one class per sub-folder (sorted), any Pillow-readable image.
    Samples are (transform(RGB image), class index). An unreadable file raises an error
    naming it when loaded, or, with ``skip_unreadable=True``, is found at construction and
    skipped with a warning."""

    def __init__(
        self,
        root: str | os.PathLike,
        transform: Callable | None = None,
        skip_unreadable: bool = False,
    ) -> None:
        self.root, self.transform = Path(root), transform
        if not self.root.is_dir():
            raise FileNotFoundError(f"ImageFolder: {self.root} is not a directory")
        self.classes = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        if not self.classes:
            raise ValueError(f"ImageFolder: {self.root} has no class sub-folders")
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self.samples = []
        for c in self.classes:
            for p in sorted((self.root / c).rglob("*")):
                if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file():
                    if skip_unreadable and not _readable(p):
                        warnings.warn(f"ImageFolder: skipping unreadable image {p}", stacklevel=2)
                        continue
                    self.samples.append((p, self.class_to_idx[c]))
        self.targets = [t for _, t in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple:
        path, target = self.samples[i]
        try:
            with Image.open(path) as im:
                img = im.convert("RGB")
        except (UnidentifiedImageError, OSError) as e:
            raise ValueError(f"ImageFolder: cannot read image {path} ({e})") from None
        return (self.transform(img) if self.transform else np.asarray(img)), target


def _readable(path: Path) -> bool:
    try:
        with Image.open(path) as im:
            im.load()
        return True
    except (UnidentifiedImageError, OSError):
        return False


# -- text ---------------------------------------------------------------------------------------


class CharCorpus(Dataset):
    """A character-level corpus (tiny shakespeare) for next-character prediction: the first
    ``1 - val_fraction`` of the text is the train split, the rest validation. Sample i is
    (x, y), ``block_size`` ids each, y being x shifted by one character. The tokenizer is
    trained on the whole text unless one is given, so both splits share it."""

    def __init__(
        self,
        path: str | os.PathLike,
        block_size: int,
        split: str = "train",
        val_fraction: float = 0.1,
        tokenizer: Tokenizer | None = None,
    ) -> None:
        if split not in ("train", "val"):
            raise ValueError(f"CharCorpus: split must be 'train' or 'val', got {split!r}")
        if not isinstance(block_size, int) or block_size < 1:
            raise ValueError(f"CharCorpus: block_size must be a positive int, got {block_size!r}")
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"CharCorpus: val_fraction must be in (0, 1), got {val_fraction!r}")
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FileNotFoundError(f"CharCorpus: {path} does not exist") from None
        except UnicodeDecodeError as e:
            raise ValueError(f"CharCorpus: {path} is not UTF-8 text ({e})") from None
        self.tokenizer = tokenizer or CharTokenizer.train(text)
        cut = int(len(text) * (1 - val_fraction))
        part = text[:cut] if split == "train" else text[cut:]
        self.data = np.array(self.tokenizer.encode(part), np.int64)
        if len(self.data) <= block_size:
            raise ValueError(
                f"CharCorpus: the {split} split has {len(self.data)} characters, not more than "
                f"block_size {block_size}"
            )
        self.block_size = block_size

    def __len__(self) -> int:
        return len(self.data) - self.block_size

    def __getitem__(self, i: int) -> tuple:
        chunk = self.data[i : i + self.block_size + 1]
        return chunk[:-1], chunk[1:]


def read_conll(path: str | os.PathLike) -> list[tuple[list[str], list[str]]]:
    """Sentences of a CoNLL file (``token<TAB>tag`` per line, a blank line between
    sentences), as (tokens, tags) pairs (WNUT-17's format)."""
    sentences, tokens, tags = [], [], []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise FileNotFoundError(f"read_conll: {path} does not exist") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"read_conll: {path} is not UTF-8 text (byte {e.start})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            if tokens:
                sentences.append((tokens, tags))
                tokens, tags = [], []
            continue
        parts = line.split("\t")
        if len(parts) < 2 or not parts[-1]:
            raise ValueError(
                f"read_conll: {path} line {number}: expected 'token<TAB>tag', got {line!r}"
            )
        tokens.append(parts[0])
        tags.append(parts[-1])
    if tokens:
        sentences.append((tokens, tags))
    return sentences


class CoNLL(Dataset):
    """Token-tagging sentences from a CoNLL file; samples are (tokens, tags) lists, and
    ``tag_names`` lists the tags seen, sorted (give the training set's to the others)."""

    def __init__(self, path: str | os.PathLike, tag_names: Sequence[str] | None = None) -> None:
        self.sentences = read_conll(path)
        seen = sorted({t for _, tags in self.sentences for t in tags})
        self.tag_names = list(tag_names) if tag_names is not None else seen
        unknown = set(seen) - set(self.tag_names)
        if unknown:
            raise ValueError(f"CoNLL: {path} has tags {sorted(unknown)} not in tag_names")

    def __len__(self) -> int:
        return len(self.sentences)

    def __getitem__(self, i: int) -> tuple:
        return self.sentences[i]


class SST2(Dataset):
    """Sentence classification lines ``<label> <sentence>`` (SST-2 as Kim split it): samples
    are (sentence, label)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.samples = []
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise FileNotFoundError(f"SST2: {path} does not exist") from None
        except UnicodeDecodeError as e:
            raise ValueError(f"SST2: {path} is not UTF-8 text (byte {e.start})") from None
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            label, _, sentence = line.partition(" ")
            if label not in ("0", "1") or not sentence.strip():
                raise ValueError(
                    f"SST2: {path} line {number}: expected '<0|1> <sentence>', got {line[:60]!r}"
                )
            self.samples.append((sentence.strip(), int(label)))

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple:
        return self.samples[i]


# -- tables ----------------------------------------------------------------------------------

_STRATEGIES = ("drop", "mean", "median", "most_frequent", "constant")


class TabularPreprocessor:
    """Turns a CSV table into numbers: numeric columns parsed (a non-numeric value is reported
    with its row and column), missing values handled by ``missing`` ('drop' rows, or fill with
    the 'mean', 'median', 'most_frequent' or a 'constant'), optional missing-indicator columns,
    categorical columns one-hot encoded, numeric columns standardized. ``fit`` learns every
    statistic from one table (the training split); ``transform`` applies them to any table."""

    def __init__(
        self,
        target: str,
        categorical: Sequence[str] = (),
        missing: str = "mean",
        fill_value: float = 0.0,
        indicators: bool = False,
        scale: bool = True,
    ) -> None:
        if missing not in _STRATEGIES:
            raise ValueError(f"TabularPreprocessor: missing must be one of {_STRATEGIES}")
        self.target, self.categorical = target, list(categorical)
        self.missing, self.fill_value = missing, fill_value
        self.indicators, self.scale = indicators, scale
        self.fitted = False

    def _numeric(self, rows, columns, path):
        out = np.empty((len(rows), len(columns)), np.float64)
        for j, col in enumerate(columns):
            for i, row in enumerate(rows):
                value = row[col].strip()
                if value == "" or value.upper() in ("NA", "NAN", "?"):
                    out[i, j] = np.nan
                    continue
                try:
                    out[i, j] = float(value)
                except ValueError:
                    raise ValueError(
                        f"{path}: row {i + 2}, column {col!r}: {value!r} is not a number "
                        f"(declare the column in categorical= if it is a category)"
                    ) from None
                if not np.isfinite(out[i, j]):
                    raise ValueError(
                        f"{path}: row {i + 2}, column {col!r}: {value!r} is not finite; "
                        f"replace it, or leave the cell empty to have missing={self.missing!r} "
                        "handle it"
                    )
        return out

    def _targets(self, rows, path):
        """The target cells; an empty one is an error, or its row is dropped with
        missing='drop' (a row is never given a made-up class)."""
        cells, keep = [], np.ones(len(rows), bool)
        for i, row in enumerate(rows):
            value = row[self.target].strip()
            if value == "" or value.upper() in ("NA", "NAN", "?"):
                if self.missing != "drop":
                    raise ValueError(
                        f"{path}: row {i + 2}: the target {self.target!r} is missing; fill it, "
                        "or pass missing='drop' to leave such rows out"
                    )
                keep[i] = False
            cells.append(value)
        return cells, keep

    def fit(self, rows: list[dict], path: str = "table") -> TabularPreprocessor:
        if not rows:
            raise ValueError(f"{path}: the table has no rows")
        if self.target not in rows[0]:
            raise ValueError(f"{path}: no target column {self.target!r} in {sorted(rows[0])}")
        self.numeric = [c for c in rows[0] if c != self.target and c not in self.categorical]
        values = self._numeric(rows, self.numeric, path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if self.missing == "mean":
                fill = np.nanmean(values, axis=0)
            elif self.missing == "median":
                fill = np.nanmedian(values, axis=0)
            elif self.missing == "most_frequent":
                fill = np.array([_mode(values[:, j]) for j in range(values.shape[1])])
            else:
                fill = np.full(values.shape[1], self.fill_value, np.float64)
        self.fill = np.where(np.isnan(fill), self.fill_value, fill)
        filled = np.where(np.isnan(values), self.fill, values)
        self.mean = filled.mean(axis=0) if self.scale else np.zeros(len(self.numeric))
        std = filled.std(axis=0) if self.scale else np.ones(len(self.numeric))
        self.std = np.where(std > 0, std, 1.0)
        self.categories = {
            c: sorted({row[c].strip() for row in rows if row[c].strip() != ""})
            for c in self.categorical
        }
        cells, keep = self._targets(rows, path)
        labels = [v for v, k in zip(cells, keep) if k]
        if all(_is_number(v) for v in labels):
            self.target_names = None  # numeric targets, used as they are
            bad = [v for v in labels if not np.isfinite(float(v))]
            if bad:
                raise ValueError(f"{path}: the target {self.target!r} has the value {bad[0]!r}")
        else:
            self.target_names = sorted(set(labels))  # class names, learned here only
        self.fitted = True
        return self

    def transform(self, rows: list[dict], path: str = "table") -> tuple[np.ndarray, np.ndarray]:
        """(features float32 (N, F), targets) of a table, with the fitted statistics."""
        if not self.fitted:
            raise RuntimeError("TabularPreprocessor: call fit() on the training table first")
        values = self._numeric(rows, self.numeric, path)
        missing = np.isnan(values)
        cells, keep = self._targets(rows, path)
        if self.missing == "drop":
            keep &= ~missing.any(axis=1) & np.array(
                [all(row[c].strip() != "" for c in self.categorical) for row in rows], bool
            )
        filled = np.where(missing, self.fill, values)
        parts = [(filled - self.mean) / self.std]
        if self.indicators:
            parts.append(missing.astype(np.float64))
        for c, cats in self.categories.items():
            index = {v: k for k, v in enumerate(cats)}
            onehot = np.zeros((len(rows), len(cats)))
            for i, row in enumerate(rows):
                k = index.get(row[c].strip())
                if k is not None:  # unseen or missing categories stay all-zero
                    onehot[i, k] = 1.0
            parts.append(onehot)
        features = np.concatenate(parts, axis=1)[keep].astype(np.float32)
        raw = [(i, v) for i, (v, k) in enumerate(zip(cells, keep)) if k]
        if self.target_names is None:
            try:
                targets = np.array([float(v) for _, v in raw])
            except ValueError:
                i, v = next((i, v) for i, v in raw if not _is_number(v))
                raise ValueError(
                    f"{path}: row {i + 2}: target {v!r} is not a number, but the training "
                    "table's targets were"
                ) from None
            if np.all(targets == np.round(targets)):
                targets = targets.astype(np.int64)
            return features, targets
        index = {name: k for k, name in enumerate(self.target_names)}
        unknown = [(i, v) for i, v in raw if v not in index]
        if unknown:
            i, v = unknown[0]
            raise ValueError(
                f"{path}: row {i + 2}: target {v!r} is not one of the training table's "
                f"classes {self.target_names}"
            )
        return features, np.array([index[v] for _, v in raw], np.int64)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _mode(column: np.ndarray) -> float:
    column = column[~np.isnan(column)]
    if column.size == 0:
        return np.nan
    values, counts = np.unique(column, return_counts=True)
    return float(values[np.argmax(counts)])


def read_csv_rows(path: str | os.PathLike) -> list[dict]:
    """The rows of a CSV file with a header line, as dicts; a file that is not UTF-8, a header
    that repeats a name, or a row with another number of fields is refused with its line."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            repeated = sorted({name for name in header if header.count(name) > 1})
            if repeated:
                raise ValueError(f"{path}: the header names {repeated} more than once")
            rows = list(reader)
    except FileNotFoundError:
        raise FileNotFoundError(f"CSVDataset: {path} does not exist") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not UTF-8 text (byte {e.start}: {e.reason})") from None
    except csv.Error as e:
        raise ValueError(f"{path}: not a readable CSV table ({e})") from None
    for i, row in enumerate(rows):
        if None in row or any(v is None for v in row.values()):
            raise ValueError(
                f"{path}: row {i + 2} has a different number of fields than the header"
            )
    return rows


class CSVDataset(Dataset):
    """A CSV table as (features float32, target) samples, through a TabularPreprocessor that is
    fitted on this table unless ``preprocessor`` (fitted on the training split) is given:

        train = CSVDataset("train.csv", target="label", categorical=["city"], missing="median")
        test = CSVDataset("test.csv", target="label", preprocessor=train.preprocessor)
    """

    def __init__(
        self,
        path: str | os.PathLike,
        target: str,
        categorical: Sequence[str] = (),
        missing: str = "mean",
        fill_value: float = 0.0,
        indicators: bool = False,
        scale: bool = True,
        preprocessor: TabularPreprocessor | None = None,
    ) -> None:
        rows = read_csv_rows(path)
        if preprocessor is None:
            preprocessor = TabularPreprocessor(
                target, categorical, missing, fill_value, indicators, scale
            ).fit(rows, str(path))
        self.preprocessor = preprocessor
        self.features, self.targets = preprocessor.transform(rows, str(path))

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple:
        return self.features[i], self.targets[i].item()


__all__ = [
    "CSVDataset",
    "CharCorpus",
    "CoNLL",
    "Digits",
    "ImageFolder",
    "MNIST",
    "MNIST1D",
    "make_mnist1d",
    "mnist1d_templates",
    "SST2",
    "TabularPreprocessor",
    "read_conll",
    "read_idx",
]


# -- MNIST-1D -----------------------------------------------------------------------------------

# The ten digit shapes of the MNIST-1D paper (Greydanus, 2020): 12 points each, as published.
_MNIST1D_SHAPES = np.array(
    [
        [5, 6, 6.5, 6.75, 7, 7, 7, 7, 6.75, 6.5, 6, 5],
        [5, 3, 3, 3.4, 3.8, 4.2, 4.6, 5, 5.4, 5.8, 5, 5],
        [5, 6, 6.5, 6.5, 6, 5.25, 4.75, 4, 3.5, 3.5, 4, 5],
        [5, 6, 6.5, 6.5, 6, 5, 5, 6, 6.5, 6.5, 6, 5],
        [5, 4.4, 3.8, 3.2, 2.6, 2.6, 5, 5, 5, 5, 5, 5],
        [5, 3, 3, 3, 3, 5, 6, 6.5, 6.5, 6, 4.5, 5],
        [5, 4, 3.5, 3.25, 3, 3, 3, 3, 3.25, 3.5, 4, 5],
        [5, 7, 7, 6.6, 6.2, 5.8, 5.4, 5, 4.6, 4.2, 5, 5],
        [5, 4, 3.5, 3.5, 4, 5, 5, 4, 3.5, 3.5, 4, 5],
        [5, 4, 3.5, 3.5, 4, 5, 5, 5, 5, 4.7, 4.3, 5],
    ]
)


def mnist1d_templates() -> np.ndarray:
    """The ten templates (10, 12): each shape standardized, shifted to start at 0, / 6."""
    x = _MNIST1D_SHAPES - _MNIST1D_SHAPES.mean(1, keepdims=True)
    x = x / x.std(1, keepdims=True)
    return (x - x[:, :1]) / 6.0


def _resample(x: np.ndarray, n: int) -> np.ndarray:
    """Linear interpolation of x onto n evenly spaced points over the same span."""
    return np.interp(np.linspace(0, 1, n), np.linspace(0, 1, len(x)), x)


def make_mnist1d(
    num_samples: int = 5000,
    train_split: float = 0.8,
    template_len: int = 12,
    padding: tuple[int, int] = (36, 60),
    scale_coeff: float = 0.4,
    max_translation: int = 48,
    corr_noise_scale: float = 0.25,
    iid_noise_scale: float = 2e-2,
    shear_scale: float = 0.75,
    shuffle_seq: bool = False,
    final_seq_length: int = 40,
    seed: int = 42,
) -> dict[str, np.ndarray]:
    """Generate MNIST-1D by the paper's procedure, with its parameters (the defaults are the
    published ones: 4,000 train and 1,000 test sequences of length 40 at seed 42).

    Each sample takes a digit's template and, in this order: pads it with a random number of
    zeros in [padding], resamples it to template_len + padding[1] points, scales it by a
    random factor in 1 +- scale_coeff / 2, rotates it by a random shift below
    max_translation, fills the padding with correlated noise (white noise smoothed by a
    Gaussian of width 2) and adds white noise everywhere, shears it (adds a random linear
    ramp), and resamples it to final_seq_length. The whole set is then shuffled and
    standardized. The draws come from NumPy's legacy generator seeded with ``seed`` in the
    order the reference implementation makes them.
    """
    from scipy.ndimage import gaussian_filter1d

    templates = mnist1d_templates()
    if templates.shape[1] != template_len:
        raise ValueError(f"make_mnist1d: the templates have {templates.shape[1]} points")
    rng = np.random.RandomState(seed)
    per_class = num_samples // len(templates)
    xs, ys = [], []
    low, high = padding
    for label, template in enumerate(templates):
        for _ in range(per_class):
            pad = low + int(rng.rand() * (high - low + 1))
            x = np.concatenate([template + 1e-8, np.zeros(pad)])  # nonzero marks the digit
            x = _resample(x, template_len + high)
            x = x * (1 + scale_coeff * (rng.rand() - 0.5))
            x = np.roll(x, rng.randint(0, max_translation))
            digit = x != 0
            noise = gaussian_filter1d(corr_noise_scale * rng.randn(len(x)), 2)
            x = np.where(digit, x, noise)
            x = x + iid_noise_scale * rng.randn(len(x))
            x = x - shear_scale * (rng.rand() - 0.5) * np.linspace(-0.5, 0.5, len(x))
            xs.append(_resample(x, final_seq_length))
            ys.append(label)
    order = rng.permutation(len(ys))
    xs, ys = np.stack(xs)[order], np.array(ys, np.int64)[order]
    if shuffle_seq:
        xs = xs[:, rng.permutation(final_seq_length)]
    xs = (xs - xs.mean()) / xs.std()
    cut = int(len(ys) * train_split)
    return {"x": xs[:cut], "y": ys[:cut], "x_test": xs[cut:], "y_test": ys[cut:]}


class MNIST1D(Dataset):
    """MNIST-1D (Greydanus, 2020), generated here by ``make_mnist1d`` (no download):
    samples are (sequence (40,) float32, label). Keyword arguments are the generator's
    parameters; the defaults give the published 4,000 / 1,000 split at seed 42."""

    def __init__(self, train: bool = True, **params: Any) -> None:
        data = make_mnist1d(**params)
        self.params = params
        x, y = (data["x"], data["y"]) if train else (data["x_test"], data["y_test"])
        self.data, self.targets = x.astype(np.float32), y

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple:
        return self.data[i], int(self.targets[i])


# -- the recipes' other data files -----------------------------------------------------------


def mnist_csv(path: str | os.PathLike) -> TensorDataset:
    """MNIST images from a CSV file of 784 pixel columns (0-255) then the label per row (the
    5,000-image training sample in ``../shared/data/mnist``): images (N, 1, 28, 28) float32
    in [0, 1], labels int64."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt") as f:
            raw = np.loadtxt(f, delimiter=",", dtype=np.float32, ndmin=2)
    except FileNotFoundError:
        raise FileNotFoundError(f"mnist_csv: {path} does not exist") from None
    if raw.shape[1] != 785:
        raise ValueError(f"mnist_csv: {path} has {raw.shape[1]} columns, expected 785")
    x = (raw[:, :784] / 255.0).reshape(-1, 1, 28, 28)
    return TensorDataset(x, raw[:, 784].astype(np.int64))


def names_splits(path: str | os.PathLike, context: int = 3, seed: int = 42) -> tuple:
    """makemore's data from a file of names, one per line: the names shuffled with ``seed``
    and split 80 / 10 / 10 % into train, dev and test, each as (``context`` previous
    characters, next character) pairs, '.' (id 0) marking both ends of a name. Returns
    (train, dev, test, vocabulary size)."""
    import random as pyrandom

    try:
        words = Path(path).read_text(encoding="utf-8").split()
    except FileNotFoundError:
        raise FileNotFoundError(f"names_splits: {path} does not exist") from None
    pyrandom.Random(seed).shuffle(words)
    chars = sorted(set("".join(words)))
    stoi = {c: i + 1 for i, c in enumerate(chars)}
    stoi["."] = 0

    def build(ws):
        xs, ys = [], []
        for w in ws:
            ctx = [0] * context
            for ch in w + ".":
                xs.append(ctx)
                ys.append(stoi[ch])
                ctx = ctx[1:] + [stoi[ch]]
        return TensorDataset(np.array(xs, np.int64).reshape(-1, context), np.array(ys, np.int64))

    n1, n2 = int(0.8 * len(words)), int(0.9 * len(words))
    return build(words[:n1]), build(words[n1:n2]), build(words[n2:]), len(stoi)
