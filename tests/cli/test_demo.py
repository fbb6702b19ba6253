import json
from pathlib import Path

import pytest

from structlearn.cli import main
from structlearn.cli.demo import LRS, NORMS, OPTIMIZERS, TASKS, arm_config


def test_every_arm_has_a_valid_config() -> None:
    for task in TASKS:
        for norm in NORMS:
            for opt in OPTIMIZERS:
                cfg = arm_config(task, norm, opt)
                assert (cfg.resolved_lr, cfg.resolved_weight_decay) == LRS[(task, norm, opt)]
                assert cfg.out_dir is None and cfg.norm == norm and cfg.optimizer == opt


@pytest.mark.slow
def test_quick_demo_prints_the_table_and_writes_the_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--jobs", "1", "--no-progress", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    rows = [line for line in stdout.splitlines() if line.startswith("| lm ") or line.startswith("| image ")]
    assert len(rows) == 8 and "tokens/s" in stdout and "images/s" in stdout
    assert (out / "demo_curves.png").read_bytes()[:4] == b"\x89PNG"
    report = json.loads((out / "demo.json").read_text())
    arms = report["data"]["arms"]
    assert {(a["task"], a["norm"], a["optimizer"]) for a in arms} == {
        (t, n, o) for t in TASKS for n in NORMS for o in OPTIMIZERS
    }
    assert all(a["status"] == "completed" and a["history"] for a in arms)
    sgdw = {
        a["task"]: a["optimizer_state_bytes"] for a in arms if a["optimizer"] == "sgdw" and a["norm"] == "dnt"
    }
    adamw = {
        a["task"]: a["optimizer_state_bytes"]
        for a in arms
        if a["optimizer"] == "adamw" and a["norm"] == "dnt"
    }
    assert all(2 * sgdw[t] == adamw[t] for t in TASKS)  # one buffer vs two
    assert "machine" in report and (out / "demo.md").read_text().startswith("# structlearn demo")


def test_demo_bad_flag_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--quick", "--jobs", "0", "--out", str(tmp_path / "d")]) == 2
    assert "jobs must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
