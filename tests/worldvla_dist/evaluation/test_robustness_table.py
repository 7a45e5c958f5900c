"""Robustness tables on synthetic results: rows of tasks, columns original / language / object /
swap / task, the drop from the original, errors apart, missing cells "-" (never 0), interleaving."""

import csv
import io
import json

import pytest

from worldvla_dist.errors import ConfigError
from worldvla_dist.evaluation import robustness_table as rt
from worldvla_dist.evaluation.episodes import EpisodeResult
from worldvla_dist.evaluation.eval_run import plan_episodes


def result(suite, task, trial, success, error=None):
    return EpisodeResult(suite, task, trial, 0, success, error, 10, 1, 1.0)


def outcomes(suite, task, successes, failures, errors=0):
    return ([result(suite, task, i, True) for i in range(successes)]
            + [result(suite, task, successes + i, False) for i in range(failures)]
            + [result(suite, task, successes + failures + i, False, "EnvCrashed: x") for i in range(errors)])


def test_rows_of_tasks_columns_of_perturbations_and_the_drop():
    base = "libero_object"
    results = (outcomes(base, 0, 4, 0) + outcomes(base, 1, 2, 2)
               + outcomes("libero_object_lan", 0, 1, 3) + outcomes("libero_object_lan", 1, 2, 2, errors=1)
               + outcomes("libero_object_swap", 0, 0, 4)
               + outcomes("libero_spatial", 0, 4, 0))  # another suite: ignored
    columns = rt.robustness_columns(base, ["libero_object_lan", "libero_object_swap"])
    assert [(c.suite, c.label) for c in columns] == [
        ("libero_object", "original"), ("libero_object_lan", "language"), ("libero_object_swap", "swap")]
    table = rt.build(base, columns, results, skipped={"object": "not runnable: ..."})
    assert [r.task for r in table.rows] == [0, 1, "all"]
    row0, row1, total = table.rows
    assert row0.name == "pick_up_the_alphabet_soup_and_place_it_in_the_basket"
    assert (row0.rate("original"), row0.rate("language"), row0.rate("swap")) == (1.0, 0.25, 0.0)
    assert (row0.drop("language"), row0.drop("swap")) == (0.75, 1.0)
    assert row1.rate("language") == 0.5 and row1.cells["language"].errors == 1  # errors not in the rate
    assert row1.rate("swap") is None and row1.drop("swap") is None  # no episode: "-", not 0
    assert (total.rate("original"), total.rate("language"), total.rate("swap")) == (0.75, 3 / 8, 0.0)

    md = rt.markdown(table)
    assert "| task | name | original | language | swap | episodes |" in md
    assert "| 0 | pick_up_the_alphabet_soup_and_place_it_in_the_basket | 100.0 | 25.0 (-75.0) | 0.0 (-100.0) | 4/4/4 |" in md
    assert "| 1 | pick_up_the_cream_cheese_and_place_it_in_the_basket | 50.0 | 50.0 (+0.0) | - | 4/4/0 |" in md
    assert "| **all** | libero_object, all tasks | 75.0 | 37.5 (-37.5) | 0.0 (-75.0) | 8/8/4 |" in md
    assert "Errors (not counted): language 1" in md and "Not run: object: not runnable" in md

    lines = list(csv.DictReader(io.StringIO(rt.to_csv([table]))))
    assert len(lines) == 3 * 3
    lan0 = next(l for l in lines if l["task"] == "0" and l["column"] == "language")
    assert (lan0["suite"], lan0["success_rate"], lan0["drop_from_original"]) == ("libero_object_lan", "0.2500", "0.7500")
    doc = json.loads(rt.to_json([table]))[0]
    assert doc["columns"]["swap"] == "libero_object_swap" and doc["rows"][1]["cells"]["swap"]["success_rate"] is None
    assert doc["rows"][2]["cells"]["language"]["drop_from_original"] == pytest.approx(0.375)
    assert [r["task"] for r in doc["rows"]] == [0, 1, "all"]  # not hidden by the "task" column


def test_the_drop_is_written_as_people_read_it():
    """9/10 against 10/10 is a drop of -0.1 in the json, not -0.09999999999999998 (float noise)."""
    table = rt.build("libero_object", rt.robustness_columns("libero_object", ["libero_object_lan"]),
                     outcomes("libero_object", 0, 9, 1) + outcomes("libero_object_lan", 0, 10, 0))
    doc = json.loads(rt.to_json([table]))[0]
    assert doc["rows"][0]["cells"]["language"]["drop_from_original"] == -0.1


def test_the_first_column_must_be_the_original():
    with pytest.raises(ConfigError, match="first column must be"):
        rt.build("libero_object", rt.robustness_columns("libero_goal"), [])


def test_paraphrase_columns():
    table = rt.build("libero_goal", rt.paraphrase_columns("libero_goal"),
                     outcomes("libero_goal", 2, 3, 1) + outcomes("libero_goal_paraphrase", 2, 1, 3))
    assert table.labels == ["original", "paraphrase"] and table.rows[0].drop("paraphrase") == 0.5


def test_interleaving_covers_every_column_first():
    layout = rt.Layout("robustness", "libero_object",
                       tuple(rt.robustness_columns("libero_object", ["libero_object_lan", "libero_object_task"])))
    suites = rt.layout_suites([layout])
    assert suites == ["libero_object", "libero_object_lan", "libero_object_task"]
    specs = rt.interleave(plan_episodes(suites, [0, 1], 3), suites)
    assert len(specs) == 3 * 2 * 3
    first = [(s.suite, s.task, s.trial) for s in specs[:6]]
    assert first == [("libero_object", 0, 0), ("libero_object_lan", 0, 0), ("libero_object_task", 0, 0),
                     ("libero_object", 1, 0), ("libero_object_lan", 1, 0), ("libero_object_task", 1, 0)]
    with pytest.raises(ConfigError, match="--robustness takes one of"):
        rt.robustness_layout("libero_object_lan")


def test_variant_layouts_pair_each_base_suite_with_its_paraphrase():
    layouts = rt.variant_layouts(["libero_goal", "libero_object_swap", "libero_10"])  # perturbed: no variant
    assert rt.layout_suites(layouts) == ["libero_goal", "libero_goal_paraphrase", "libero_10", "libero_10_paraphrase"]
    with pytest.raises(ConfigError, match=r"paraphrases exist for .* not \['libero_90'\]"):
        rt.variant_layouts(["libero_90"])


def test_write_puts_the_three_files_beside_the_success_tables(tmp_path):
    table = rt.build("libero_object", rt.robustness_columns("libero_object"), outcomes("libero_object", 0, 1, 1))
    files = rt.write(tmp_path, "robustness", [table])
    assert sorted(p.name for p in files.values()) == ["robustness.csv", "robustness.json", "robustness.md"]
    assert "| 0 | pick_up_the_alphabet_soup" in files["markdown"].read_text()


def test_counts_per_task_build_the_same_table_as_episodes():
    """make_demos keeps the expert's success per task, not per episode: the same table from counts."""
    results = outcomes("libero_object", 0, 3, 1) + outcomes("libero_object_swap", 0, 1, 2, errors=1)
    columns = rt.robustness_columns("libero_object", ["libero_object_swap"])
    counts = [("libero_object", 0, rt.Cell(3, 1)), ("libero_object_swap", 0, rt.Cell(1, 2, 1)),
              ("libero_goal", 0, rt.Cell(5, 0))]  # another suite: ignored
    assert rt.to_dict(rt.build_from_counts("libero_object", columns, counts)) == rt.to_dict(
        rt.build("libero_object", columns, results))
