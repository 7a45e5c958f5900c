"""Starting or joining Ray the way this project needs on one machine and on a cluster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import ray

from worldvla_dist.runtime.redis_server import free_loopback_port

STATE_API_ENV = "RAY_API_SERVER_ADDRESS"  # where Ray's state API (ray.util.state) finds the dashboard

# Without this, Ray binds its servers to the machine's external interface even when told 127.0.0.1.
_LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
for _k, _v in _LOOPBACK_ENV.items():
    os.environ.setdefault(_k, _v)


def init_ray(address: str | None = None, num_cpus: int | None = None, object_store_mb: int = 256) -> None:
    """Joins the cluster at `address` ("auto" inside `ray job submit`), or starts a local Ray on loopback
    with an explicit object store (Ray's default takes 30% of RAM)."""
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
    else:  # "local": a Ray of our own, even when `ray start` left a cluster on this machine
        # With a dashboard on a port of our own and its URL in every worker's environment, Ray's state
        # API answers inside actors. Ray Train's PlacementGroupCleaner asks it whether the controller is
        # alive; without it the state API guesses the cluster from /tmp/ray/ray_current_cluster (another,
        # maybe long gone Ray) and every training run ended with a 12 s timeout. Only the workers get
        # it: in this process it would outlive the Ray and redirect later `ray job submit`s to it.
        port = free_loopback_port()
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=True, dashboard_host="127.0.0.1",
                 dashboard_port=port, _node_ip_address="127.0.0.1",
                 runtime_env={"env_vars": {STATE_API_ENV: f"http://127.0.0.1:{port}"}},
                 object_store_memory=object_store_mb * 2 ** 20, log_to_driver=True)


RAY_CLI = str(Path(sys.executable).parent / "ray")


class RayNode:
    """One `ray start` node on loopback (a head, or a worker joining `join`), stopped by stopping
    it alone: `ray start --block` runs in the foreground and takes its processes down on SIGTERM,
    where `ray stop` would kill every Ray on the machine (a user's other jobs included)."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, join: str | None = None,
                 ready_timeout_s: float = 120.0):
        self.env = {**os.environ, **_LOOPBACK_ENV, **(env or {})}
        where = [f"--address={join}"] if join else ["--head", f"--ray-client-server-port={free_loopback_port()}"]
        # the agent's HTTP port is fixed (52365) by default: a second Ray on the machine would lose its
        # agent, and with it `ray job submit` ("No available agent to submit job")
        self.cmd = [RAY_CLI, "start", *where, "--block", "--node-ip-address=127.0.0.1", "--disable-usage-stats",
                    f"--dashboard-agent-listen-port={free_loopback_port()}", *args]
        self.ready_timeout_s = ready_timeout_s
        self.process: subprocess.Popen | None = None

    def start(self, address: str, nodes: int = 1, url: str | None = None) -> "RayNode":
        """Starts the node; returns once `ray status` at `address` counts `nodes` nodes and `url`
        (a job server, say) answers."""
        self.process = subprocess.Popen(self.cmd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        text=True)
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"`{' '.join(self.cmd)}` exited: {self.process.stderr.read()[-2000:]}")
            if self._counts(address) >= nodes and (url is None or _answers(url)):
                return self
            time.sleep(1.0)
        self.stop()
        raise TimeoutError(f"`{' '.join(self.cmd)}` was not up after {self.ready_timeout_s:.0f} s")

    def _counts(self, address: str) -> int:
        status = subprocess.run([RAY_CLI, "status", f"--address={address}"], env=self.env, capture_output=True,
                                text=True)
        healthy = status.stdout.split("Healthy:")[-1].split("Pending:")[0] if status.returncode == 0 else ""
        return healthy.count("node_")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> "RayNode":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False
