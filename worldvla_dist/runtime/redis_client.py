"""Connecting to Redis with errors that name the URL (password hidden) and say what to do."""

from __future__ import annotations

import re

import redis
import redis.exceptions

from worldvla_dist.errors import WorldVLAError


class RedisUnavailable(WorldVLAError, ConnectionError):
    """Redis did not answer at the configured URL."""


class RedisAuthError(WorldVLAError, PermissionError):
    """Redis refused the credentials (or none were given)."""


def redact(url: str) -> str:
    """redis://:secret@host:port/0 -> redis://:***@host:port/0"""
    return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", url)


def connect(url: str, timeout_s: float = 5.0) -> redis.Redis:
    """A checked client: PING must succeed, or a named error says why.

    No read timeout on the socket (redis-py 8 defaults to 5 s): blocking reads (BLPOP, XREADGROUP
    BLOCK) carry their own timeouts and would otherwise fail as "Timeout reading from socket"."""
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=None,
                                      health_check_interval=30)
    except ValueError as e:
        raise RedisUnavailable(f"not a Redis URL: {redact(url)} ({e})") from e
    try:
        client.ping()
    except (redis.exceptions.AuthenticationError, redis.exceptions.AuthorizationError, redis.ResponseError) as e:
        if isinstance(e, redis.ResponseError) and not isinstance(e, redis.exceptions.AuthenticationError) \
                and "NOAUTH" not in str(e):
            raise
        if client.connection_pool.connection_kwargs.get("password") is None:
            raise RedisAuthError(f"Redis at {redact(url)} requires a password; put it in the URL "
                                 "(redis://:PASSWORD@host:port/0)") from e
        raise RedisAuthError(f"Redis at {redact(url)} refused the credentials: {e}") from e
    except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
        raise RedisUnavailable(f"cannot reach Redis at {redact(url)}: {e}. Start it, check the URL, "
                               "or leave the URL unset to use an embedded redis-server") from e
    return client
