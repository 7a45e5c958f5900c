"""jobs/ablate.py --quick end to end (issue 18 §4): scripted demos -> tokenizer -> K=1 and K=5 shards -> the
four settings x 2 seeds trained in-process -> per-position held-out accuracy and closed-loop episodes ->
one table. Tiny numbers: this checks the plumbing and the table's shape, not the paper's directions."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_quick_ablation_prints_the_four_settings_per_position(tmp_path):
    out, data = tmp_path / "out", tmp_path / "data"
    args = ["jobs/ablate.py", "--quick", "--out", str(out), "--data", str(data), "--steps", "8", "--tokenizer-steps", "10",
            "--max-steps", "6", "--max-prompts", "4"]
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert [r["setting"] for r in summary["rows"]] == ["a", "b", "c", "d"]
    for row in summary["rows"]:
        assert row["seeds"] == [0, 1] and len(row["position_accuracy"]) == 2
        assert all(len(acc) == 5 for acc in row["position_accuracy"])  # positions 1..K (NaN beyond (a)'s K=1)
        assert row["episodes"] == [1, 1] and row["errors"] == [0, 0]
    table = (out / "ablation.md").read_text()
    assert "| setting | K | mask | world | acc@1 | acc@2 | acc@3 | acc@4 | acc@5 | acc@2..K |" in table
    assert sum(line.startswith("| (") for line in table.splitlines()) == 4
    assert table.split("\n\n")[1] in done.stdout and json.loads((out / "ablation.json").read_text())["rows"]
    # a rerun reuses every (setting, seed) result: nothing is trained again
    again = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "L_action" not in again.stderr
    assert json.loads(again.stdout.strip().splitlines()[-1])["rows"] == summary["rows"]
    # the data folder is reused only by the run that made it
    other = subprocess.run([sys.executable, *args, "--demos-per-task", "3"], cwd=ROOT, capture_output=True, text=True,
                           timeout=120)
    assert other.returncode != 0 and "give another --data" in other.stderr
