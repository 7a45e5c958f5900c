"""Starting or joining Ray the way this project needs on one machine and on a cluster."""

from __future__ import annotations

import os

import ray

# Without this, Ray binds its servers to the machine's external interface even when told 127.0.0.1.
_LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
for _k, _v in _LOOPBACK_ENV.items():
    os.environ.setdefault(_k, _v)


def init_ray(address: str | None = None, num_cpus: int | None = None, object_store_mb: int = 256) -> None:
    """Joins the cluster at `address` ("auto" inside `ray job submit`), or starts a local Ray on loopback
    with an explicit object store (Ray's default takes 30% of RAM)."""
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
                 object_store_memory=object_store_mb * 2 ** 20, log_to_driver=True)
