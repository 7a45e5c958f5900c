"""A LIBERO env in its own process, so that a crash (segfault in MuJoCo or EGL) or a hang takes down
only that env: the call raises `EnvCrashed` / `EnvTimeout`, the process is replaced, and the caller
records the episode as an error and may retry it. Commands and replies are msgpack (our codec), not
pickle, over a pipe.

One env per process: on this machine two env processes saturate two cores (ENVIRONMENT.md: 3 are no
faster, 4 slower), and a process boundary is what isolates a crash.

The child is a fresh interpreter started with `subprocess`, not `multiprocessing`'s spawn: spawn
re-imports the parent's main script in the child (a benchmark or job script importing torch, Ray and
transformers added ~5 s to every env start, and a script without a `__main__` guard ran again), and a
fork would inherit the parent's GL contexts and threads. Only the package's own module and the
parent's `sys.path` go across.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import signal
import subprocess
import sys
from dataclasses import asdict
from multiprocessing.connection import Connection

import numpy as np

from worldvla_dist.envs.libero_env import LiberoEnvConfig
from worldvla_dist.errors import WorldVLAError
from worldvla_dist.runtime.codec import pack, unpack

log = logging.getLogger(__name__)


class EnvCrashed(WorldVLAError, RuntimeError):
    """The env process died (or could not start); it has been replaced."""


class EnvTimeout(EnvCrashed):
    """The env process did not answer within the watchdog's time; it has been killed and replaced."""


# what the child interpreter runs: the parent's import path, then serve() on the inherited socket
_CHILD_MAIN = ("import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
               "from worldvla_dist.envs.env_process import serve; serve(int(sys.argv[2]), json.loads(sys.argv[3]))")


def serve(fd: int, config: dict) -> None:
    """Child process: build the env, then answer commands on the socket `fd` until told to close (or
    until the parent is gone: its end of the socket closes)."""
    from worldvla_dist.envs.libero_env import LiberoEnv

    conn = Connection(fd)
    env = LiberoEnv(LiberoEnvConfig(**config))
    conn.send_bytes(pack({"ok": True, "num_trials": env.num_trials, "language": env.task.language}))
    try:
        while True:
            try:
                raw = conn.recv_bytes()
            except EOFError:
                break
            msg = unpack(raw, ("cmd",))
            try:
                if msg["cmd"] == "close":
                    break
                if msg["cmd"] == "reset":
                    env.reset(int(msg["trial"]), tuple(msg["cameras"]))
                elif msg["cmd"] == "step":
                    env.step(np.asarray(msg["action"], dtype=np.float64), tuple(msg["cameras"]))
                else:
                    raise ValueError(f"unknown command {msg['cmd']!r}")
                frames = {c: env.image(c) for c in msg["cameras"]}
                conn.send_bytes(pack({"ok": True, "done": env.done, "truncated": env.truncated,
                                      "steps": env.steps, "frames": frames}))
            except (ValueError, RuntimeError) as e:  # a bad request: report it, keep serving
                conn.send_bytes(pack({"ok": False, "error": f"{type(e).__name__}: {e}"}))
    finally:
        env.close()


class EnvProcess:
    """`reset(trial)` / `step(action)` on a LIBERO env living in a child process, each call under a
    watchdog. Frames come back in the model's orientation for the cameras named in the call."""

    def __init__(self, config: LiberoEnvConfig, step_timeout_s: float = 60.0, start_timeout_s: float = 300.0):
        self.config = config
        self.step_timeout_s = step_timeout_s
        self.start_timeout_s = start_timeout_s
        self.restarts = 0
        self.ready = False  # a started process that has answered; False while (re)starting
        self._proc = None
        self._conn = None
        self.language = ""
        self.num_trials = 0
        self._start()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def _start(self) -> None:
        parent, child = mp.Pipe()  # a socket pair
        self._proc = subprocess.Popen([sys.executable, "-c", _CHILD_MAIN, json.dumps(sys.path), str(child.fileno()),
                                       json.dumps(asdict(self.config))], pass_fds=[child.fileno()])
        child.close()
        self._conn = parent
        reply = self._receive(self.start_timeout_s, what="start")
        self.language, self.num_trials = reply["language"], reply["num_trials"]
        self.ready = True

    def _kill(self) -> None:
        self.ready = False
        if self._proc is not None and self._proc.poll() is None:
            os.kill(self._proc.pid, signal.SIGKILL)
        if self._proc is not None:
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # stuck in the kernel: it goes when it can, we go on
                log.warning("env process %s did not exit within 10 s of SIGKILL", self._proc.pid)
        if self._conn is not None:
            self._conn.close()
        self._proc = self._conn = None

    def _replace(self) -> None:
        self._kill()
        self.restarts += 1
        self._start()

    def _receive(self, timeout_s: float, what: str) -> dict:
        try:
            if not self._conn.poll(timeout_s):
                pid = self.pid
                self._kill()
                raise EnvTimeout(f"env process {pid} ({self.config.suite}/{self.config.task}) gave no answer to "
                                 f"{what} within {timeout_s:.0f} s; killed")
            return unpack(self._conn.recv_bytes())
        except (EOFError, ConnectionError, OSError) as e:
            code = self._proc.poll() if self._proc else None
            self._kill()
            raise EnvCrashed(f"env process ({self.config.suite}/{self.config.task}) died during {what} "
                             f"(exit code {code}): {type(e).__name__}") from e

    def _call(self, what: str, **payload) -> dict:
        if self._proc is None:
            self._replace()
        try:
            self._conn.send_bytes(pack({"cmd": what, **payload}))
            reply = self._receive(self.step_timeout_s, what)
        except (BrokenPipeError, ConnectionError, OSError) as e:
            self._kill()
            self._replace_quietly()
            raise EnvCrashed(f"env process ({self.config.suite}/{self.config.task}) was gone at {what}") from e
        except EnvCrashed:
            self._replace_quietly()
            raise
        if not reply["ok"]:
            raise ValueError(f"env process refused {what}: {reply['error']}")
        return reply

    def _replace_quietly(self) -> None:
        """Bring up a fresh process after a failure; if even that fails, the next call retries."""
        try:
            self._replace()
        except EnvCrashed as e:
            log.warning("could not restart the env process: %s", e)

    def reset(self, trial: int, cameras: tuple[str, ...] = ("agentview",)) -> dict:
        return self._call("reset", trial=trial, cameras=list(cameras))

    def step(self, action: np.ndarray, cameras: tuple[str, ...] = ()) -> dict:
        """-> {"done", "truncated", "steps", "frames": {camera: (H, W, 3) uint8}}"""
        return self._call("step", action=np.asarray(action, dtype=np.float64), cameras=list(cameras))

    def close(self) -> None:
        if self._conn is not None and self._proc is not None and self._proc.poll() is None:
            try:
                self._conn.send_bytes(pack({"cmd": "close"}))
                self._proc.wait(timeout=30)
            except (BrokenPipeError, OSError, subprocess.TimeoutExpired):
                pass
        self._kill()

    def __enter__(self) -> "EnvProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
