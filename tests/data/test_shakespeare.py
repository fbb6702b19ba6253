"""Tiny Shakespeare as a named corpus (issue 12 item 1): resolution, hash check, nanoGPT's split."""

import hashlib
import warnings
from pathlib import Path

import pytest

from structlearn.data import corpus as corpus_mod
from structlearn.data.corpus import SHAKESPEARE_SHA256, read_corpus, shakespeare_path
from structlearn.data.text import load_text

FIXTURE = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 20


def _real_file() -> Path:
    try:
        return shakespeare_path()
    except FileNotFoundError:
        pytest.skip("Tiny Shakespeare is not present (set STRUCTLEARN_SHAKESPEARE or ../shared/data/)")


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    corpus_mod._read_named_corpus.cache_clear()


def test_env_variable_names_the_file_and_a_mismatching_hash_warns(tmp_path, monkeypatch) -> None:
    f = tmp_path / "tiny.txt"
    f.write_text(FIXTURE)
    monkeypatch.setenv("STRUCTLEARN_SHAKESPEARE", str(f))
    assert shakespeare_path() == f
    with pytest.warns(UserWarning, match="not Tiny Shakespeare's"):
        raw, fp = read_corpus("shakespeare")
    assert raw.decode() == FIXTURE and fp.source == f"shakespeare:{f}"
    # The fixture is not the real file: the library's default split, not nanoGPT's.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = load_text("shakespeare")
    n = len(FIXTURE)
    assert len(d.val) == int(n * 0.1) and len(d.train) == n - int(n * 0.1)


def test_a_plain_path_needs_no_name_and_no_warning(tmp_path) -> None:
    f = tmp_path / "tiny.txt"
    f.write_text(FIXTURE)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = load_text(str(f))
    assert d.tokenizer.chars == "".join(sorted(set(FIXTURE[: len(d.train)])))


def test_missing_file_is_one_line_naming_both_places(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("STRUCTLEARN_SHAKESPEARE", raising=False)
    monkeypatch.setattr(corpus_mod, "project_root", lambda: tmp_path / "proj")
    with pytest.raises(FileNotFoundError) as exc:
        load_text("shakespeare")
    msg = str(exc.value)
    assert "\n" not in msg and "STRUCTLEARN_SHAKESPEARE" in msg
    assert str(tmp_path / "shared" / "data" / "tinyshakespeare.txt") in msg
    monkeypatch.setenv("STRUCTLEARN_SHAKESPEARE", str(tmp_path / "nope.txt"))
    with pytest.raises(FileNotFoundError, match=r"nope\.txt is not a file"):
        load_text("shakespeare")


def test_shared_folder_is_found_beside_the_project(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("STRUCTLEARN_SHAKESPEARE", raising=False)
    shared = tmp_path / "shared" / "data"
    shared.mkdir(parents=True)
    (shared / "tinyshakespeare.txt").write_text(FIXTURE)
    monkeypatch.setattr(corpus_mod, "project_root", lambda: tmp_path / "proj")
    assert shakespeare_path() == shared / "tinyshakespeare.txt"


def test_real_corpus_has_nanogpts_vocabulary_and_split() -> None:
    path = _real_file()
    raw = path.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == SHAKESPEARE_SHA256
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the right file: no hash warning
        d = load_text("shakespeare")
    n = 1_115_394
    assert len(d.train) == int(n * 0.9) == 1_003_854 and len(d.val) == n - 1_003_854
    assert len(d.tokenizer.chars) == 65 and d.vocab_size == 66  # 65 symbols + the reserved unknown id
    # Every validation character is in the vocabulary (no unknown id), and decoding restores the text.
    assert int(d.val.min()) >= 1
    assert d.tokenizer.decode(d.val[:200]) == raw.decode()[1_003_854 : 1_003_854 + 200]
    same = load_text(str(path))  # by path: the same split and vocabulary
    assert len(same.train) == len(d.train) and same.tokenizer.chars == d.tokenizer.chars


def test_cli_missing_corpus_exits_2_with_one_line(tmp_path, monkeypatch, capsys) -> None:
    from structlearn.cli import main

    monkeypatch.setenv("STRUCTLEARN_SHAKESPEARE", str(tmp_path / "missing.txt"))
    assert main(["train", "--corpus", "shakespeare", "--steps", "2", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "missing.txt is not a file" in err
