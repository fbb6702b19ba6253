import gzip
from pathlib import Path

import numpy as np
import pytest

from structlearn.data.images import (
    fashion_mnist_available,
    load_digits,
    load_fashion_mnist,
    load_image_dataset,
    load_mnist1d,
)


def test_digits_split_is_stratified_and_scaled() -> None:
    d = load_digits()
    assert d.x_train.shape[1:] == (8, 8) and len(d.x_train) + len(d.x_test) == 1797
    assert d.x_train.min() >= 0.0 and d.x_train.max() <= 1.0
    assert np.bincount(d.y_test).min() >= 30
    x, y = d.flat("all")
    assert x.shape == (1797, 64) and y.shape == (1797,)


def test_mnist1d_is_generated_offline_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRUCTLEARN_CACHE", str(tmp_path))
    before = np.random.get_state()[1].copy()
    a = load_mnist1d(n_samples=200)
    assert np.array_equal(np.random.get_state()[1], before)  # global RNG untouched
    assert a.x_train.shape == (160, 1, 40) and a.x_test.shape == (40, 1, 40)
    assert len(list(tmp_path.glob("mnist1d_*.npz"))) == 1
    b = load_mnist1d(n_samples=200)
    assert np.array_equal(a.x_train, b.x_train)


def test_missing_fashion_mnist_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path)


def _write_idx(path: Path, magic: int, arr: np.ndarray) -> None:
    header = magic.to_bytes(4, "big") + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + arr.astype(np.uint8).tobytes())


def test_idx_parser_on_synthetic_files(tmp_path: Path) -> None:
    imgs = np.arange(3 * 28 * 28).reshape(3, 28, 28) % 256
    labels = np.array([1, 2, 3])
    for prefix in ("train", "t10k"):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", 2051, imgs)
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", 2049, labels)
    d = load_fashion_mnist(tmp_path)
    assert d.x_train.shape == (3, 28, 28) and d.y_train.tolist() == [1, 2, 3]
    assert d.x_train[0, 0, 5] == pytest.approx(5 / 255)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", 2051, labels)  # wrong magic number
    with pytest.raises(ValueError, match="magic"):
        load_fashion_mnist(tmp_path)


@pytest.mark.skipif(not fashion_mnist_available(), reason="dataset-fashion-mnist is not installed")
def test_real_fashion_mnist() -> None:
    d = load_fashion_mnist()
    assert d.x_train.shape == (60000, 28, 28) and d.x_test.shape == (10000, 28, 28)
    assert np.bincount(d.y_train).tolist() == [6000] * 10


def test_unknown_dataset_name() -> None:
    with pytest.raises(ValueError, match="unknown dataset 'cifar10'"):
        load_image_dataset("cifar10")
