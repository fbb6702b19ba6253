"""Cache naming and the CLI checks of benchmarks/bench_reid.py (the training itself is the trainer's)."""

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_reid.py"
_spec = importlib.util.spec_from_file_location("bench_reid", _PATH)
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_reid"] = bench
_spec.loader.exec_module(bench)

SPCL, CACL = "SpCL-style (1 branch)", "CACL (γ=2, paper)"


def test_default_cast_keeps_the_names_of_runs_cached_before_the_cast_sweep() -> None:
    # Names as written by the benchmark before `camera_cast` entered the key.
    assert bench.run_name(SPCL, 0.7, 100, 12) == "arm0_s0.7_o1_seed100_e12"
    assert bench.run_name(CACL, 0.0, 101, 12, palette=3, camera_cast=0.25) == "arm2_s0.0_o1_p3_seed101_e12"
    assert bench.run_name("SiCL", 0.7, 102, 36, outfits=3) == "cc3_s0.7_o3_seed102_e36"
    other = {bench.run_name(SPCL, 0.7, 100, 12, camera_cast=c) for c in (0.0, 0.5, 1.0)}
    assert len(other) == 3 and "arm0_s0.7_o1_seed100_e12" not in other
    assert (
        bench.run_name(SPCL, 0.7, 100, 12, camera_cast=0.25, cast_luma=True)
        == "arm0_s0.7_o1_c0.25L_seed100_e12"
    )
    # A luma-preserving cast of strength 0 is no cast: the same data, the same run.
    assert bench.run_name(SPCL, 0.7, 100, 12, camera_cast=0.0, cast_luma=True) == bench.run_name(
        SPCL, 0.7, 100, 12, camera_cast=0.0
    )


def test_run_one_at_the_default_cast_reuses_an_old_cached_run(tmp_path: Path, monkeypatch) -> None:
    record = {"arm": SPCL, "final": {"mAP": 0.5}, "seconds": 1.0}
    bench.RunCache(tmp_path / "runs").save("arm0_s0.7_o1_seed100_e12", record)
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    monkeypatch.setattr(bench, "CACHED_ONLY", True)  # a miss raises instead of training
    assert bench.run_one(SPCL, 0.7, 100, 12, False, camera_cast=0.25)["final"]["mAP"] == 0.5
    with pytest.raises(bench.MissingRunError):
        bench.run_one(SPCL, 0.7, 100, 12, False, camera_cast=0.5)


@pytest.mark.parametrize("argv", [["--casts", "1.5"], ["--casts", "-0.1"], ["--shortcuts", "2"]])
def test_cli_rejects_strengths_outside_unit_interval(argv: list[str], monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", ["bench_reid.py", "--parts", "cast", *argv])
    with pytest.raises(SystemExit) as exc:
        bench.main()
    assert exc.value.code == 2


def test_new_arm_appends_and_leaves_cached_names_and_parts_alone() -> None:
    assert list(bench.ARMS).index(bench.GRAY_ARM) == 11  # later arms append after it
    assert bench.run_name("CACL on centroid memory (ours)", 0.7, 100, 12) == "arm13_s0.7_o1_seed100_e12"
    assert bench.ARMS[bench.GRAY_ARM]["cluster_on"] == "gray"
    assert bench.run_name(bench.GRAY_ARM, 0.7, 100, 12, camera_cast=0.5, cast_luma=True) == (
        "arm11_s0.7_o1_c0.5L_seed100_e12"
    )
    assert bench.run_name("MGCE-HCL, loose eps (+0.1)", 0.7, 100, 12) == "arm10_s0.7_o1_seed100_e12"
    assert bench.GRAY_ARM not in bench.HCL_ARMS and len(bench.HCL_ARMS) == 12
    assert bench.HCL_ARMS[:4] == tuple(list(bench.ARMS)[7:11])  # the first four keep their cached names
    assert all(a in bench.HCL_ARMS for trio in bench.HCL_SHIFTS.values() for a in trio)
    assert bench.MAIN_ARMS[:7] == tuple(list(bench.ARMS)[:7]) and bench.MAIN_ARMS[7] == bench.GRAY_ARM
    assert bench.MAIN_ARMS[8:] == tuple(list(bench.ARMS)[12:17])  # the HCL arms after them stay out
    assert not set(bench.MAIN_ARMS) & set(bench.HCL_ARMS)
    assert bench.run_name("CACL, clusters gray memory", 0.7, 100, 12, outfits=3) == "cc6_s0.7_o3_seed100_e12"


def test_run_one_takes_pair_statistics_from_the_returned_pseudo_labels(tmp_path: Path, monkeypatch) -> None:
    from types import SimpleNamespace

    import numpy as np

    from structlearn.data.reid import make_reid_dataset

    data = make_reid_dataset(6, 2, 4, n_cameras=2, seed=0)
    tr = data.train
    by_id = tr.pids.copy()  # epoch 2: the true identities
    by_cam = tr.cams.copy()  # epoch 1: clusters by camera
    fake = SimpleNamespace(
        history=[{"epoch": 1.0, "mAP": 0.1}, {"epoch": 2.0, "mAP": 0.2}],
        final={"mAP": 0.2},
        label_history=[by_cam, by_id],
        pseudo_labels=by_id,
        final_gray={"mAP": 0.3},
        eps=0.5,
        seconds=1.0,
    )
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    monkeypatch.setattr(bench, "make_reid_dataset", lambda **kw: data)
    monkeypatch.setattr(bench, "train_reid", lambda d, cfg: fake)
    out = bench.run_one(CACL, 0.7, 100, 2, True, camera_cast=0.5, cast_luma=True)
    assert out["history"][0]["pair_same_cam"] == 1.0 and out["history"][1]["pair_precision"] == 1.0
    truth = bench.pair_stats(tr.pids, tr.pids, tr.cams)
    assert out["final"]["pair_same_cam"] == truth["pair_same_cam"] < 1.0
    assert out["last_pseudo_labels"] == by_id.tolist() and out["final_gray"] == {"mAP": 0.3}
    assert bench.gray_branch_col([out, out]) == "0.300 ± 0.000"
    assert bench.gray_branch_col([out, {"final": {"mAP": 0.5}}]) == "–"  # cached before final_gray existed
    assert np.isnan(bench.pair_stats(np.arange(4), np.arange(4), np.zeros(4, int))["pair_same_cam"])
    assert out["final"]["pair_recall"] == 1.0 and out["history"][0]["pair_recall"] < 1.0  # by camera
    assert np.isnan(bench.pair_stats(np.zeros(4, int), np.arange(4), np.zeros(4, int))["pair_recall"])


def test_agreement_probe_on_separated_identities_finds_only_true_pairs() -> None:
    import numpy as np
    import torch

    from structlearn.reid.trainer import ReIDConfig

    rng = np.random.default_rng(0)
    pids = np.repeat(np.arange(12), 8)
    feats = np.eye(16)[pids] + 0.01 * rng.normal(size=(pids.size, 16))
    probe = bench.AgreementProbe(ReIDConfig(method="hcl", epochs=2, k1=10, k2=3), pids)
    probe(0, {"rgb": torch.from_numpy(feats).float()})
    probe(3, {"rgb": torch.from_numpy(feats).float()})  # not epoch 0, mid or last: skipped
    (rec,) = probe.records
    assert rec["prec5"] == 1.0 and rec["pairs5"] == 12 * 28
    assert rec["true_share_w1"] == rec["true_share_linear"] == rec["true_share_p16"] == 1.0
