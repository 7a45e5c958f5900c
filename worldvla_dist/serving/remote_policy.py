"""The asking side of the policy service: a SimWorker calls `RemotePolicy(...)(instruction, frames, k)`
and gets K actions. If no reply comes within `timeout_s` (the server died or restarts) it sends the
request again, up to `max_attempts` times, then raises `PolicyUnavailable`."""

from __future__ import annotations

import uuid

import numpy as np
import redis

from worldvla_dist.errors import WorldVLAError
from worldvla_dist.runtime.codec import unpack
from worldvla_dist.runtime.work_queue import MessageTooLarge, WorkQueue
from worldvla_dist.serving.policy_service import PolicyServiceConfig
from worldvla_dist.serving.protocol import PolicyReply, PolicyRequest


class PolicyUnavailable(WorldVLAError, TimeoutError):
    """No policy server answered in time, after retries."""


class PolicyRejected(WorldVLAError, ValueError):
    """The policy server refused the request (the reason says why)."""


class RemotePolicy:
    def __init__(self, client: redis.Redis, config: PolicyServiceConfig = PolicyServiceConfig(),
                 timeout_s: float = 60.0, max_attempts: int = 5, name: str | None = None):
        self.redis, self.timeout_s, self.max_attempts = client, timeout_s, max_attempts
        self.queue = WorkQueue(client, config.queue_config())
        self.reply_to = f"{config.queue}:reply:{name or uuid.uuid4().hex}"
        self.resends = 0

    def __call__(self, instruction: str, frames: list[np.ndarray], num_actions: int) -> tuple[np.ndarray, int]:
        """-> ((K, 7) float32 actions, weight version they came from)"""
        request = PolicyRequest(instruction, list(frames), num_actions, self.reply_to)
        for attempt in range(self.max_attempts):
            if attempt:
                self.resends += 1
            try:
                self.queue.put(request.to_payload())
            except MessageTooLarge as e:  # the server would dead-letter it unread: say why here, at once
                raise PolicyRejected(str(e)) from e
            while True:
                item = self.redis.blpop([self.reply_to], timeout=self.timeout_s)
                if item is None:
                    break  # timed out: send again
                reply = PolicyReply.from_payload(unpack(item[1]))
                if reply.request_id != request.request_id:
                    continue  # a late duplicate answer to an earlier request
                if reply.error:
                    raise PolicyRejected(reply.error)
                return np.asarray(reply.actions, dtype=np.float32), reply.weight_version
        raise PolicyUnavailable(f"no policy server answered within {self.timeout_s:.0f} s, "
                                f"{self.max_attempts} times (queue {self.queue.config.name}, "
                                f"{self.queue.depth()} requests waiting)")
