"""Real LIBERO (robosuite + MuJoCo, EGL rendering through Mesa): the reference protocol and
render-on-demand. One env is built per module (~30 s with its first reset)."""

from dataclasses import replace

import numpy as np
import pytest

from worldvla_dist.envs.libero_env import LiberoEnv, LiberoEnvConfig
from worldvla_dist.errors import ConfigError

pytestmark = pytest.mark.integration

CHUNK = 5


@pytest.fixture(scope="module")
def env():
    with LiberoEnv(LiberoEnvConfig("libero_spatial", 0, image_size_px=128, max_steps=12)) as e:
        e.reset(0)  # the first reset compiles llvmpipe's shaders (~15 s): pay it in the fixture
        yield e


def random_actions(n: int) -> np.ndarray:
    actions = np.random.default_rng(0).uniform(-0.5, 0.5, (n, 7))
    actions[:, 6] = np.sign(actions[:, 6])
    return actions


def run_chunks(env: LiberoEnv, actions: np.ndarray) -> np.ndarray:
    """The policy's reading pattern: a frame after reset and after each chunk's last action."""
    env.reset(1)
    frames = [env.image()]
    for i, a in enumerate(actions):
        last_of_chunk = i % CHUNK == CHUNK - 1
        env.step(a, cameras=("agentview",) if last_of_chunk else ())
        if last_of_chunk:
            frames.append(env.image())
    return np.stack(frames)


def test_reference_protocol(env):
    env.reset(3)
    assert env.steps == 0 and not env.done and env.num_trials == 50
    control_dt = 1.0 / env._env.env.control_freq
    assert env.sim.data.time == pytest.approx(env.config.wait_steps * control_dt)  # the 10 wait steps ran
    raw = env.raw_image("agentview")
    assert raw.shape == (128, 128, 3) and raw.dtype == np.uint8
    assert np.array_equal(env.image(), raw[::-1, ::-1])  # the reference's 180-degree rotation
    for a in random_actions(12):
        assert not env.step(a)
    assert env.truncated and env.steps == 12
    with pytest.raises(RuntimeError, match="is over"):
        env.step(np.zeros(7))


def test_render_on_demand_gives_the_frames_of_rendering_every_step(env):
    actions = random_actions(10)
    env.config = replace(env.config, render="every_step")
    before = env.renders
    every = run_chunks(env, actions)
    every_renders = env.renders - before
    env.config = replace(env.config, render="on_demand")
    before = env.renders
    on_demand = run_chunks(env, actions)
    assert np.array_equal(every, on_demand)
    assert env.renders - before == 3 and every_renders == 2 * 20  # 2 cameras x (10 wait + 10 policy) steps


def test_a_trial_replays_identically_whatever_ran_before(env):
    actions = random_actions(8)
    first = run_chunks(env, actions)
    state = env.sim.get_state().flatten()
    env.reset(4)
    for a in -actions:  # a different episode in between, ending with the gripper in another state
        env.step(a)
    assert np.array_equal(run_chunks(env, actions), first)
    assert np.array_equal(env.sim.get_state().flatten(), state)


def test_bad_requests_are_named(env):
    env.reset(0, cameras=())
    with pytest.raises(ConfigError, match="camera 'agentview' was not rendered at step 0"):
        env.image()
    with pytest.raises(ConfigError, match="unknown cameras \\['frontview'\\]"):
        env.step(np.zeros(7), cameras=("frontview",))
    with pytest.raises(ConfigError, match="init states 0..49, got trial 50"):
        env.reset(50)
