"""structlearn.utils.harness: the benchmark harness (grid, seeds, run cache, log)."""

import math
from pathlib import Path

import pytest

from structlearn.utils.harness import RunCache, grid, make_log, parse_seeds


def test_grid_is_the_product_last_axis_fastest() -> None:
    runs = grid(norm=["preln", "dnt"], seed=[0, 1, 2])
    assert len(runs) == 6
    assert runs[0] == {"norm": "preln", "seed": 0} and runs[1] == {"norm": "preln", "seed": 1}
    assert runs[-1] == {"norm": "dnt", "seed": 2}
    assert grid() == [{}]


def test_parse_seeds() -> None:
    assert parse_seeds("0,1, 2") == [0, 1, 2]
    for bad in ("", "a,b", "1,-1", ","):
        with pytest.raises(ValueError, match="seeds"):
            parse_seeds(bad)


def test_run_cache_runs_once_and_reads_back_the_same_values(tmp_path: Path) -> None:
    cache = RunCache(tmp_path / "runs")
    calls = []

    def fn() -> dict:
        calls.append(1)
        return {"loss": math.nan, "top": math.inf, "curve": (1.0, 2.0), "n": 3}

    first, ran = cache.run("grid/a_s0", fn)
    assert ran and cache.has("grid/a_s0") and cache.path("grid/a_s0").parent.name == "grid"
    again, ran_again = cache.run("grid/a_s0", fn)
    assert not ran_again and len(calls) == 1
    for rec in (first, again):  # non-finite values survive; tuples come back as lists
        assert math.isnan(rec["loss"]) and rec["top"] == math.inf and rec["curve"] == [1.0, 2.0]
    assert '"nan"' in cache.path("grid/a_s0").read_text()


def test_run_cache_reruns_a_record_rejected_by_valid(tmp_path: Path) -> None:
    cache = RunCache(tmp_path)
    cache.save("r", {"setup": {"steps": 10}, "x": 1})
    rec, ran = cache.run(
        "r", lambda: {"setup": {"steps": 20}, "x": 2}, valid=lambda r: r["setup"]["steps"] == 20
    )
    assert ran and rec["x"] == 2 and cache.load("r")["x"] == 2
    assert cache.load("missing") is None


def test_run_cache_none_as_nan_and_records(tmp_path: Path) -> None:
    (tmp_path / "a_s0.json").write_text('{"v": null}')
    (tmp_path / "a_s1.json").write_text('{"v": 1.5}')
    (tmp_path / "b_s0.json").write_text('{"v": 2}')
    old = RunCache(tmp_path, none_as_nan=True)
    assert math.isnan(old.load("a_s0")["v"])
    assert RunCache(tmp_path).load("a_s0")["v"] is None
    assert [r["v"] for r in old.records("a_*")][1:] == [1.5]
    assert len(old.records()) == 3


def test_make_log_writes_stdout_and_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = make_log(tmp_path / "sub" / "log.txt")
    log("hello")
    assert capsys.readouterr().out.rstrip().endswith("] hello")
    assert (tmp_path / "sub" / "log.txt").read_text().rstrip().endswith("] hello")
