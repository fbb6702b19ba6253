import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from structlearn.data.corpus import pydoc_files, read_corpus, stdlib_files, stdlib_root
from structlearn.data.text import (
    ByteTokenizer,
    CharTokenizer,
    load_text,
    sample_batch,
    tokenizer_from_state,
)


def test_char_tokenizer_reserves_an_unknown_id() -> None:
    tok = CharTokenizer.fit("banana")
    assert tok.chars == "abn" and tok.vocab_size == 4
    ids = tok.encode("nab!")
    assert ids.tolist() == [3, 1, 2, 0]  # '!' was not in the vocabulary
    assert tok.decode(tok.encode("ban")) == "ban"
    assert tok.decode([0]) == "\ufffd"
    assert tokenizer_from_state(tok.state_dict()).chars == "abn"


def test_char_tokenizer_handles_non_ascii() -> None:
    tok = CharTokenizer.fit("αβγ😀x")
    assert tok.decode(tok.encode("γ😀x")) == "γ😀x"


def test_byte_tokenizer_roundtrip() -> None:
    tok = ByteTokenizer()
    ids = tok.encode("héllo")
    assert ids.dtype == np.int64 and len(ids) == 6 and ids.max() < 256
    assert tok.decode(ids) == "héllo"
    assert tokenizer_from_state(tok.state_dict()).vocab_size == 256
    with pytest.raises(ValueError, match="unknown tokenizer"):
        tokenizer_from_state({"kind": "bpe"})


def test_split_by_position_and_train_split_vocabulary(tmp_path: Path) -> None:
    text = "a" * 900 + "b" * 50 + "z" * 50  # 'z' occurs only in the last 10 %
    (tmp_path / "c.txt").write_text(text)
    d = load_text(tmp_path / "c.txt", "char")
    assert len(d.train) == 900 and len(d.val) == 100
    assert d.tokenizer.chars == "a"  # vocabulary from the train split only
    assert d.val.tolist() == [0] * 100  # 'b' and 'z' are unknown → id 0
    b = load_text(tmp_path / "c.txt", "byte")
    assert b.train.tolist() == [ord("a")] * 900 and b.val[-1] == ord("z")


def test_folder_corpus_order_fingerprint_and_cap(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.txt").write_bytes(b"BBBB")
    (tmp_path / "a.txt").write_bytes(b"AAAA")
    (tmp_path / "sub" / "c.txt").write_bytes(b"CC")
    (tmp_path / ".hidden").write_bytes(b"secret")
    data, fp = read_corpus(tmp_path)
    assert data == b"AAAABBBBCC"
    assert (fp.files, fp.bytes, fp.sha256) == (3, 10, hashlib.sha256(b"AAAABBBBCC").hexdigest())
    capped, fp2 = read_corpus(tmp_path, max_bytes=6)
    assert capped == b"AAAABB" and fp2.files == 2 and fp2.bytes == 6


def test_folder_corpus_skips_files_that_are_not_utf8_text(tmp_path: Path) -> None:
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "a.py").write_text("x = 'é'\n")
    (tmp_path / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\xa7\r\r\n\x00\x00code")
    (tmp_path / "fig.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "nul.txt").write_bytes(b"ab\x00cd")  # valid UTF-8, but a NUL marks a binary
    with pytest.warns(UserWarning, match=r"skipped 3 file\(s\) that are not UTF-8 text") as caught:
        data, fp = read_corpus(tmp_path)
    assert len(caught) == 1 and "\n" not in str(caught[0].message)
    assert data == "x = 'é'\n".encode() and fp.files == 1
    with pytest.warns(UserWarning, match="skipped 3"):
        assert "\ufffd" not in load_text(tmp_path, "char").tokenizer.chars
    (tmp_path / "a.py").unlink()
    with pytest.raises(ValueError, match="has no UTF-8 text files"):
        read_corpus(tmp_path)


def test_a_single_corpus_file_must_be_utf8_text(tmp_path: Path) -> None:
    (tmp_path / "bin.dat").write_bytes(b"abc\xff\xfe" * 100)
    for tokenizer in ("char", "byte"):
        with pytest.raises(ValueError, match=r"bin.dat is not UTF-8 text \(byte 3 "):
            load_text(tmp_path / "bin.dat", tokenizer)
    # a cap that cuts a multi-byte character still reads the (valid) file
    (tmp_path / "ok.txt").write_text("é" * 50)
    assert read_corpus(tmp_path / "ok.txt", max_bytes=3)[0] == "é".encode() + b"\xc3"


def test_missing_and_empty_corpora(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_text(tmp_path / "nope.txt")
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        load_text(tmp_path / "empty.txt")
    (tmp_path / "dir").mkdir()
    with pytest.raises(ValueError, match="empty"):
        load_text(tmp_path / "dir")
    with pytest.raises(ValueError, match="max_bytes"):
        read_corpus(tmp_path / "empty.txt", max_bytes=0)


def test_stdlib_corpus_excludes_tests_and_is_sorted() -> None:
    files = stdlib_files()
    root = stdlib_root()
    rel = [f.relative_to(root).as_posix() for f in files]
    assert len(files) > 100 and rel == sorted(rel)
    assert all(f.suffix == ".py" for f in files)
    for excluded in ("test", "idlelib", "lib2to3", "site-packages"):
        assert not any(excluded in Path(r).parts[:-1] for r in rel)


def test_pydoc_corpus_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRUCTLEARN_PYDOC_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"apt-get install python3\.11-doc"):
        pydoc_files()
    (tmp_path / "library").mkdir()
    (tmp_path / "library" / "os.rst.txt").write_text("os module\n" * 50)
    (tmp_path / "index.rst.txt").write_text("index\n" * 50)
    (tmp_path / "notes.txt").write_text("ignored")
    assert [p.name for p in pydoc_files()] == ["index.rst.txt", "os.rst.txt"]
    d = load_text("pydoc")
    assert d.fingerprint.files == 2 and d.fingerprint.source.startswith("pydoc:")


def test_sample_batch_is_shifted_seeded_and_in_range() -> None:
    tokens = torch.arange(100, dtype=torch.int32)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    x, y = sample_batch(tokens, 10, 64, g1)
    assert x.shape == y.shape == (64, 10) and x.dtype == y.dtype == torch.int64
    assert torch.equal(y[:, :-1], x[:, 1:]) and torch.equal(y - x, torch.ones_like(x))
    assert int(y.max()) <= 99 and int(x.min()) >= 0
    x2, _ = sample_batch(tokens, 10, 64, g2)
    assert torch.equal(x, x2)
    # all offsets reachable: the last window ends on the last token
    xs, _ = sample_batch(tokens, 98, 200, torch.Generator().manual_seed(0))
    assert set(xs[:, 0].tolist()) == {0, 1}


def test_sample_batch_and_context_errors(tmp_path: Path) -> None:
    tokens = torch.arange(20)
    with pytest.raises(ValueError, match="batch_size"):
        sample_batch(tokens, 4, 0, torch.Generator())
    with pytest.raises(ValueError, match="context 20"):
        sample_batch(tokens, 20, 2, torch.Generator())
    (tmp_path / "c.txt").write_text("x" * 100)
    d = load_text(tmp_path / "c.txt")
    d.check_context(9)
    with pytest.raises(ValueError, match="context 10 is >= the val split length"):
        d.check_context(10)
