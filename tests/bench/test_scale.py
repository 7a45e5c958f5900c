"""bench/scale.py, tiny: the capacity model's measurements, its check against real runs at W = 1 and 2,
and the cluster table all land in the JSON last line (the 20% goal is reported, not asserted: on a
shared 2-core machine the runs' noise alone can exceed it)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def test_the_scale_bench_measures_predicts_and_checks_itself():
    out = subprocess.run([sys.executable, "bench/scale.py", "--quick", "--max-steps", "10", "--episodes", "1"],
                         capture_output=True, text=True, timeout=590, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-4000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["bench"] == "scale" and result["sim_ms_per_chunk"] > 0
    assert set(result["batch_latency_ms"]) == {"1", "2", "4", "8", "16"} and result["supply_vs_b1"]["1"] == 1.0
    assert [r["workers"] for r in result["runs"]] == [1, 2]
    assert all(r["episodes_per_hour"] > 0 and r["predicted_episodes_per_hour"] > 0 for r in result["runs"])
    assert result["max_abs_error"] == max(abs(r["error"]) for r in result["runs"])
    # the real path's own per-chunk cost, fitted on W=1, then W=2 predicted with it
    assert result["overhead_ms_per_chunk"] >= 0 and result["fitted_error_w2"] == result["runs"][1]["fitted_error"]
    assert {(c["cpu_nodes"], c["gpu_nodes"]) for c in result["cluster"]} == {(n, g) for n in (1, 4, 16) for g in (1, 2)}
    assert all(0 < c["rule_workers"] <= c["workers"] for c in result["cluster"])
    assert "ASSUMPTION" in out.stdout and "MODEL" in out.stdout
