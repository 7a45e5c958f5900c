"""train_joint's evaluation rounds against a real Redis: a round puts the PolicyServers on its
version before a single episode of it is queued (so every episode runs on the round's weights),
and no second round starts while one runs."""

from pathlib import Path

from jobs.train_joint import Rounds
from worldvla_dist.runtime.redis_client import connect
from worldvla_dist.runtime.redis_server import EmbeddedRedis
from worldvla_dist.runtime.work_queue import WorkQueue
from worldvla_dist.training.joint_config import EvalRoundsConfig, JointJobConfig
from worldvla_dist.training.train_run import TrainRunConfig


def test_a_round_serves_its_version_before_queueing_and_rounds_do_not_overlap(tmp_path: Path):
    config = JointJobConfig(train=TrainRunConfig(shards=str(tmp_path / "shards"), run_dir=str(tmp_path),
                                                 tokenizer_dir=str(tmp_path / "tokenizer")),
                            eval=EvalRoundsConfig(suites=("libero_object",), tasks=(0,), trials=3))
    with EmbeddedRedis() as server:
        client = connect(server.url)
        rounds = Rounds(client, config, "rounds-test", tmp_path)
        queue = WorkQueue(client, rounds.worker.queue_config())
        served = []

        def serve(version: int) -> None:
            served.append((version, queue.depth()))  # the queue as the servers switch: still empty

        rounds.offer(2, final_version=6, serve=serve)
        assert served == [(2, 0)] and rounds.current[0] == 2 and queue.depth() == 3
        rounds.offer(4, final_version=6, serve=serve)  # round v2 runs: v4 gets no round of its own
        assert served == [(2, 0)] and rounds.current[0] == 2
