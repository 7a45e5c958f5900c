"""The policy service on a real redis-server with the tiny model: replies equal the model's own
chunks, concurrent requests are batched, bad requests are refused with a reason, a dead server's
requests are reclaimed by the next one, and new weights apply between batches with their version."""

import threading
import uuid

import numpy as np
import pytest
import torch

from tests.conftest import make_tiny_model
from worldvla_dist.runtime.redis_client import connect
from worldvla_dist.runtime.redis_server import EmbeddedRedis
from worldvla_dist.serving.chunk_policy import ChunkPolicy
from worldvla_dist.serving.policy_service import PolicyService, PolicyServiceConfig
from worldvla_dist.serving.protocol import InvalidRequest, PolicyRequest
from worldvla_dist.serving.remote_policy import PolicyRejected, PolicyUnavailable, RemotePolicy

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server():
    with EmbeddedRedis() as s:
        yield s


@pytest.fixture(scope="module")
def policy(tokens, tiny_preset):
    return ChunkPolicy(make_tiny_model(tokens, tiny_preset, seed=5, dtype=torch.float32), tokens)


def frames(n: int, seed: int, size: int = 128) -> list[np.ndarray]:
    return list(np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8))


def config(**kw) -> PolicyServiceConfig:
    return PolicyServiceConfig(queue=f"policy-{uuid.uuid4().hex[:6]}", **kw)


def ask_in_threads(server, cfg, asks):
    out = [None] * len(asks)

    def ask(i, instruction, fs, k):
        out[i] = RemotePolicy(connect(server.url), cfg, timeout_s=30)(instruction, fs, k)

    threads = [threading.Thread(target=ask, args=(i, *a)) for i, a in enumerate(asks)]
    for t in threads:
        t.start()
    return threads, out


def test_request_validation_names_the_problem():
    good = PolicyRequest("pick up the bowl", frames(2, 0), 5, "reply").to_payload()
    assert PolicyRequest.from_payload(good, 128).num_actions == 5
    with pytest.raises(InvalidRequest, match=r"frames must be uint8 arrays of shape \(128, 128, 3\)"):
        PolicyRequest.from_payload({**good, "frames": frames(1, 0, size=64)}, 128)
    with pytest.raises(InvalidRequest, match="num_actions"):
        PolicyRequest.from_payload({**good, "num_actions": 0}, 128)


def test_concurrent_requests_are_batched_and_equal_the_models_chunks(server, policy):
    cfg = config(max_batch=8, max_wait_s=0.05)
    asks = [("pick up the bowl", frames(2, i), 5 if i % 2 else 10) for i in range(4)]
    threads, out = ask_in_threads(server, cfg, asks)
    service = PolicyService(connect(server.url), policy, cfg)
    while any(t.is_alive() for t in threads):
        service.serve_batch()
        for t in threads:
            t.join(timeout=0.05)
    expected = policy.predict([PolicyRequest(a[0], a[1], a[2], "x") for a in asks])
    for (actions, version), want in zip(out, expected):
        assert version == 0 and actions.shape == want.shape and np.array_equal(actions, want)
    assert service.stats.requests == 4 and service.stats.batches < 4  # at least two answered together


def test_a_bad_request_is_refused_with_a_reason_and_the_service_goes_on(server, policy):
    cfg = config()
    service = PolicyService(connect(server.url), policy, cfg)
    errors = []

    def ask_bad():
        try:
            RemotePolicy(connect(server.url), cfg, timeout_s=30)("open the drawer", frames(1, 0, size=32), 5)
        except PolicyRejected as e:
            errors.append(str(e))

    t = threading.Thread(target=ask_bad)
    t.start()
    while t.is_alive():
        service.serve_batch()
        t.join(timeout=0.05)
    assert errors and "shape (128, 128, 3)" in errors[0]
    assert "shape (128, 128, 3)" in service.queue.dead_letters()[0]["reason"] and service.stats.rejected == 1
    threads, out = ask_in_threads(server, cfg, [("open the drawer", frames(1, 1), 5)])
    while threads[0].is_alive():
        service.serve_batch()
        threads[0].join(timeout=0.05)
    assert out[0][0].shape == (5, 7)


def test_a_dead_servers_requests_are_reclaimed_by_the_next(server, policy):
    cfg = config(reclaim_after_s=0.3)
    threads, out = ask_in_threads(server, cfg, [("pick up the bowl", frames(2, 3), 5)])
    dead = PolicyService(connect(server.url), policy, cfg, consumer="dies")
    while not dead.queue.take("dies", block_s=0.1):  # taken, then the server "dies" before answering
        pass
    successor = PolicyService(connect(server.url), policy, cfg)
    while threads[0].is_alive():
        successor.serve_batch()
        threads[0].join(timeout=0.05)
    assert out[0][0].shape == (5, 7) and successor.stats.requests == 1 and successor.queue.pending() == 0


def test_new_weights_apply_between_batches_with_their_version(server, policy, tokens, tiny_preset):
    other = make_tiny_model(tokens, tiny_preset, seed=9, dtype=torch.float32)
    fresh = ChunkPolicy(make_tiny_model(tokens, tiny_preset, seed=5, dtype=torch.float32), tokens)
    cfg = config()
    service = PolicyService(connect(server.url), fresh, cfg, weight_version=3)
    service.set_weights(other.chameleon.state_dict(), version=4)
    threads, out = ask_in_threads(server, cfg, [("pick up the bowl", frames(2, 4), 5)])
    while threads[0].is_alive():
        service.serve_batch()
        threads[0].join(timeout=0.05)
    actions, version = out[0]
    want = ChunkPolicy(other, tokens).predict([PolicyRequest("pick up the bowl", frames(2, 4), 5, "x")])[0]
    assert version == 4 and np.array_equal(actions, want)


def test_no_server_means_a_named_timeout_after_resends(server):
    remote = RemotePolicy(connect(server.url), config(), timeout_s=1, max_attempts=2)
    with pytest.raises(PolicyUnavailable, match="2 times"):
        remote("pick up the bowl", frames(1, 0), 5)
    assert remote.resends == 1 and remote.queue.depth() == 2


def test_frame_codes_are_cached_across_an_episodes_requests(tokens, tiny_preset):
    policy = ChunkPolicy(make_tiny_model(tokens, tiny_preset, seed=5, dtype=torch.float32), tokens, code_cache_size=3)
    episode = frames(4, 7)
    for t in range(1, 4):  # each request: the previous and the current frame
        policy.predict([PolicyRequest("pick up the bowl", episode[t - 1:t + 1], 5, "x")])
    assert policy.encoded_frames == 4  # not 6: each previous frame was already tokenised
    cached = policy.encode_frames(episode[1:4])
    fresh = tokens.images.encode(np.stack(episode[1:4]))
    assert all(torch.equal(c, f) for c, f in zip(cached, fresh)) and policy.encoded_frames == 4
    policy.encode_frames(episode[:1])  # evicted by the size bound: encoded again
    assert policy.encoded_frames == 5 and len(policy._codes) == 3


def test_oversized_and_malformed_requests_are_refused_before_any_decode(server, policy):
    """A 100 MB entry is dead-lettered unread (only its size kept, so Redis lets go of it); frames far
    larger than the model's resolution and the wrong dtype are refused with a reason to the asker; the
    VQGAN never sees any of them, and the service then serves a good request."""
    cfg = config()
    client = connect(server.url)
    service = PolicyService(client, policy, cfg)
    memory_before = client.info("memory")["used_memory"]
    service.queue.put_raw({b"data": b"\x00" * (100 * 2 ** 20)})  # a foreign client: not even msgpack
    with pytest.raises(PolicyRejected, match="exceeds queue"):  # ours refuse to send it at all
        RemotePolicy(client, cfg, timeout_s=30)("pick up the bowl", frames(2, 0, size=4096), 5)
    bad = [("pick up the bowl", frames(1, 0, size=1024), 5),  # 3 MB: under the byte limit, wrong shape
           ("pick up the bowl", [f.astype(np.float32) for f in frames(1, 1)], 5)]
    errors = []

    def ask_bad(instruction, fs, k):
        try:
            RemotePolicy(connect(server.url), cfg, timeout_s=30)(instruction, fs, k)
        except PolicyRejected as e:
            errors.append(str(e))

    threads = [threading.Thread(target=ask_bad, args=a) for a in bad]
    for t in threads:
        t.start()
    encoded = policy.encoded_frames
    while any(t.is_alive() for t in threads) or service.queue.depth():
        service.serve_batch()
        for t in threads:
            t.join(timeout=0.05)
    assert policy.encoded_frames == encoded and service.stats.requests == 0
    assert len(errors) == 2
    assert any("(1024, 1024, 3)" in e for e in errors) and any("float32" in e for e in errors)
    reasons = [d["reason"] for d in service.queue.dead_letters()]
    assert len(reasons) == 3 and any(f"message of {100 * 2 ** 20} bytes exceeds" in r for r in reasons)
    assert client.info("memory")["used_memory"] < memory_before + 16 * 2 ** 20  # the 100 MB is gone
    threads, out = ask_in_threads(server, cfg, [("pick up the bowl", frames(2, 2), 5)])
    while threads[0].is_alive():
        service.serve_batch()
        threads[0].join(timeout=0.05)
    assert out[0][0].shape == (5, 7) and service.stats.requests == 1


def test_two_servers_on_one_request_stream_answer_every_request_once(server, policy):
    cfg = config(max_batch=2, max_wait_s=0.01)
    asks = [("pick up the bowl", frames(2, 20 + i), 5) for i in range(8)]
    threads, out = ask_in_threads(server, cfg, asks)
    servers = [PolicyService(connect(server.url), policy, cfg) for _ in range(2)]
    while any(t.is_alive() for t in threads):
        for s in servers:  # each its own consumer in the group: a request goes to one of them
            s.serve_batch()
        for t in threads:
            t.join(timeout=0.01)
    expected = policy.predict([PolicyRequest(a[0], a[1], a[2], "x") for a in asks])
    assert all(np.array_equal(actions, want) for (actions, _), want in zip(out, expected))
    assert sum(s.stats.requests for s in servers) == 8 and all(s.stats.requests > 0 for s in servers)
    assert all(s.queue.pending() == 0 for s in servers)
