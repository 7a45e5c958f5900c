"""The evaluation on a real Ray autoscaler (configs/cluster_local.yaml: Ray's fake multi-node provider,
each node a real raylet on this machine; a head with no CPUs, 0 to 2 one-CPU `cpu_worker` nodes).
The fleet's request and its queued SimWorkers make the autoscaler add nodes, the episodes run there,
the nodes go once idle; a node SIGKILLed mid-episode (its raylet and the workers it started, as a
dead machine) loses and doubles no trial. Node counts are
read from Ray (ray.nodes()), not from the fleet."""

import logging
import os
import time
import uuid

import pytest
import ray

from actors.eval_fleet import EvalFleet, FleetConfig
from actors.local_autoscaler import LocalAutoscalingCluster, alive_worker_nodes
from worldvla_dist.evaluation.episode_worker import EpisodeWorkerConfig
from worldvla_dist.evaluation.eval_run import EvalRun, plan_episodes
from worldvla_dist.runtime.codec import unpack
from worldvla_dist.runtime.redis_client import connect
from worldvla_dist.runtime.redis_server import EmbeddedRedis
from worldvla_dist.serving.policy_service import PolicyServiceConfig

pytestmark = [pytest.mark.integration, pytest.mark.slow]
log = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def redis_server():
    with EmbeddedRedis() as s:
        yield s


@pytest.fixture(scope="module")
def autoscaling_cluster():
    """A head on the fake provider, this process its driver; only this cluster's processes are stopped."""
    saved = os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "1"  # 0 is single-node mode
    try:
        with LocalAutoscalingCluster() as cluster:
            ray.init(address=cluster.address, log_to_driver=False)
            try:
                yield cluster
            finally:
                ray.shutdown()
    finally:
        if saved is None:
            os.environ.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
        else:
            os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = saved


class NodeCounts:
    """(seconds, worker nodes alive) each time the count changes, from ray.nodes()."""

    def __init__(self):
        self.start = time.monotonic()
        self.changes: list[tuple[float, int]] = []

    def sample(self) -> int:
        n = len(alive_worker_nodes())
        if not self.changes or self.changes[-1][1] != n:
            self.changes.append((round(time.monotonic() - self.start, 1), n))
        return n

    def first_time(self, condition) -> float:
        return next(t for t, n in self.changes if condition(n))

    def wait_for(self, condition, timeout_s: float, what: str, poll=None) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition(self.sample()):
            assert time.monotonic() < deadline, f"timed out waiting for {what}; worker nodes over time: {self.changes}"
            if poll:
                poll()
            time.sleep(0.5)


def start_eval(redis_server, checkpoint, specs, worker_kw=None, **fleet_kw):
    """The eval job's path (jobs/eval_libero.py main) with the PolicyServer on the CPU-less head
    (policy_cpus 0): the worker nodes are left to the SimWorkers."""
    run_id = uuid.uuid4().hex[:8]
    worker = EpisodeWorkerConfig(run_id=run_id, **(worker_kw or {}))
    service = PolicyServiceConfig(queue=f"eval:{run_id}:policy")
    fleet = FleetConfig(checkpoint=str(checkpoint), policy_cpus=0.0, policy_torch_threads=1, **fleet_kw)
    run = EvalRun(connect(redis_server.url), worker, specs)
    missing = run.enqueue_missing()
    fleet = EvalFleet(redis_server.url, fleet, worker, service).start()
    fleet.scale_to_queue(missing)
    return run, fleet


def assert_exactly_one_result_per_spec(run):
    assert run.results.keys() == {s.key for s in run.specs}
    assert len(run.results) == len(run.specs)


def test_the_autoscaler_adds_nodes_for_the_queue_and_releases_them_when_idle(autoscaling_cluster, redis_server,
                                                                            tiny_checkpoint):
    counts = NodeCounts()
    assert counts.sample() == 0  # min_workers 0: the head alone
    specs = plan_episodes(["libero_object"], [1], trials=4, max_steps=10)
    run, fleet = start_eval(redis_server, tiny_checkpoint, specs, num_workers=1, max_workers=2,
                            episodes_per_worker=2)
    assert len(fleet.workers) == 2  # 4 queued episodes, 2 per SimWorker, at most 2

    def poll():
        counts.sample()
        fleet.supervise()
        fleet.scale_to_queue(run.queue.depth())

    try:
        run.wait(on_poll=poll, timeout_s=300)
        placement = fleet.placement()
    finally:
        run.stop_workers()
        fleet.stop(timeout_s=30)
    assert_exactly_one_result_per_spec(run)
    assert run.progress().errors == 0 and fleet.restarts == {"policy": 0, "sim": 0}
    workers = {n["NodeID"] for n in alive_worker_nodes()}
    assert len(set(placement["sim"])) == 2 and set(placement["sim"]) <= workers  # one SimWorker per worker node
    drained = time.monotonic() - counts.start
    counts.wait_for(lambda n: n == 0, 90, "the idle nodes to be released")
    released = time.monotonic() - counts.start - drained
    ns = [n for _, n in counts.changes]
    assert ns[0] == 0 and max(ns) >= 2 and ns[-1] == 0, counts.changes
    log.info("worker nodes over time (s, nodes): %s; 2 nodes after %s s; queue drained at %.1f s, nodes released "
             "%.1f s later", counts.changes, counts.first_time(lambda n: n >= 2), drained, released)


def test_a_node_killed_mid_evaluation_loses_and_doubles_no_trial(autoscaling_cluster, redis_server, tiny_checkpoint):
    counts = NodeCounts()
    specs = plan_episodes(["libero_object"], [2], trials=4, max_steps=30)  # long enough to be caught mid-episode
    run, fleet = start_eval(redis_server, tiny_checkpoint, specs, num_workers=2, worker_kw={"reclaim_after_s": 4.0})

    def poll():
        counts.sample()
        fleet.supervise()

    def holding_an_episode() -> tuple[str, str, list[str]] | None:
        """(node id, name, queue entries held) of a SimWorker with an episode in hand and its env running."""
        assert run.progress().done < len(specs), "the run ended before a SimWorker was caught mid-episode"
        for index, actor in enumerate(fleet.workers):
            if (held := pending_of(run, f"sim-{index}")) and ray.get(actor.env_pid.remote(), timeout=30):
                return ray.get(actor.node_id.remote(), timeout=30), f"sim-{index}", held
        return None

    try:
        victims = []
        counts.wait_for(lambda n: victims.append(holding_an_episode()) or victims[-1] is not None, 240,
                        "a SimWorker running an episode", poll)
        victim, victim_name, held = victims[-1]
        held_keys = {spec_of(run, entry).key for entry in held}
        autoscaling_cluster.kill_node(victim)
        killed_at = time.monotonic() - counts.start
        run.wait(on_poll=poll, timeout_s=300)
    finally:
        run.stop_workers()
        fleet.stop(timeout_s=30)
    assert_exactly_one_result_per_spec(run)
    assert run.progress().errors == 0
    assert victim not in {n["NodeID"] for n in alive_worker_nodes()}
    results = run.results_so_far()
    for key in held_keys:  # the killed node's episode was run again elsewhere, and acked
        assert results[key].error is None
    assert not set(held) & set(pending_of(run, victim_name))
    # the SimWorker's death shows only once its node is marked dead (missed heartbeats, ~13 s here):
    # the survivor has often reclaimed the episode and finished the run before, so no restart is asserted
    log.info("node %s (%s) killed at %.1f s holding %s; re-run by %s; worker nodes over time (s, nodes): %s; "
             "restarts %s", victim[-5:], victim_name, killed_at, sorted(held_keys),
             [results[k].worker for k in held_keys], counts.changes, fleet.restarts)


def spec_of(run, entry_id: str):
    ((_, fields),) = run.redis.xrange(run.queue.config.name, min=entry_id, max=entry_id)
    return run.parse_spec(unpack(fields[b"data"]))


def pending_of(run, consumer: str) -> list[str]:
    rows = run.redis.xpending_range(run.queue.config.name, run.queue.config.group, min="-", max="+", count=100,
                                    consumername=consumer)
    return [r["message_id"].decode() for r in rows]


def test_where_supply_binds_a_second_policy_server_joins_the_request_stream(autoscaling_cluster, redis_server,
                                                                            tiny_checkpoint):
    """`--max-policy-servers 2` on the autoscaled cluster: once the first PolicyServer's supply is
    measured and binds, the fleet starts a second real PolicyServer on the same request stream (its
    own consumer); it answers some of the SimWorkers' requests, and every request and every trial is
    answered exactly once. The servers' supply is measured here; the SimWorkers' demand is set to
    twice one server's batch-1 supply (GPU-speed simulators against a CPU policy), since on this
    machine's shared cores the two are too close to bind every time."""
    specs = plan_episodes(["libero_object"], [3], trials=10, max_steps=40)
    run, fleet = start_eval(redis_server, tiny_checkpoint, specs, num_workers=1, max_workers=2,
                            episodes_per_worker=1, max_servers=2)
    assert len(fleet.servers) == 1  # the queue rule alone adds SimWorkers, never a server
    supply, added_after = [], []

    def poll():
        fleet.supervise()
        if len(fleet.servers) == 1 and (curve := fleet.measured_supply()):  # once the first batches are timed
            supply.append(curve)
            fleet.scale_to_queue(run.queue.depth(), curve, demand=2 * curve.at(1))
            added_after.append(run.progress().done)

    try:
        run.wait(on_poll=poll, timeout_s=300)
    finally:
        run.stop_workers()
        fleet.stop(timeout_s=30)
    assert_exactly_one_result_per_spec(run)
    assert run.progress().errors == 0 and fleet.restarts == {"policy": 0, "sim": 0}
    assert supply and fleet.decision.bound == "supply", fleet.decision
    assert sorted(fleet.server_stats) == [0, 1]
    answered = [fleet.server_stats[i]["requests"] for i in (0, 1)]
    assert answered[1] > 0, f"the second PolicyServer answered nothing: {answered}"
    assert sum(answered) == sum(r.policy_calls for r in run.results_so_far().values())
    log.info("second PolicyServer after %d of %d episodes (%s); requests answered per server %s; supply at batch 1 "
             "%.1f chunks/s", added_after[0], len(specs), fleet.decision.reason, answered, supply[0].at(1))
