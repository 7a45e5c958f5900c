"""configs/cluster_local.yaml and the config actors/local_autoscaler.py gives the head (the cluster
itself is started in tests/jobs/test_autoscaler.py)."""

from pathlib import Path

import pytest
import yaml

from actors.local_autoscaler import DEFAULT_CONFIG, autoscaling_config

ROOT = Path(__file__).resolve().parents[2]


def test_cluster_local_has_cluster_yamls_cpu_worker_on_the_fake_provider():
    config = autoscaling_config(ROOT / "configs" / "cluster_local.yaml", "127.0.0.1:6390")
    assert DEFAULT_CONFIG == ROOT / "configs" / "cluster_local.yaml"
    assert config["provider"]["type"] == "fake_multinode" and config["provider"]["gcs_address"] == "127.0.0.1:6390"
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    assert head["resources"]["CPU"] == 0  # job drivers only, as in cluster.yaml
    worker = types["cpu_worker"]
    assert "cpu_worker" in yaml.safe_load((ROOT / "cluster.yaml").read_text())["available_node_types"]
    assert (worker["resources"]["CPU"], worker["min_workers"], worker["max_workers"]) == (1, 0, 2)
    assert config["idle_timeout_minutes"] * 60 <= 15  # a test sees idle nodes released


def test_a_config_for_another_provider_is_refused(tmp_path):
    path = tmp_path / "aws.yaml"
    path.write_text((ROOT / "cluster.yaml").read_text())
    with pytest.raises(ValueError, match="must use provider type fake_multinode, got 'aws'"):
        autoscaling_config(path, "127.0.0.1:6390")


def test_a_head_that_fails_to_start_is_started_again_on_a_new_port(monkeypatch):
    from actors import local_autoscaler

    started, stopped = [], []

    def start(head, address):
        started.append(address)
        if len(started) == 1:
            raise RuntimeError("The current node timed out during startup")
        return head

    monkeypatch.setattr(local_autoscaler._AutoscalingHead, "start", start)
    monkeypatch.setattr(local_autoscaler.LocalAutoscalingCluster, "_stop_processes",
                        lambda self, timeout_s=30.0: stopped.append(self.address))
    cluster = local_autoscaler.LocalAutoscalingCluster().start()
    assert len(started) == 2 and started[0] != started[1] == cluster.address and stopped == started[:1]
    assert yaml.safe_load(cluster.config_path.read_text())["provider"]["gcs_address"] == cluster.address
    cluster.stop()
    assert not cluster.config_path.exists()
