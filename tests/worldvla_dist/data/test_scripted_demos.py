"""Real LIBERO: the scripted expert solves tasks, and its demos replay into official-format files."""

import numpy as np
import pytest

from worldvla_dist.data.demo_generation import generate_task_demos, regenerate_demo_file
from worldvla_dist.data.libero_hdf5 import DemoFile, noop_mask
from worldvla_dist.data.scripted_expert import run_expert
from worldvla_dist.envs.libero_env import LiberoEnv, LiberoEnvConfig

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_expert_solves_a_spatial_task_without_rendering():
    with LiberoEnv(LiberoEnvConfig("libero_spatial", 0, max_steps=400)) as env:
        results = [run_expert(env, trial) for trial in range(3)]
        assert all(r.success for r in results), [len(r.actions) for r in results]
        assert env.renders == 0  # found without rendering a single frame
        r = results[0]
        assert r.actions.shape[1] == 7 and len(r.states) == len(r.actions)
        assert (np.abs(r.actions) <= 1.0).all()


def test_a_task_beyond_the_experts_skills_is_a_failure_with_a_reason_not_a_crash():
    with LiberoEnv(LiberoEnvConfig("libero_10", 9, max_steps=520)) as env:  # the microwave: a hinged door
        rollout = run_expert(env, 0)
    assert not rollout.success and "no skill" in rollout.error and "microwave" in rollout.error


def test_success_only_run_renders_and_writes_nothing(tmp_path):
    report = generate_task_demos("libero_spatial", 0, tmp_path, trials=1, record=False)
    assert report.trials == 1 and report.expert_successes == 1 and report.kept_demos == 0
    assert report.path == "" and not any(tmp_path.iterdir())


def test_demos_are_recorded_regenerated_and_readable(tmp_path):
    report = generate_task_demos("libero_object", 5, tmp_path / "demos", trials=1, image_size_px=64)
    assert report.expert_successes == 1 and report.kept_demos == 1
    with DemoFile(report.path) as f:
        assert f.info.language_instruction == "pick up the tomato sauce and place it in the basket"
        demo = f[f.names[0]]
        assert demo.agentview.shape[1:] == (64, 64, 3) and demo.eye_in_hand.shape == demo.agentview.shape
        assert demo.dones[-1] == 1 and not noop_mask(demo.actions).any()
        assert len(demo.states) == len(demo.actions) == len(demo.proprio["ee_pos"])
    # the reference's regeneration of that file from each demo's first state
    again = regenerate_demo_file(report.path, "libero_object", 5, tmp_path / "regen", image_size_px=64)
    assert again.trials == 1 and again.kept_demos == 1
