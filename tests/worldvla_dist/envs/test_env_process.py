"""A crashed or hung env is isolated: the call fails with a named error, the process is replaced."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from worldvla_dist.envs.env_process import EnvCrashed, EnvProcess, EnvTimeout
from worldvla_dist.envs.libero_env import LiberoEnvConfig

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def proc():
    with EnvProcess(LiberoEnvConfig("libero_object", 0, image_size_px=64), step_timeout_s=120) as p:
        yield p


def test_steps_and_frames_cross_the_process_boundary(proc):
    reply = proc.reset(0)
    assert reply["frames"]["agentview"].shape == (64, 64, 3) and reply["steps"] == 0
    reply = proc.step(np.zeros(7), cameras=("agentview", "robot0_eye_in_hand"))
    assert reply["steps"] == 1 and not reply["done"] and set(reply["frames"]) == {"agentview", "robot0_eye_in_hand"}
    assert proc.language == "pick up the alphabet soup and place it in the basket" and proc.num_trials == 50
    with pytest.raises(ValueError, match="refused reset"):
        proc.reset(99)  # a bad request is refused, the process lives on
    assert proc.restarts == 0


def test_a_killed_env_process_is_replaced(proc):
    proc.reset(1)
    old = proc.pid
    os.kill(old, signal.SIGKILL)
    with pytest.raises(EnvCrashed, match="died during step"):
        proc.step(np.zeros(7))
    assert proc.restarts == 1 and proc.pid != old
    assert proc.reset(1)["steps"] == 0  # the episode can be retried


def test_a_hung_env_process_is_killed_by_the_watchdog(proc):
    proc.reset(2)
    old = proc.pid
    os.kill(old, signal.SIGSTOP)  # frozen: never answers
    proc.step_timeout_s = 3
    try:
        with pytest.raises(EnvTimeout, match="gave no answer to step within 3 s"):
            proc.step(np.zeros(7))
    finally:
        proc.step_timeout_s = 120
    assert proc.pid != old and proc.reset(2)["steps"] == 0


PARENT_SCRIPT = """
import sys, time
with open(sys.argv[1], "a") as marks:  # top-level code, no __main__ guard: must run in this process only
    marks.write("ran\\n")
from worldvla_dist.envs.env_process import EnvProcess
from worldvla_dist.envs.libero_env import LiberoEnvConfig
env = EnvProcess(LiberoEnvConfig("libero_object", 0, image_size_px=64))
print("child pid", env.pid, flush=True)  # LIBERO prints its own lines to stdout too
time.sleep(120)
"""


def test_the_child_skips_the_parents_script_and_ends_with_the_parent(tmp_path):
    script, marks = tmp_path / "parent.py", tmp_path / "marks.txt"
    script.write_text(PARENT_SCRIPT)
    parent = subprocess.Popen([sys.executable, str(script), str(marks)], stdout=subprocess.PIPE, text=True)
    try:
        child = next(int(line.split()[-1]) for line in parent.stdout if line.startswith("child pid"))
        assert marks.read_text() == "ran\n"  # spawn would have run the script again in the child
        os.kill(parent.pid, signal.SIGKILL)  # no clean-up in the parent: the child sees its socket close
        parent.wait()
        deadline = time.monotonic() + 30
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(child)
    finally:
        parent.kill()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False
