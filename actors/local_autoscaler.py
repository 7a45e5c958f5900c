"""A Ray head that autoscales on this machine: Ray's fake multi-node provider launches each node the
autoscaler asks for as a real raylet here (configs/cluster_local.yaml), and stopping it stops only
this cluster's processes.

    python -m actors.local_autoscaler --config configs/cluster_local.yaml   # prints RAY_ADDRESS; Ctrl-C stops

`ray.cluster_utils.AutoscalingCluster` does the same for Ray's own tests, but its start() and
shutdown() run `ray stop --force`, which kills every Ray on the machine (a user's other jobs
included), and its template (fake_multi_node/example.yaml) is not in the Ray 2.60 wheel.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
import yaml

from actors.ray_setup import RAY_CLI, RayNode
from worldvla_dist.runtime.redis_server import free_loopback_port

log = logging.getLogger(__name__)

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "cluster_local.yaml"
FAKE_CLUSTER_ENV = {
    "RAY_FAKE_CLUSTER": "1",  # the fake provider refuses to start without it
    "AUTOSCALER_UPDATE_INTERVAL_S": "1",  # the autoscaler's loop (5 s by default)
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1",  # 0 is single-node mode: the launched nodes could not join
}


def autoscaling_config(path: str | Path, gcs_address: str) -> dict:
    """The config at `path` with the provider pointed at the head's GCS (`ip:port`): the fake provider's
    nodes look for it on port 6379 otherwise and never join."""
    config = yaml.safe_load(Path(path).read_text())
    provider = config.get("provider", {})
    if provider.get("type") != "fake_multinode":
        raise ValueError(f"autoscaling_config: {path} must use provider type fake_multinode, "
                         f"got {provider.get('type')!r}")
    config["provider"] = {**provider, "gcs_address": gcs_address}
    return config


class _AutoscalingHead(RayNode):
    def _counts(self, address: str) -> int:
        """Nodes `ray status` counts active: with an autoscaling config it lists them by type under
        "Active:" (" 1 ray.head.default"), not by node id under "Healthy:"."""
        status = subprocess.run([RAY_CLI, "status", f"--address={address}"], env=self.env, capture_output=True,
                                text=True)
        if status.returncode != 0 or "Active:" not in status.stdout:
            return 0
        active = status.stdout.split("Active:")[1].split("Pending:")[0]
        return sum(int(words[0]) for words in map(str.split, active.splitlines()) if words and words[0].isdigit())


class LocalAutoscalingCluster:
    """A `ray start --head --autoscaling-config` on loopback with a port of its own; the nodes its
    autoscaler launches are processes of the autoscaler's, not of the head's, so stop() finds them by
    the GCS address on their command lines."""

    def __init__(self, config: str | Path = DEFAULT_CONFIG, object_store_mb: int = 128,
                 ready_timeout_s: float = 120.0, start_attempts: int = 2):
        self.config, self.object_store_mb, self.ready_timeout_s = config, object_store_mb, ready_timeout_s
        self.start_attempts = start_attempts
        self._config_dir = tempfile.TemporaryDirectory(prefix="worldvla-autoscaler-")
        self.config_path = Path(self._config_dir.name) / "autoscaling.yaml"
        self._new_head()

    def _new_head(self) -> None:
        self.port = free_loopback_port()
        self.address = f"127.0.0.1:{self.port}"
        self.config_path.write_text(yaml.safe_dump(autoscaling_config(self.config, self.address)))
        self.head = _AutoscalingHead([f"--port={self.port}", "--num-cpus=0", "--num-gpus=0",
                                      "--include-dashboard=false",
                                      f"--object-store-memory={self.object_store_mb * 2 ** 20}",
                                      f"--autoscaling-config={self.config_path}"], FAKE_CLUSTER_ENV,
                                     ready_timeout_s=self.ready_timeout_s)

    def start(self) -> "LocalAutoscalingCluster":
        """Starts the head, again on a new port if it fails: Ray gives a raylet a fixed 30 s to register
        (ray/_private/node.py), which a starved low-priority start on a busy machine overran."""
        for attempt in range(1, self.start_attempts + 1):
            try:
                self.head.start(self.address)
                break
            except (RuntimeError, TimeoutError) as e:
                self._stop_processes()
                if attempt == self.start_attempts:
                    self._config_dir.cleanup()
                    raise
                log.warning("autoscaling head at %s did not start (%s); again on a new port", self.address,
                            str(e)[-300:])
                self._new_head()
            except BaseException:
                self.stop()
                raise
        log.info("autoscaling head at %s (config %s)", self.address, self.config_path)
        return self

    def processes(self) -> list[psutil.Process]:
        """This cluster's processes: the head's tree and every process given its GCS address or port
        (raylets, agents and workers of the launched nodes; the GCS even when `ray start` died first)."""
        flags = {f"--gcs-address={self.address}", f"--gcs_server_port={self.port}"}
        found: dict[int, psutil.Process] = {}
        if self.head.process is not None:
            try:
                root = psutil.Process(self.head.process.pid)
                found.update({p.pid: p for p in [root, *root.children(recursive=True)]})
            except psutil.NoSuchProcess:
                pass
        for p in psutil.process_iter(["cmdline"]):
            if flags & set(p.info["cmdline"] or []):
                found.setdefault(p.pid, p)
        found.pop(os.getpid(), None)
        return list(found.values())

    def raylet_pid(self, node_id: str) -> int | None:
        """The pid of the raylet of node `node_id` (hex) in this cluster, None when it is gone."""
        wanted = {f"--gcs-address={self.address}", f"--node_id={node_id}"}
        for p in psutil.process_iter(["cmdline"]):
            if wanted <= set(p.info["cmdline"] or []):
                return p.pid
        return None

    def kill_node(self, node_id: str) -> int:
        """SIGKILLs the raylet of node `node_id` and the workers it started (with their children: env
        processes), as a machine that dies would; returns the raylet's pid. The raylet alone is not
        enough: its orphaned workers keep serving from Redis until they notice, and finished the
        episode they held."""
        pid = self.raylet_pid(node_id)
        if pid is None:
            raise LookupError(f"LocalAutoscalingCluster.kill_node: no raylet of node {node_id} in the cluster "
                              f"at {self.address}")
        raylet = psutil.Process(pid)
        for p in [raylet, *raylet.children(recursive=True)]:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        return pid

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stops the head (its `ray start --block` takes its own processes down), then the launched
        nodes' processes: SIGTERM, and SIGKILL for what is left after `timeout_s`."""
        self._stop_processes(timeout_s)
        self._config_dir.cleanup()

    def _stop_processes(self, timeout_s: float = 30.0) -> None:
        survivors = self.processes()
        self.head.stop()
        survivors = [p for p in survivors + self.processes() if p.is_running()]
        for p in survivors:
            try:
                p.terminate()
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(survivors, timeout=timeout_s)
        for p in alive:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=10)

    def __enter__(self) -> "LocalAutoscalingCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def alive_worker_nodes() -> list[dict]:
    """The cluster's live nodes other than the head, as Ray reports them (`ray.nodes()`); needs
    ray.init() on the cluster."""
    import ray

    return [n for n in ray.nodes() if n["Alive"] and not n.get("Resources", {}).get("node:__internal_head__")]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    p.add_argument("--object-store-mb", type=int, default=128)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cluster = LocalAutoscalingCluster(args.config, args.object_store_mb)
    stop = []
    for sig in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: a shell starts background jobs with it ignored
        signal.signal(sig, lambda *_: stop.append(1))
    with cluster:
        log.info("export RAY_ADDRESS=%s  (then e.g. python jobs/eval_libero.py ... --policy-cpus 0 --max-workers 2); "
                 "Ctrl-C stops this cluster only", cluster.address)
        while not stop and cluster.head.process.poll() is None:
            time.sleep(1.0)


if __name__ == "__main__":
    main()
