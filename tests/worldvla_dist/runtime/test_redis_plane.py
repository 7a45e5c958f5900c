"""The Redis plane on a real redis-server: embedded launcher, connection errors, the work queue's
ack / reclaim / dead-letter rules, and exactly-once results."""

import pickle
import threading
import time
import uuid
from pathlib import Path

import msgpack
import pytest
import redis
import redis.exceptions

from worldvla_dist.runtime.codec import pack
from worldvla_dist.runtime.redis_client import RedisAuthError, RedisUnavailable, connect, redact
from worldvla_dist.runtime.redis_server import EmbeddedRedis, EmbeddedRedisConfig, free_loopback_port
from worldvla_dist.runtime.result_store import ResultStore
from worldvla_dist.runtime.work_queue import QueueConfig, WorkQueue

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server():
    with EmbeddedRedis() as s:
        yield s


@pytest.fixture
def client(server):
    return connect(server.url)


def fresh_queue(client, **kw) -> WorkQueue:
    return WorkQueue(client, QueueConfig(name=f"q-{uuid.uuid4().hex[:8]}", **kw))


def test_embedded_server_is_loopback_only_and_needs_the_password(server, client):
    assert client.config_get("bind")["bind"] == "127.0.0.1"
    assert server.password not in " ".join(Path("/proc", str(server._proc.pid), "cmdline").read_text().split("\0"))
    with pytest.raises(RedisAuthError, match="requires a password"):
        connect(f"redis://127.0.0.1:{server.port}/0")
    with pytest.raises(RedisAuthError, match=r"refused the credentials"):
        connect(f"redis://:wrong@127.0.0.1:{server.port}/0")
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(port=server.port).set("x", 1)


def test_unreachable_redis_names_the_url_without_the_password():
    url = f"redis://:s3cret@127.0.0.1:{free_loopback_port()}/0"
    with pytest.raises(RedisUnavailable, match=r"cannot reach Redis at redis://:\*\*\*@127\.0\.0\.1") as e:
        connect(url, timeout_s=1)
    assert "s3cret" not in str(e.value)
    assert redact("redis://user:pw@h:1/0") == "redis://user:***@h:1/0"


def test_stop_cleans_up_and_append_only_data_survives_a_restart(tmp_path):
    s = EmbeddedRedis().start()
    folder = s.dir
    s.stop()
    assert not folder.exists() and not s.running
    config = EmbeddedRedisConfig(data_dir=str(tmp_path / "redis"), appendonly=True)
    with EmbeddedRedis(config) as first:
        ResultStore(connect(first.url), "results").put("a", {"x": 1})
    with EmbeddedRedis(config) as second:  # new port and password, same data
        assert ResultStore(connect(second.url), "results").get("a")["x"] == 1


def test_entries_are_shared_between_consumers_and_acked_once(client):
    q = fresh_queue(client)
    q.put_many([{"i": i} for i in range(6)])
    a = q.take("a", count=4, block_s=0.1)
    b = q.take("b", count=4, block_s=0.1)
    assert sorted(d.payload["i"] for d in a + b) == list(range(6)) and len(a) == 4 and len(b) == 2
    assert q.depth() == 6 and q.pending() == 6
    for d in a + b:
        q.ack(d)
    assert q.depth() == 0 and q.pending() == 0
    assert q.take("a", block_s=0.05) == []


def test_a_dead_consumers_entries_are_reclaimed_and_counted(client):
    q = fresh_queue(client, reclaim_after_s=0.2, max_deliveries=2)
    q.put({"job": 1})
    first = q.take("dies", block_s=0.1)
    assert [d.deliveries for d in first] == [1]
    assert q.take("other", block_s=0.05) == []  # not stale yet
    time.sleep(0.3)
    again = q.take("other", block_s=0.05)
    assert [(d.payload["job"], d.deliveries) for d in again] == [(1, 2)]
    time.sleep(0.3)  # "other" dies too: a third delivery would exceed max_deliveries
    assert q.take("third", block_s=0.05) == []
    (dead,) = q.dead_letters()
    assert "delivered 3 times" in dead["reason"] and q.depth() == 0


def test_touch_keeps_a_live_consumers_entry(client):
    q = fresh_queue(client, reclaim_after_s=0.3)
    q.put({"job": 1})
    (d,) = q.take("slow", block_s=0.1)
    for _ in range(4):
        time.sleep(0.15)
        q.touch("slow", d)
        assert q.take("thief", block_s=0.01) == []
    q.ack(d)


def blocked_take(queue: WorkQueue, consumer: str, block_s: float) -> tuple[threading.Thread, list]:
    """`take` in a thread (the client's pool gives it its own connection), so the test can act while it blocks."""
    got: list = []

    def wait():
        try:
            got.extend(queue.take(consumer, block_s=block_s))
        except Exception as e:  # the test asserts there was none
            got.append(e)

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.3)  # let it block on XREADGROUP
    return thread, got


def test_clearing_a_queue_leaves_its_blocked_workers_waiting(client):
    """A driver clears the queue before each evaluation round while SimWorkers block on it: they
    must stay alive and get the next round's entries (deleting the stream used to fail them)."""
    q = fresh_queue(client, reclaim_after_s=0.2)
    q.put({"job": "stale"})
    (stale,) = q.take("dies", block_s=0.1)  # left pending by a consumer that died
    thread, got = blocked_take(q, "waiting", block_s=3.0)
    q.clear()
    q.put({"job": "next round"})
    thread.join()
    assert [d.payload["job"] for d in got] == ["next round"]
    q.ack(got[0])
    time.sleep(0.3)
    assert q.take("other", block_s=0.05) == [] and q.pending() == 0  # the stale entry is forgotten, not re-run


def test_a_worker_survives_its_stream_being_deleted(client):
    q = fresh_queue(client)
    thread, got = blocked_take(q, "waiting", block_s=3.0)
    client.delete(q.config.name)  # an operator, or an old driver
    thread.join()
    assert got == []  # no error: the worker recreated the queue and goes on
    q.put({"job": 1})
    assert [d.payload["job"] for d in q.take("waiting", block_s=0.5)] == [1]


def test_malformed_messages_go_to_the_dead_letter_stream_with_a_reason(client):
    q = fresh_queue(client, required_fields=("suite", "trial"))
    q.put_raw({b"data": b"\xc1\xff not msgpack"})
    q.put_raw({b"data": pickle.dumps({"suite": "x", "trial": 1})})
    q.put_raw({b"other": b"1"})
    q.put_raw({b"data": msgpack.packb({"v": 99, "suite": "x", "trial": 1})})
    q.put_raw({b"data": pack({"suite": "x"})})
    q.put_raw({b"data": msgpack.packb([1, 2, 3])})
    q.put({"suite": "libero_spatial", "trial": 3})
    good = q.take("w", count=10, block_s=0.1)
    assert [d.payload["trial"] for d in good] == [3]
    reasons = [d["reason"] for d in q.dead_letters()]
    assert len(reasons) == 6 and all(reasons)
    for needle in ("not a msgpack message", "no 'data' field", "schema version 99", "lacks fields ['trial']",
                   "expected a map"):
        assert any(needle in r for r in reasons), (needle, reasons)
    assert q.depth() == 1  # only the good one, still in progress


def test_a_hundred_malformed_messages_all_dead_lettered(client):
    q = fresh_queue(client, required_fields=("trial",))
    for i in range(100):
        q.put_raw({b"data": bytes([0xC1]) * (i + 1)} if i % 2 else {b"junk": str(i).encode()})
    for _ in range(20):  # a take that only met poison returns [], the next one goes on
        assert q.take("w", count=16, block_s=0.01) == []
    assert len(q.dead_letters()) == 100 and q.depth() == 0


def test_results_are_written_exactly_once(client):
    store = ResultStore(client, f"r-{uuid.uuid4().hex[:8]}")
    assert store.put("libero_spatial/0/7/v1", {"success": True})
    assert not store.put("libero_spatial/0/7/v1", {"success": False})
    assert store.get("libero_spatial/0/7/v1")["success"] is True and len(store) == 1
    assert store.keys() == {"libero_spatial/0/7/v1"} and dict(store.items())["libero_spatial/0/7/v1"]["success"]
