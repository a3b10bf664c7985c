"""Data sets on real files (../shared/data, skipped cleanly when absent) and on files the
tests write, including broken ones: every error names the file and where it goes wrong."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from PIL import Image

from minigrad.data import DataLoader
from minigrad.data import transforms as T
from minigrad.data.datasets import (
    MNIST,
    SST2,
    CharCorpus,
    CoNLL,
    CSVDataset,
    Digits,
    ImageFolder,
    read_idx,
)


def need(shared_data, *parts):
    path = shared_data.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return path


def write_idx(path, array, magic):
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def test_mnist_official_test_set(shared_data):
    root = need(shared_data, "mnist")
    test = MNIST(root, train=False)
    assert len(test) == 10000 and np.bincount(test.targets).min() > 850
    x, y = test[0]
    assert x.shape == (1, 28, 28) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    batch = next(iter(DataLoader(MNIST(root, train=False, transform=T.ToTensor()), batch_size=4)))
    assert batch[0].shape == (4, 1, 28, 28)


def test_mnist_from_idx_files_the_test_writes(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28))
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images, 2051)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.arange(5), 2049)  # raw, not gzipped
    data = MNIST(tmp_path, train=True)
    assert len(data) == 5 and data[3][1] == 3
    np.testing.assert_allclose(data[2][0][0], images[2] / 255.0, rtol=1e-6)


def test_mnist_wrong_magic_truncated_and_missing(tmp_path):
    write_idx(tmp_path / "bad-magic", np.zeros((2, 28, 28)), 2049)
    with pytest.raises(ValueError, match=r"bad-magic has magic number 2049, expected 2051"):
        read_idx(tmp_path / "bad-magic", 2051)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((3, 28, 28)), 2051)
    raw = (tmp_path / "t10k-images-idx3-ubyte").read_bytes()
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(raw[:-100])
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(3), 2049)
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte is truncated or padded"):
        MNIST(tmp_path, train=False)
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte\\(.gz\\) not found"):
        MNIST(tmp_path, train=True)


def test_image_folder_classes_and_unreadable_files(tmp_path):
    for cls, color in (("cat", 10), ("dog", 200)):
        (tmp_path / cls).mkdir()
        for k in range(2):
            Image.new("RGB", (6, 4), (color, k, 0)).save(tmp_path / cls / f"{k}.png")
    (tmp_path / "dog" / "broken.png").write_bytes(b"not an image")
    data = ImageFolder(tmp_path, transform=T.ToTensor())
    assert data.classes == ["cat", "dog"] and len(data) == 5
    x, y = data[0]
    assert x.shape == (3, 4, 6) and y == 0
    with pytest.raises(ValueError, match=r"cannot read image .*broken.png"):
        data[4]  # cat 0, cat 1, dog 0, dog 1, dog broken
    with pytest.warns(UserWarning, match="skipping unreadable image .*broken.png"):
        skipped = ImageFolder(tmp_path, skip_unreadable=True)
    assert len(skipped) == 4


def test_csv_missing_values_scaling_and_errors(tmp_path):
    train = tmp_path / "train.csv"
    train.write_text(
        "age,city,income,label\n20,paris,100,yes\n,rome,,no\n40,paris,300,yes\n60,,200,no\n"
    )
    test = tmp_path / "test.csv"
    test.write_text("age,city,income,label\n50,oslo,,yes\n")
    data = CSVDataset(train, "label", categorical=["city"], missing="median", indicators=True)
    pre = data.preprocessor
    np.testing.assert_allclose(pre.fill, [40.0, 200.0])  # medians of the training split
    assert data.features.shape == (4, 2 + 2 + 2)  # numeric, indicators, paris/rome one-hot
    assert data.targets.tolist() == [1, 0, 1, 0] and pre.target_names == ["no", "yes"]
    np.testing.assert_allclose(data.features[:, :2].mean(0), 0, atol=1e-6)
    other = CSVDataset(test, "label", preprocessor=pre)  # scaled with the training statistics
    expected_age = (50 - pre.mean[0]) / pre.std[0]
    np.testing.assert_allclose(other.features[0, 0], expected_age, rtol=1e-6)
    assert other.features[0, 3] == 1.0 and other.features[0, 4:].sum() == 0  # unseen city
    dropped = CSVDataset(train, "label", categorical=["city"], missing="drop")
    assert len(dropped) == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("age,label\n20,1\ntwenty,0\n")
    with pytest.raises(ValueError, match=r"bad.csv: row 3, column 'age': 'twenty' is not a number"):
        CSVDataset(bad, "label")
    with pytest.raises(ValueError, match="no target column 'y'"):
        CSVDataset(train, "y", categorical=["city"])


def test_text_readers(tmp_path, shared_data):
    conll = tmp_path / "a.conll"
    conll.write_text("Paris\tB-location\nis\tO\n\nhi\tO\nbroken-line\n")
    with pytest.raises(ValueError, match=r"a.conll line 5: expected 'token<TAB>tag'"):
        CoNLL(conll)
    sst = tmp_path / "s.txt"
    sst.write_text("1 a fine film\n2 what\n")
    with pytest.raises(ValueError, match=r"s.txt line 2: expected '<0\|1> <sentence>'"):
        SST2(sst)
    wnut = CoNLL(need(shared_data, "wnut17", "wnut17train.conll"))
    assert len(wnut) == 3394 and "B-person" in wnut.tag_names
    assert len(SST2(need(shared_data, "sst2", "stsa.binary.test"))) == 1821
    path = need(shared_data, "tinyshakespeare", "input.txt")
    train = CharCorpus(path, block_size=32)
    val = CharCorpus(path, block_size=32, split="val", tokenizer=train.tokenizer)
    x, y = train[100]
    assert x.shape == (32,) and np.array_equal(x[1:], y[:-1])
    assert train.tokenizer.vocab_size == 67 and len(val) < len(train) / 8


def test_digits():
    pytest.importorskip("sklearn")
    train, test = Digits(), Digits(train=False)
    assert len(train) + len(test) == 1797
    x, y = train[0]
    assert x.shape == (1, 8, 8) and 0 <= y < 10


def test_mnist1d_follows_the_published_procedure():
    from minigrad.data.datasets import MNIST1D, make_mnist1d, mnist1d_templates

    t = mnist1d_templates()
    assert t.shape == (10, 12) and np.allclose(t[:, 0], 0)  # every template starts at 0
    train, test = MNIST1D(), MNIST1D(train=False)
    assert len(train) == 4000 and len(test) == 1000
    x, y = train[0]
    assert x.shape == (40,) and x.dtype == np.float32
    both = np.concatenate([train.data, test.data])
    assert abs(both.mean()) < 1e-6 and abs(both.std() - 1) < 1e-5
    assert np.bincount(np.concatenate([train.targets, test.targets])).tolist() == [500] * 10
    again = make_mnist1d()
    np.testing.assert_array_equal(again["x"].astype(np.float32), train.data)  # seed 42
    assert not np.array_equal(make_mnist1d(seed=1)["x"], again["x"])
    assert make_mnist1d(num_samples=100, final_seq_length=20)["x"].shape == (80, 20)
    # the paper's linear baseline reaches 32 %: a wrong shift, noise or scale moves it
    linear = pytest.importorskip("sklearn.linear_model")
    model = linear.LogisticRegression(max_iter=2000).fit(train.data, train.targets)
    assert 0.27 < model.score(test.data, test.targets) < 0.37


def test_mnist_download_without_a_network_says_so(tmp_path, monkeypatch):
    from minigrad.data import datasets

    monkeypatch.setattr(datasets, "MNIST_MIRRORS", ["http://127.0.0.1:9/"])  # refuses
    with pytest.raises(RuntimeError, match=r"cannot download t10k-images-idx3-ubyte.gz .*Copy"):
        MNIST(tmp_path / "mnist", train=False, download=True)


def test_names_splits_and_mnist_csv(tmp_path):
    from minigrad.data.datasets import mnist_csv, names_splits

    (tmp_path / "names.txt").write_text("ab\nba\nabc\ncab\nbc\n")
    train, dev, test, vocab = names_splits(tmp_path / "names.txt", context=2, seed=0)
    assert vocab == 4  # '.', a, b, c
    assert len(train) + len(dev) + len(test) == sum(len(w) + 1 for w in "ab ba abc cab bc".split())
    x, y = train[0]
    assert x.shape == (2,) and x.tolist() == [0, 0]  # every name starts from '.' '.'
    rows = np.zeros((3, 785), np.int64)
    rows[:, 784] = [3, 1, 4]
    rows[1, 0] = 255
    np.savetxt(tmp_path / "m.csv", rows, fmt="%d", delimiter=",")
    data = mnist_csv(tmp_path / "m.csv")
    images, labels = data[1]
    assert images.shape == (1, 28, 28) and images[0, 0, 0] == 1.0 and int(labels) == 1
    np.savetxt(tmp_path / "bad.csv", rows[:, :10], fmt="%d", delimiter=",")
    with pytest.raises(ValueError, match="bad.csv has 10 columns, expected 785"):
        mnist_csv(tmp_path / "bad.csv")


def test_csv_never_changes_the_data_silently(tmp_path):
    from minigrad.data.datasets import CSVDataset

    def table(name, text):
        (tmp_path / name).write_text(text)
        return tmp_path / name

    empty_target = table("t.csv", "x,label\n1,cat\n2,\n3,dog\n")
    with pytest.raises(ValueError, match=r"t.csv: row 3: the target 'label' is missing"):
        CSVDataset(empty_target, target="label")
    dropped = CSVDataset(empty_target, target="label", missing="drop")
    assert len(dropped) == 2 and dropped.preprocessor.target_names == ["cat", "dog"]
    with pytest.raises(ValueError, match=r"row 3, column 'x': 'inf' is not finite"):
        CSVDataset(table("i.csv", "x,label\n1,0\ninf,1\n"), target="label")
    with pytest.raises(ValueError, match=r"the header names \['x'\] more than once"):
        CSVDataset(table("d.csv", "x,x,label\n1,2,0\n"), target="label")
    (tmp_path / "b.csv").write_bytes(b"x,label\n1,\xff\n")
    with pytest.raises(ValueError, match="b.csv is not UTF-8 text"):
        CSVDataset(tmp_path / "b.csv", target="label")
    # the test split uses the training split's classes, never its own numbering
    train = CSVDataset(table("tr.csv", "x,label\n1,cat\n2,dog\n"), target="label")
    test = CSVDataset(
        table("te.csv", "x,label\n1,dog\n"), target="label", preprocessor=train.preprocessor
    )
    assert test.targets.tolist() == [1]
    with pytest.raises(ValueError, match="target 'bird' is not one of the training table's"):
        CSVDataset(
            table("te2.csv", "x,label\n1,bird\n"), target="label", preprocessor=train.preprocessor
        )


def test_idx_headers_are_checked_before_inflating(tmp_path):
    from minigrad.data.datasets import read_idx

    # a 2051 (images) header claiming 60000 x 28 x 28 over a few bytes of gzip
    header = struct.pack(">IIII", 2051, 60000, 28, 28)
    with gzip.open(tmp_path / "bomb-idx3-ubyte.gz", "wb") as f:
        f.write(header + b"\0" * 10)
    with pytest.raises(ValueError, match="more than its .* bytes can hold"):
        read_idx(tmp_path / "bomb-idx3-ubyte.gz", 2051)
    # dimensions whose product overflows int64
    (tmp_path / "huge-idx3-ubyte").write_bytes(
        struct.pack(">IIII", 2051, 2**32 - 1, 2**32 - 1, 2**32 - 1)
    )
    with pytest.raises(ValueError, match="more than its 16 bytes can hold"):
        read_idx(tmp_path / "huge-idx3-ubyte", 2051)
    payload = np.random.default_rng(0).integers(0, 256, 2000).astype(np.uint8).tobytes()
    raw = bytearray(gzip.compress(header[:4] + struct.pack(">III", 2, 1000, 1) + payload))
    raw[len(raw) // 2] ^= 0xFF  # a corrupt deflate stream
    (tmp_path / "bad-idx3-ubyte.gz").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="cannot read .*bad-idx3-ubyte.gz"):
        read_idx(tmp_path / "bad-idx3-ubyte.gz", 2051)


def test_parameters_are_validated_at_construction(tmp_path):
    from minigrad.data import IterableDataset
    from minigrad.data.datasets import CharCorpus

    (tmp_path / "t.txt").write_text("abcdefghij" * 10)
    with pytest.raises(ValueError, match="block_size must be a positive int, got 0"):
        CharCorpus(tmp_path / "t.txt", block_size=0)
    with pytest.raises(ValueError, match=r"val_fraction must be in \(0, 1\), got 1.5"):
        CharCorpus(tmp_path / "t.txt", block_size=4, val_fraction=1.5)

    class Stream(IterableDataset):
        def __iter__(self):
            return iter(range(10))

    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="batch_size must be a positive int"):
            DataLoader(Stream(), batch_size=bad)


def test_training_on_nothing_is_an_error(tmp_path):
    import minigrad as mg
    import minigrad.nn as nn
    from minigrad.data import TensorDataset
    from minigrad.train import Trainer, TrainingArguments

    empty = TensorDataset(np.zeros((0, 3), np.float32), np.zeros(0, np.int64))
    args = TrainingArguments(str(tmp_path), num_train_epochs=1, disable_tqdm=True)
    with pytest.raises(ValueError, match="the train_dataset gives no batch \\(0 samples"):
        Trainer(nn.Linear(3, 2), args, train_dataset=empty).train()
    assert mg is not None


def test_text_files_that_are_not_utf8_name_themselves(tmp_path):
    from minigrad.data.datasets import SST2, CharCorpus, read_conll

    (tmp_path / "x.txt").write_bytes(b"good text \xff\xfe then more" * 10)
    with pytest.raises(ValueError, match="x.txt is not UTF-8"):
        read_conll(tmp_path / "x.txt")
    with pytest.raises(ValueError, match="x.txt is not UTF-8"):
        SST2(tmp_path / "x.txt")
    with pytest.raises(ValueError, match="x.txt is not UTF-8"):
        CharCorpus(tmp_path / "x.txt", block_size=4)
