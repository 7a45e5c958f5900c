"""The capacity rule and model on hand-made supply curves."""

import pytest

from worldvla_dist.errors import ConfigError
from worldvla_dist.evaluation.capacity import (SupplyCurve, choose_workers, demand_chunks_per_s,
                                               predict_throughput)

# batch 1 takes 0.1 s, batch 4 0.2 s, batch 8 0.4 s: 10, 20, 20 chunks/s
CURVE = SupplyCurve({1: 10.0, 4: 20.0, 8: 20.0})


def test_supply_curve_interpolates_latency_and_gains_nothing_past_what_was_measured():
    assert CURVE.latency_s(1) == pytest.approx(0.1)
    assert CURVE.latency_s(2) == pytest.approx(0.1 + 0.1 / 3)
    assert CURVE.latency_s(0.5) == pytest.approx(0.1)
    assert CURVE.at(16) == pytest.approx(20.0)
    assert SupplyCurve.from_stats({"1": 7.0, "4": 11.8}).chunks_per_s == {1: 7.0, 4: 11.8}
    assert SupplyCurve.from_stats({}) is None and SupplyCurve.from_stats(None) is None


def test_demand_is_policy_calls_over_sim_seconds_and_skips_errors_and_old_results():
    results = [{"error": None, "policy_calls": 10, "seconds": 6.0, "policy_wait_s": 1.0},
               {"error": None, "policy_calls": 10, "seconds": 7.0, "policy_wait_s": 2.0},
               {"error": "EnvCrashed", "policy_calls": 3, "seconds": 1.0, "policy_wait_s": 0.0},
               {"error": None, "policy_calls": 5, "seconds": 1.0}]  # written before policy_wait_s existed
    assert demand_chunks_per_s(results) == pytest.approx(20 / 10)
    assert demand_chunks_per_s([]) is None


def test_without_a_measurement_the_rule_is_the_queue_rule():
    assert choose_workers(35, 10, 2, 8).workers == 4
    assert choose_workers(35, 10, 2, 8).bound == "queue"
    assert choose_workers(500, 10, 2, 8).bound == "max"
    decision = choose_workers(5, 10, 2, 8)
    assert (decision.workers, decision.bound) == (2, "min")


def test_supply_bounds_the_count_where_the_workers_draw_0_8_of_the_servers_most():
    # a worker asks 2 chunks/s (0.5 s of sim per chunk); the server's most is 20 chunks/s (batch >= 4)
    decision = choose_workers(1000, 10, 1, 32, CURVE, demand=2.0, max_batch=8)
    assert decision.bound == "supply" and "2.00 chunks/s" in decision.reason and "80% of their most" in decision.reason
    drawn = lambda w, servers=1: predict_throughput(w, servers, 0.5, 1.0, 0.0, CURVE, 8).chunks_per_s  # noqa: E731
    w = decision.workers
    assert drawn(w) >= 0.8 * 20 > drawn(w - 1)  # the fewest that draw 0.8 of the most
    # a waiting worker asks nothing: 8 workers (the W / P = 8 shortcut's choice) leave the server idle part of the time
    assert w > 8 and drawn(8) < 0.8 * 20
    # two servers on the same stream feed more workers
    assert choose_workers(1000, 10, 1, 64, CURVE, demand=2.0, servers=2, max_batch=8).workers > w
    # the queue still wins when it asks for fewer
    assert choose_workers(30, 10, 1, 32, CURVE, demand=2.0).bound == "queue"
    # a server far faster than the workers: supply does not bind
    assert choose_workers(1000, 10, 1, 32, SupplyCurve({1: 1000.0}), demand=2.0).bound == "max"
    # the floor holds, and says what the rule alone would choose
    floor = choose_workers(1000, 10, 20, 32, CURVE, demand=50.0)
    assert (floor.workers, floor.bound) == (20, "min") and "supply-bound" in floor.reason


def test_where_batching_pays_the_rule_fills_batches_and_where_it_does_not_it_stays_near_batch_one():
    flat = SupplyCurve({1: 10.0, 8: 10.0})  # a CPU server: batching gains nothing
    gpu = SupplyCurve({1: 1.0, 8: 6.0})  # batch 8 gives 6x the chunks/s of batch 1
    on_flat = choose_workers(1000, 10, 1, 64, flat, demand=2.0, max_batch=8)
    on_gpu = choose_workers(1000, 10, 1, 64, gpu, demand=2.0, max_batch=8)
    assert predict_throughput(on_flat.workers, 1, 0.5, 1.0, 0.0, flat, 8).mean_batch < 2
    assert predict_throughput(on_gpu.workers, 1, 0.5, 1.0, 0.0, gpu, 8).mean_batch > 4


def test_bad_bounds_are_refused():
    with pytest.raises(ConfigError, match="episodes_per_worker"):
        choose_workers(10, 0, 1, 4)
    with pytest.raises(ConfigError):
        choose_workers(10, 10, 5, 4)


def test_prediction_is_sim_bound_with_few_workers_and_capped_by_supply_with_many():
    one = predict_throughput(1, 1, sim_s_per_chunk=0.4, chunks_per_episode=10, episode_overhead_s=0.0, supply=CURVE)
    assert one.chunks_per_s == pytest.approx(1 / 0.5, rel=0.05)  # 0.4 s sim + 0.1 s batch of 1
    assert one.bound == "sim" and one.mean_batch == pytest.approx(1.0, abs=0.3)
    many = predict_throughput(64, 1, 0.4, 10, 0.0, CURVE)
    assert many.chunks_per_s == pytest.approx(20.0, rel=0.01) and many.bound == "policy"
    assert many.mean_batch == pytest.approx(8.0)  # a saturated server runs full batches
    assert predict_throughput(64, 2, 0.4, 10, 0.0, CURVE).chunks_per_s > 1.5 * many.chunks_per_s
    assert many.episodes_per_hour == pytest.approx(3600 * many.chunks_per_s / 10)
    with pytest.raises(ConfigError):
        predict_throughput(0, 1, 0.4, 10, 0.0, CURVE)


def test_on_shared_cores_the_rate_is_capped_by_the_core_seconds_a_chunk_costs():
    # 4 workers at 0.4 s of sim a chunk and a batch of 1 at 0.1 s: 0.5 core-seconds a chunk
    alone = predict_throughput(4, 1, 0.4, 10, 0.0, CURVE)
    two_cores = predict_throughput(4, 1, 0.4, 10, 0.0, CURVE, cpus=2)
    assert two_cores.bound == "cpu" and alone.bound != "cpu"
    assert two_cores.chunks_per_s <= 2 / (0.4 + 0.1 / two_cores.mean_batch) + 1e-9 < alone.chunks_per_s
    # one worker on two cores is not held back by them
    assert predict_throughput(1, 1, 0.4, 10, 0.0, CURVE, cpus=2).chunks_per_s == pytest.approx(
        predict_throughput(1, 1, 0.4, 10, 0.0, CURVE).chunks_per_s)
