"""The ablation's figures on tiny fixtures: per-position accuracy, answers read back from samples, the
table and the paper's two directions (issue 18 §4)."""

import numpy as np
import pytest

from worldvla_dist.errors import ConfigError
from worldvla_dist.evaluation.ablation import (AblationSetting, SeedResult, decode_chunks, majority_position_accuracy,
                                               markdown_table, position_accuracy, prompts_and_targets, summarize,
                                               table4_settings)

from tests.conftest import make_tiny_model, random_actions, random_codes


def test_position_accuracy_counts_each_position_of_the_chunk():
    targets = np.zeros((2, 3, 7), dtype=np.int64)
    predicted = targets.copy()
    predicted[0, 1, :7] = 1  # position 2 of sample 0 all wrong
    predicted[:, 2, :2] = 1  # position 3: 2 of 7 bins wrong in both samples
    assert position_accuracy(predicted, targets) == pytest.approx([1.0, 0.5, 5 / 7])
    with pytest.raises(ValueError, match=r"\(N, K, 7\)"):
        position_accuracy(predicted[:, :2], targets)


def test_majority_baseline_per_position():
    train = np.zeros((4, 2, 7), dtype=np.int64)
    train[0] = 3  # one training chunk of bin 3, three of bin 0: bin 0 is the majority of every dimension
    targets = np.zeros((2, 2, 7), dtype=np.int64)
    targets[:, 1, 0] = 5
    assert majority_position_accuracy(train, targets) == pytest.approx([1.0, 6 / 7])


def test_prompts_and_targets_read_the_answers_back(tokens):
    codes = random_codes(tokens, 2, seed=1)
    actions = random_actions(5, 1)
    sample = tokens.samples.action_sample("pick up the soup", [codes[0], codes[1]], actions)
    prompts, targets = prompts_and_targets([sample, sample], chunk=5)
    assert prompts[0] == tokens.samples.action_prompt("pick up the soup", [codes[0], codes[1]])
    assert targets.shape == (2, 5, 7) and np.array_equal(targets[0], tokens.actions.encode(actions))
    _, first = prompts_and_targets([sample], chunk=1)  # setting (a) is scored on the first action
    assert np.array_equal(first[0], targets[0, :1])
    with pytest.raises(ValueError, match="fewer than 6 actions"):
        prompts_and_targets([sample], chunk=6)


def test_decode_chunks_picks_the_decoder_of_the_mask(tokens, tiny_preset):
    model = make_tiny_model(tokens, tiny_preset, seed=200)
    codes = random_codes(tokens, 3, seed=2)
    prompts = [tokens.samples.action_prompt("open the drawer", [codes[i], codes[i + 1]]) for i in range(2)]
    action = decode_chunks(model, prompts, 3, "action", batch_size=1)
    causal = decode_chunks(model, prompts, 3, "causal", batch_size=1)
    assert action.shape == causal.shape == (2, 3, 7)
    assert np.array_equal(action[:, 0], causal[:, 0]) and not np.array_equal(action[:, 1:], causal[:, 1:])


def test_the_four_settings_and_the_table():
    settings = table4_settings(chunk=3, world_fraction=0.25)
    assert [(s.key, s.chunk, s.attention_mask, s.world_fraction) for s in settings] == [
        ("a", 1, "action", 0.0), ("b", 3, "causal", 0.0), ("c", 3, "action", 0.0), ("d", 3, "action", 0.25)]
    with pytest.raises(ConfigError, match="attention_mask"):
        AblationSetting("x", "x", 3, "full", 0.0)
    accuracy = {"a": [0.9], "b": [0.8, 0.4, 0.2], "c": [0.8, 0.7, 0.7], "d": [0.8, 0.75, 0.7]}
    results = [SeedResult(k, seed, [a + 0.01 * seed for a in acc], 10, successes=seed, episodes=2)
               for k, acc in accuracy.items() for seed in (0, 1)]
    summary = summarize(settings, results, 3, majority=np.array([0.5, 0.5, 0.5]))
    table = markdown_table(summary)
    lines = table.splitlines()
    assert lines[0] == "| setting | K | mask | world | acc@1 | acc@2 | acc@3 | acc@2..K | success (per seed) |"
    rows = [l for l in lines[2:] if l.startswith("| (")]
    assert len(rows) == 4 and rows[0].startswith("| (a) action model, K=1 | 1 | action | 0 | 0.905 (0.900-0.910) | - | -")
    assert "0.300 (0.300-0.310) " not in rows[1] and "| 1/4 (0/2, 1/2) |" in rows[1]
    assert "majority bin" in table
    claims = {d["claim"]: d for d in summary["directions"]}
    assert claims["(c) > (b) on later_positions_accuracy"]["holds"] and \
        claims["(c) > (b) on later_positions_accuracy"]["seeds_holding"] == 2
    assert claims["(d) > (c) on later_positions_accuracy"]["holds"]
    assert claims["(d) >= (c) on successes"]["holds"]
