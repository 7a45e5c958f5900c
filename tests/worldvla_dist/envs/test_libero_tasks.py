import pytest

from worldvla_dist.envs.libero_tasks import LIBERO_PRO_SUITES, SUITES, find_task, suite_tasks
from worldvla_dist.errors import ConfigError


def test_every_suite_is_listed_with_its_reference_cap():
    counts = {s: len(suite_tasks(s)) for s in SUITES.names() if not SUITES.get(s).base}
    assert counts == {"libero_10": 10, "libero_90": 90, "libero_goal": 10, "libero_object": 10, "libero_spatial": 10}
    assert [SUITES.get(s).max_steps for s in ("libero_spatial", "libero_object", "libero_goal", "libero_10", "libero_90")] \
        == [220, 280, 300, 520, 400]
    assert SUITES.get("libero_10").chunk == 10


def test_perturbed_suites_keep_their_base_protocol():
    """LIBERO-PRO's `<base>_{lan,object,swap,task}` run with the base suite's cap and chunk (issue 20),
    and list the base suite's tasks in its order, under the instruction the policy gets there."""
    perturbed = LIBERO_PRO_SUITES
    assert len(perturbed) == 16
    for name in perturbed:
        spec, base = SUITES.get(name), SUITES.get(SUITES.get(name).base)
        assert (spec.max_steps, spec.chunk) == (base.max_steps, base.chunk)
        assert name == f"{spec.base}_{spec.perturbation}"
        tasks = suite_tasks(name)
        assert [t.name for t in tasks] == [t.name for t in suite_tasks(spec.base)][:len(tasks)], name
    lan = {t.index: t.language for t in suite_tasks("libero_object_lan")}
    assert lan and all(lan[i] != t.language for i, t in enumerate(suite_tasks("libero_object")) if i in lan)


def test_tasks_by_index_or_name():
    t = find_task("libero_goal", 3)
    assert find_task("libero_goal", t.name) == t == find_task("libero_goal", t.language) == find_task("libero_goal", "3")


def test_unknown_task_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown task 'fly' in libero_spatial; valid tasks are: pick_up_the_black_bowl"):
        find_task("libero_spatial", "fly")
    with pytest.raises(ConfigError, match=r"libero_object has tasks 0..9, got index 12"):
        find_task("libero_object", 12)
    with pytest.raises(ConfigError, match="unknown LIBERO suite 'libero_100'"):
        suite_tasks("libero_100")


def test_paraphrase_suites_are_the_base_scene_under_the_lan_instruction():
    """`<base>_paraphrase`: the base suite's tasks, BDDL files and init states (the env loads
    `package_suite`), each task asked with its LIBERO-PRO `_lan` paraphrase (issue 20 §4)."""
    for base in ("libero_spatial", "libero_object", "libero_goal", "libero_10"):
        spec = SUITES.get(f"{base}_paraphrase")
        assert (spec.base, spec.package_suite, spec.perturbation) == (base, base, "paraphrase")
        assert (spec.max_steps, spec.chunk) == (SUITES.get(base).max_steps, SUITES.get(base).chunk)
        tasks, lan = suite_tasks(spec.name), suite_tasks(f"{base}_lan")
        assert [t.name for t in tasks] == [t.name for t in suite_tasks(base)]
        assert [t.language for t in tasks] == [t.language for t in lan]
        assert all(t.suite == spec.name for t in tasks)
    assert find_task("libero_object_paraphrase", 0).language == "grab alphabet soup and put it into basket"
    assert SUITES.get("libero_object").package_suite == "libero_object"
