"""`jobs/make_demos.py --robustness`: the scripted expert on a base suite and each runnable LIBERO-PRO
perturbation of it, on real LIBERO (no rendering), written as the robustness table of eval_libero."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_robustness_runs_every_column_and_writes_the_table(tmp_path):
    out = subprocess.run([sys.executable, "jobs/make_demos.py", "--robustness", "libero_object", "--tasks", "1",
                          "--trials", "1", "--no-record", "--num-cpus", "1", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    reports = {r["suite"]: r for r in json.loads((tmp_path / "expert_success.json").read_text())}
    assert set(reports) == {"libero_object", "libero_object_lan", "libero_object_object", "libero_object_swap",
                            "libero_object_task"}
    assert reports["libero_object"]["expert_successes"] == 1  # the expert table: libero_object is solved
    (table,) = json.loads((tmp_path / "robustness.json").read_text())
    assert table["columns"] == {"original": "libero_object", "language": "libero_object_lan",
                                "object": "libero_object_object", "swap": "libero_object_swap",
                                "task": "libero_object_task"}
    row = table["rows"][0]
    assert row["task"] == 1
    for label, suite in table["columns"].items():
        cell = row["cells"][label]
        assert cell["episodes"] == 1 and cell["successes"] == reports[suite]["expert_successes"]
        assert reports[suite]["failed_trials"] == ([] if cell["successes"] else [0])
    md = (tmp_path / "robustness.md").read_text()
    assert "| task | name | original | language | object | swap | task | episodes |" in md
    assert "| 1 | pick_up_the_cream_cheese_and_place_it_in_the_basket | 100.0 |" in md and "| 1/1/1/1/1 |" in md
    assert "| failed init states |" in (tmp_path / "expert_success.md").read_text()
    assert (tmp_path / "robustness.csv").exists() and "under perturbation" in out.stderr
