from pathlib import Path

import numpy as np
import pytest

from structlearn.utils.io import atomic_open, save_npy, write_json


def test_atomic_open_publishes_on_success(tmp_path: Path) -> None:
    dest = tmp_path / "sub" / "out.txt"
    with atomic_open(dest, "w") as fh:
        fh.write("hello")
        assert not dest.exists()  # nothing visible before the body finishes
    assert dest.read_text() == "hello"
    assert [p.name for p in dest.parent.iterdir()] == ["out.txt"]


def test_atomic_open_leaves_previous_file_on_error(tmp_path: Path) -> None:
    dest = tmp_path / "out.txt"
    dest.write_text("old")
    with pytest.raises(RuntimeError), atomic_open(dest, "w") as fh:
        fh.write("partial")
        raise RuntimeError("boom")
    assert dest.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_write_json_rejects_nan_without_writing(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_json(tmp_path / "x.json", {"a": float("nan")})
    assert not (tmp_path / "x.json").exists()


def test_save_npy_round_trip_and_refuses_objects(tmp_path: Path) -> None:
    save_npy(tmp_path / "a.npy", np.arange(5))
    assert np.load(tmp_path / "a.npy").tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="object"):
        save_npy(tmp_path / "b.npy", np.array([{"a": 1}], dtype=object))
    assert not (tmp_path / "b.npy").exists()


def test_published_files_get_default_permissions(tmp_path: Path) -> None:
    import os

    umask = os.umask(0o022)
    try:
        write_json(tmp_path / "p.json", {"a": 1})
    finally:
        os.umask(umask)
    assert (tmp_path / "p.json").stat().st_mode & 0o777 == 0o644


def test_destination_that_is_a_directory_is_named_not_the_temporary_file(tmp_path: Path) -> None:
    from structlearn.utils.io import OutputError

    (tmp_path / "x.json").mkdir()
    with pytest.raises(OutputError) as info:
        write_json(tmp_path / "x.json", {"a": 1})
    assert str(info.value) == f"cannot write {tmp_path / 'x.json'}: Is a directory"
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]  # no temporary file left
