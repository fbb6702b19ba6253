"""utils.report: the one JSON convention of reports and run caches (issue 16: four cleaners disagreed)."""

import json
import math
from pathlib import Path

import numpy as np

from structlearn.utils.report import json_restore, json_safe, write_report


def test_json_safe_is_strict_json_and_restores() -> None:
    obj = {
        1: (np.float32(0.5), np.int64(3)),
        "a": [math.nan, math.inf, -math.inf, 1.0],
        "arr": np.array([[1.0, np.nan]]),
        "none": None,
    }
    text = json.dumps(json_safe(obj), allow_nan=False)  # raises on a bare NaN
    back = json_restore(json.loads(text))
    assert back["1"] == [0.5, 3] and math.isnan(back["a"][0]) and back["a"][1:] == [math.inf, -math.inf, 1.0]
    assert back["arr"][0][0] == 1.0 and math.isnan(back["arr"][0][1]) and back["none"] is None
    assert math.isnan(json_restore({"x": None}, none_as_nan=True)["x"])  # caches that stored null


def test_write_report_uses_it(tmp_path: Path) -> None:
    write_report(
        tmp_path,
        "r",
        "T",
        "body",
        {"v": math.nan, "t": (1, 2)},
    )
    data = json.loads((tmp_path / "r.json").read_text())["data"]
    assert data == {"v": "nan", "t": [1, 2]}
