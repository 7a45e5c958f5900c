"""An embedded `redis-server` (the Debian package) for one machine: a free loopback port, a generated
password, its own folder, optional append-only persistence, clean shutdown. Used when no Redis URL
is configured; on a cluster the head node's Redis is given by URL instead.

The password goes into a 0600 config file, not onto the command line, where `ps` would show it.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from worldvla_dist.errors import WorldVLAError

log = logging.getLogger(__name__)


class RedisServerError(WorldVLAError, RuntimeError):
    """redis-server is missing, or did not come up."""


@dataclass(frozen=True)
class EmbeddedRedisConfig:
    data_dir: str | None = None  # None: a temporary folder, removed at stop
    appendonly: bool = False  # persist every write in data_dir (resumable runs across restarts)
    port: int | None = None  # None: a free loopback port
    start_timeout_s: float = 10.0
    executable: str = "redis-server"


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedRedis:
    """`with EmbeddedRedis() as server: server.url` -> redis://:password@127.0.0.1:port/0"""

    def __init__(self, config: EmbeddedRedisConfig = EmbeddedRedisConfig()):
        self.config = config
        self.password = secrets.token_urlsafe(24)
        self.port = config.port or free_loopback_port()
        self._own_dir = config.data_dir is None
        self.dir = Path(config.data_dir or tempfile.mkdtemp(prefix="worldvla-redis-"))
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def start(self) -> "EmbeddedRedis":
        executable = shutil.which(self.config.executable)
        if executable is None:
            raise RedisServerError(f"{self.config.executable} not found on PATH: install the Debian package "
                                   "(scripts/install_system_deps.sh does) or pass a Redis URL")
        self.dir.mkdir(parents=True, exist_ok=True)
        conf = self.dir / "redis.conf"
        conf.touch(mode=0o600)
        conf.write_text("\n".join([
            "bind 127.0.0.1", "protected-mode yes", f"port {self.port}", f'requirepass "{self.password}"',
            f'dir "{self.dir}"', 'save ""', f"appendonly {'yes' if self.config.appendonly else 'no'}",
            "daemonize no", f'logfile "{self.dir / "redis.log"}"']) + "\n")
        self._proc = subprocess.Popen([executable, str(conf)], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        client = redis.Redis(host="127.0.0.1", port=self.port, password=self.password, socket_timeout=1)
        deadline = time.monotonic() + self.config.start_timeout_s
        while True:
            if self._proc.poll() is not None:
                log_text = (self.dir / "redis.log").read_text()[-2000:] if (self.dir / "redis.log").exists() else ""
                raise RedisServerError(f"redis-server exited with code {self._proc.returncode} on port {self.port}: "
                                       f"{self._proc.stderr.read().decode()[-2000:]}{log_text}")
            try:
                client.ping()
                break
            except (redis.ConnectionError, redis.BusyLoadingError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RedisServerError(f"redis-server on port {self.port} not up after "
                                           f"{self.config.start_timeout_s:.0f} s")
                time.sleep(0.02)
        client.close()
        log.info("embedded redis-server on 127.0.0.1:%d (folder %s)", self.port, self.dir)
        return self

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            # SIGTERM is redis-server's graceful shutdown (the append-only file is flushed); a SHUTDOWN
            # command through redis-py would stall on the client's reconnect retries
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc is not None and self._proc.stderr:
            self._proc.stderr.close()
        self._proc = None
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> "EmbeddedRedis":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def redis_for_run(url: str | None, data_dir: str | Path) -> tuple[str, EmbeddedRedis | None]:
    """The Redis a job uses: `url` when one is configured, else an embedded server that keeps an
    append-only file in `data_dir` (so re-running the job resumes). The caller stops the server."""
    if url:
        return url, None
    server = EmbeddedRedis(EmbeddedRedisConfig(data_dir=str(data_dir), appendonly=True)).start()
    return server.url, server
