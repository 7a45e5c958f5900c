"""run_episode's history frames and rendering, on a stand-in env whose frames name their step. The
real env runs the same loop in test_reference_parity.py (integration)."""

import time

import numpy as np
import pytest

from worldvla_dist.errors import ConfigError
from worldvla_dist.evaluation.episodes import run_episode


class StepCountingEnv:
    """Frames are filled with the step index; a step that renders nothing returns no frame."""

    language = "pick up the bowl"

    def __init__(self, cap: int):
        self.cap, self.steps, self.rendered = cap, 0, []

    def _frames(self, cameras):
        if cameras:
            self.rendered.append(self.steps)
        return {c: np.full((4, 4, 3), self.steps, dtype=np.uint8) for c in cameras}

    def reset(self, trial, cameras=("agentview",)):
        self.steps = 0
        return {"frames": self._frames(cameras), "done": False, "truncated": False, "steps": 0}

    def step(self, action, cameras=()):
        self.steps += 1
        return {"frames": self._frames(cameras), "done": False, "truncated": self.steps >= self.cap,
                "steps": self.steps}


def run(chunk: int, history: int, cap: int, record_video: bool = False):
    env, seen = StepCountingEnv(cap), []

    def policy(text, frames, k):
        seen.append([int(f[0, 0, 0]) for f in frames])
        return np.zeros((k, 7)), 0

    outcome = run_episode(env, policy, trial=0, chunk=chunk, history=history, record_video=record_video)
    return seen, env.rendered, outcome


@pytest.mark.parametrize("chunk, history, expected", [
    # the reference's 2h_1a: his_img[-1:] + [cur_img], his_img growing every step
    (5, 2, [[0], [4, 5], [9, 10], [14, 15]]),
    (10, 2, [[0], [9, 10]]),
    (1, 2, [[0], [0, 1], [1, 2], [2, 3]]),
    # 4h_1a: his_img[-3:] + [cur_img]; a chunk shorter than the history reaches into the one before
    (5, 4, [[0], [2, 3, 4, 5], [7, 8, 9, 10], [12, 13, 14, 15]]),
    (2, 4, [[0], [0, 1, 2], [1, 2, 3, 4], [3, 4, 5, 6]]),
    (5, 1, [[0], [5], [10], [15]]),
])
def test_the_policy_sees_the_frames_of_the_last_m_steps(chunk, history, expected):
    seen, rendered, outcome = run(chunk, history, cap=len(expected) * chunk)
    assert seen == expected
    assert outcome.steps == len(expected) * chunk and outcome.policy_calls == len(expected)
    # the agentview renders at reset and on the last M steps of each chunk, no others
    wanted = {0} | {s for q in expected[1:] for s in q}
    last_chunk = range(max(1, outcome.steps - history + 1), outcome.steps + 1)  # read by no further query
    assert set(rendered) == wanted | set(last_chunk)


def test_a_video_renders_every_step_and_the_policy_still_sees_the_last_m():
    seen, rendered, outcome = run(5, 2, cap=15, record_video=True)
    assert seen == [[0], [4, 5], [9, 10]]
    assert rendered == list(range(16))
    assert [int(f[0, 0, 0]) for f in outcome.frames] == list(range(16))


def test_history_must_be_positive():
    with pytest.raises(ConfigError, match="history must be >= 1"):
        run(5, 0, cap=5)


def test_the_time_spent_waiting_for_chunks_is_recorded_apart():
    env = StepCountingEnv(10)

    def slow_policy(text, frames, k):
        time.sleep(0.02)
        return np.zeros((k, 7)), 0

    outcome = run_episode(env, slow_policy, trial=0, chunk=5)
    assert outcome.policy_calls == 2 and 0.04 <= outcome.policy_wait_s < 1.0
