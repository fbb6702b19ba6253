from pathlib import Path

import pytest
import torch

from structlearn.train.checkpoint import load_checkpoint, save_checkpoint


def _state() -> dict:
    w = torch.randn(4, 3)
    lin = torch.nn.Linear(3, 4)
    lin.weight = torch.nn.Parameter(w)
    opt = torch.optim.AdamW(lin.parameters(), lr=1e-3)
    lin(torch.randn(2, 3)).sum().backward()
    opt.step()
    return {
        "config": {"n_layer": 2, "norm": "dnt"},
        "step": 7,
        "model": {"a.weight": w, "tied.weight": w, "b": torch.arange(3)},
        "optimizer": opt.state_dict(),
        "rng": {"torch": torch.get_rng_state(), "python": (3, (1, 2, 3), None)},
    }


def test_round_trip_including_optimizer_and_aliases(tmp_path: Path) -> None:
    st = _state()
    path = save_checkpoint(tmp_path / "ckpt.safetensors", st)
    back = load_checkpoint(path)
    assert back["config"] == st["config"] and back["step"] == 7
    assert torch.equal(back["model"]["a.weight"], st["model"]["a.weight"])
    assert torch.equal(back["model"]["tied.weight"], st["model"]["a.weight"])
    assert back["rng"]["python"] == (3, (1, 2, 3), None)
    assert torch.equal(back["rng"]["torch"], st["rng"]["torch"])
    opt_back = back["optimizer"]
    assert set(opt_back["state"]) == set(st["optimizer"]["state"])  # integer keys survive
    for k, v in st["optimizer"]["state"][0].items():
        assert torch.equal(torch.as_tensor(opt_back["state"][0][k]), torch.as_tensor(v))
    assert (tmp_path / "ckpt.json").exists()


def test_corrupt_and_foreign_files_are_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00\x01garbage")
    with pytest.raises(ValueError, match="corrupt"):
        load_checkpoint(bad)
    with pytest.raises(ValueError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.safetensors")
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(ValueError, match="not written by structlearn"):
        load_checkpoint(tmp_path / "foreign.safetensors")


def test_failed_save_keeps_previous_checkpoint(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "c.safetensors", {"step": 1, "w": torch.ones(2)})
    with pytest.raises(TypeError, match="cannot store"):
        save_checkpoint(path, {"step": 2, "bad": object()})
    assert load_checkpoint(path)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json", "c.safetensors"]


def test_readable_copy_shows_plain_json_without_markers(tmp_path: Path) -> None:
    import json

    state = {"config": {"widths": (32, 64), "per_id": {3: "a"}, "w": torch.ones(1)}, "step": 1}
    path = save_checkpoint(tmp_path / "m.safetensors", state)
    readable = json.loads((tmp_path / "m.json").read_text())
    assert readable["config"] == {"widths": [32, 64], "per_id": {"3": "a"}, "w": "<tensor>"}
    back = load_checkpoint(path)["config"]  # the machine-readable form keeps the types
    assert back["widths"] == (32, 64) and back["per_id"] == {3: "a"}
