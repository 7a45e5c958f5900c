"""EvalFleet.scale_to_queue without Ray actors (launches recorded, the autoscaler request captured):
the queue rule alone until supply is measured, then no more SimWorkers than the servers can feed, and
a second PolicyServer where supply binds and max_servers allows."""

import pytest

from actors.eval_fleet import EvalFleet, FleetConfig
from worldvla_dist.evaluation.capacity import SupplyCurve, choose_workers
from worldvla_dist.evaluation.episode_worker import EpisodeWorkerConfig
from worldvla_dist.serving.policy_service import PolicyServiceConfig

CURVE = SupplyCurve({1: 10.0, 4: 20.0, 8: 20.0})  # at most 20 chunks/s; workers ask 2/s each below


def rule(servers: int) -> int:
    """What the capacity rule chooses for a deep queue (tests/worldvla_dist/evaluation/test_capacity.py pins it)."""
    return choose_workers(1000, 10, 1, 32, CURVE, demand=2.0, servers=servers, max_batch=8).workers


@pytest.fixture
def requests(monkeypatch):
    import ray.autoscaler.sdk

    asked = []
    monkeypatch.setattr(ray.autoscaler.sdk, "request_resources", lambda **kw: asked.append(kw))
    return asked


def fleet(**kw) -> EvalFleet:
    f = EvalFleet("redis://unused", FleetConfig("ckpt", num_workers=1, max_workers=32, episodes_per_worker=10, **kw),
                  EpisodeWorkerConfig(run_id="t"), PolicyServiceConfig(max_batch=8))
    f.supervisor.launch = lambda kind, index, factory: f.supervisor.actors.setdefault((kind, index), object())
    f._start_server(0)
    return f


def test_without_a_supply_measurement_the_queue_rule_is_unchanged(requests):
    f = fleet()
    assert f.scale_to_queue(55) == 6 and f.decision.bound == "queue"
    assert requests[-1] == {"bundles": [{"CPU": 1.0}] * 6}
    assert f.scale_to_queue(10_000) == 32 and f.decision.bound == "max"
    assert f.scale_to_queue(0) == 32  # never stops a worker


def test_measured_supply_caps_the_workers_and_says_why(requests):
    f = fleet()
    assert f.scale_to_queue(1000, CURVE, demand=2.0) == rule(1) < 32
    assert f.decision.bound == "supply" and f"{rule(1)} are predicted to draw" in f.decision.reason
    assert len(f.servers) == 1


def test_a_second_policy_server_is_added_where_supply_binds(requests):
    f = fleet(max_servers=2)
    assert f.scale_to_queue(1000, CURVE, demand=2.0) == rule(1) and len(f.servers) == 2
    assert {"CPU": 1.0} in requests[-1]["bundles"] and len(requests[-1]["bundles"]) == rule(1) + 1  # + server 1
    assert f.scale_to_queue(1000, CURVE, demand=2.0) == rule(2) > rule(1) and "from 2 PolicyServer(s)" in f.decision.reason
    assert len(f.servers) == 2  # max_servers reached


def test_measured_supply_is_the_mean_over_servers_at_each_batch():
    f = fleet()
    stats = [{"supply_chunks_per_s": {"1": 6.0, "4": 12.0}}, {"supply_chunks_per_s": {"1": 8.0}}]
    assert f.measured_supply(stats).chunks_per_s == {1: 7.0, 4: 12.0}
    assert f.measured_supply([{}]) is None
