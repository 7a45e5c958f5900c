"""Success tables: errors are counted apart from failures and left out of the rate."""

import csv
import io
import json

import pytest

from worldvla_dist.errors import ConfigError
from worldvla_dist.evaluation import success_table as st
from worldvla_dist.evaluation.episodes import EpisodeResult, EpisodeSpec
from worldvla_dist.evaluation.eval_run import plan_episodes


def result(suite, task, trial, success, error=None):
    return EpisodeResult(suite, task, trial, 0, success, error, 10, 1, 1.0)


def test_rates_leave_errors_out_and_suites_average():
    results = [result("libero_spatial", 0, 0, True), result("libero_spatial", 0, 1, False),
               result("libero_spatial", 0, 2, False, error="EnvTimeout: hung"),
               result("libero_spatial", 1, 0, True), result("libero_10", 3, 0, False)]
    rows = st.task_rows(results)
    assert [(r.task, r.trials, r.successes, r.failures, r.errors) for r in rows] == \
        [(3, 1, 0, 1, 0), (0, 3, 1, 1, 1), (1, 1, 1, 0, 0)]
    assert rows[1].rate == 0.5
    rates = st.suite_rates(rows)
    assert rates == {"libero_10": 0.0, "libero_spatial": 2 / 3, "avg": 1 / 3}
    md = st.markdown(rows)
    assert "| Spatial | Long | Avg |" in md and "| 66.7 | 0.0 | 33.3 |" in md
    parsed = list(csv.DictReader(io.StringIO(st.to_csv(rows))))
    assert parsed[1]["errors"] == "1" and parsed[1]["success_rate"] == "0.5000"
    assert json.loads(st.to_json(rows))["suites"]["avg"] == 1 / 3
    assert "SR" in st.terminal(rows)


def test_a_task_with_only_errors_has_no_rate():
    rows = st.task_rows([result("libero_object", 2, 0, False, error="EnvCrashed")])
    assert rows[0].rate is None and st.suite_rates(rows) == {}
    assert "| 1 | 0 | 0 | 1 | - |" in st.markdown(rows)


def test_plan_and_spec_keys():
    specs = plan_episodes(["libero_object"], [0, "pick_up_the_ketchup_and_place_it_in_the_basket"], trials=3)
    assert len(specs) == 6 and len({s.key for s in specs}) == 6 and specs[0].chunk == 5
    assert EpisodeSpec.from_payload({"v": 1, **specs[4].to_payload()}) == specs[4]
    assert [(s.task, s.trial) for s in specs] == [(0, 0), (4, 0), (0, 1), (4, 1), (0, 2), (4, 2)]  # trial-major


def test_plan_held_out_init_states():
    specs = plan_episodes(["libero_object"], [1], trials=10, first_trial=40)
    assert [s.trial for s in specs] == list(range(40, 50))
    with pytest.raises(ConfigError, match="first_trial >= 0"):
        plan_episodes(["libero_object"], [1], trials=2, first_trial=-1)


def test_terminal_columns_stay_aligned_for_perturbed_suite_names():
    rows = st.task_rows([result("libero_object", 4, 0, True), result("libero_spatial_object", 4, 0, False)])
    lines = st.terminal(rows).splitlines()
    assert lines[2].startswith("libero_object            4") and lines[3].startswith("libero_spatial_object    4")
