"""What every driver job opens first and closes last: its run folder, its Redis (the configured one,
or an embedded server keeping an append-only file in the run folder, so a re-run resumes) and Ray."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import ray
import redis

from actors.ray_setup import init_ray
from worldvla_dist.runtime.redis_client import connect, redact
from worldvla_dist.runtime.redis_server import EmbeddedRedis, redis_for_run

log = logging.getLogger(__name__)


@dataclass
class JobSession:
    redis_url: str
    client: redis.Redis
    embedded: EmbeddedRedis | None

    @classmethod
    def open(cls, run_dir: Path, redis_url: str | None, address: str | None, num_cpus: int | None) -> "JobSession":
        run_dir.mkdir(parents=True, exist_ok=True)
        url, embedded = redis_for_run(redis_url, run_dir / "redis")
        try:
            client = connect(url)
            log.info("Redis at %s", redact(url))
            init_ray(address, num_cpus)
        except BaseException:
            if embedded is not None:
                embedded.stop()
            raise
        return cls(url, client, embedded)

    @property
    def has_gpu(self) -> bool:
        return ray.cluster_resources().get("GPU", 0) >= 1

    def close(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()
