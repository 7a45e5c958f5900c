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

from worldvla_dist.model.checkpoint import save_checkpoint
from worldvla_dist.model.presets import MODEL_PRESETS
from worldvla_dist.model.worldvla import WorldVLA
from worldvla_dist.runtime.redis_server import free_loopback_port
from worldvla_dist.sequences.token_space import TokenSpace

ROOT = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).parent / "ray")
# multi-node needs the flag at 1 (0 is single-node mode); nodes still register on 127.0.0.1
ENV = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1", "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def ray_cli(*args):
    out = subprocess.run([RAY, *args], capture_output=True, text=True, env=ENV, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]


@pytest.fixture
def two_node_cluster():
    port = free_loopback_port()
    common = ["--node-ip-address=127.0.0.1", "--object-store-memory=134217728", "--disable-usage-stats"]
    ray_cli("start", "--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false", *common)
    try:
        ray_cli("start", f"--address=127.0.0.1:{port}", "--num-cpus=2", *common)
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, env=ENV, timeout=120)


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
