"""The held-out report: pooled over held-out trajectories, and per held-out split when the reference
split gives both val_ind and val_ood."""

from worldvla_dist.data.synthetic_demos import write_random_demo_files
from worldvla_dist.evaluation.heldout import heldout_report


def report(model, tokens, demos, rule):
    return heldout_report(model, tokens, demos, chunk=2, max_frames=2, max_prompts=2, split_rule=rule)


def test_stable_split_reports_its_held_out_trajectories_without_a_breakdown(tmp_path, tiny_model64, tokens):
    write_random_demo_files(tmp_path, files=1, demos=2, steps=4)  # demo_1 is held out
    got = report(tiny_model64, tokens, tmp_path, "stable")
    assert got["on"] == "held-out" and "by_split" not in got
    assert got["next_frame"]["num_frames"] == 2 and got["action_token_accuracy"]["num_tokens"] == 2 * 2 * 7


def test_reference_split_reports_val_ind_and_val_ood_apart(tmp_path, tiny_model64, tokens):
    write_random_demo_files(tmp_path, files=10, demos=1, steps=3)  # task_9, last of 10 tasks, is val_ood
    write_random_demo_files(tmp_path, files=1, demos=10, steps=3)  # task_0 again, now 10 demos: trj_9 is val_ind
    got = report(tiny_model64, tokens, tmp_path, "reference")
    assert got["on"] == "held-out" and set(got["by_split"]) == {"val_ind", "val_ood"}
    for figures in got["by_split"].values():
        assert 0.0 <= figures["action_token_accuracy"]["model"] <= 1.0 and figures["next_frame"]["num_frames"] == 2


def test_one_demo_is_measured_on_training_and_says_so(tmp_path, tiny_model64, tokens):
    write_random_demo_files(tmp_path, files=1, demos=1, steps=4)
    assert report(tiny_model64, tokens, tmp_path, "stable")["on"] == "train"
