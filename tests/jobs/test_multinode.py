"""A local multi-node Ray cluster (a head and a worker node on loopback, as `ray up cluster.yaml`
would make them, only smaller): the evaluation job joins it by address and its actors spread over
both nodes; with --max-workers it adds SimWorkers as the queue is deep."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from actors.ray_setup import RayNode
from worldvla_dist.model.checkpoint import save_checkpoint
from worldvla_dist.model.presets import MODEL_PRESETS
from worldvla_dist.model.worldvla import WorldVLA
from worldvla_dist.runtime.redis_server import free_loopback_port
from worldvla_dist.sequences.token_space import TokenSpace

ROOT = Path(__file__).resolve().parents[2]
# multi-node needs the flag at 1 (0 is single-node mode); nodes still register on 127.0.0.1
MULTI_NODE = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"}
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", **MULTI_NODE}
pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def two_node_cluster():
    address = f"127.0.0.1:{free_loopback_port()}"
    store = "--object-store-memory=134217728"
    with RayNode([f"--port={address.split(':')[1]}", "--num-cpus=1", "--include-dashboard=false", store], MULTI_NODE) as head:
        head.start(address)
        with RayNode(["--num-cpus=2", store], MULTI_NODE, join=address) as worker:
            worker.start(address, nodes=2)
            yield address


def test_the_eval_job_spreads_over_the_nodes_of_a_cluster(two_node_cluster, tmp_path):
    torch.manual_seed(0)
    preset = MODEL_PRESETS.get("tiny-cpu")
    tokens = TokenSpace.for_preset(preset)
    ckpt = save_checkpoint(WorldVLA.build(preset, tokens.vocab, tokens.images.vqgan.cfg), tokens, tmp_path / "ckpt")
    out = subprocess.run([sys.executable, "jobs/eval_libero.py", "--checkpoint", str(ckpt), "--address", two_node_cluster,
                          "--suites", "libero_object", "--tasks", "2", "--trials", "4", "--max-steps", "10",
                          "--workers", "1", "--max-workers", "2", "--episodes-per-worker", "2", "--out", str(tmp_path), "--run-id", "multi"],
                         capture_output=True, text=True, timeout=900, cwd=ROOT, env=ENV)
    assert out.returncode == 0, out.stderr[-4000:]
    summary = json.loads((tmp_path / "eval-multi" / "summary.json").read_text())
    assert summary["episodes"] == 4
    placement = summary["placement"]
    assert len(placement["sim"]) == 2  # scaled from 1 to 2 on a queue of 4
    assert len(set(placement["sim"] + placement["policy"])) == 2  # 3 one-CPU actors: both nodes in use
