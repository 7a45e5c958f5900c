"""Learner throughput on the tiny model and the same random token shards, in one run:

  - plain PyTorch (training/torch_loop.py) vs the DeepSpeed learner, one process: DeepSpeed's
    overhead (goal: at most 10%, i.e. a ratio >= 0.9);
  - the DeepSpeed learner in 1 process vs 2 data-parallel Ray Train workers (gloo): total tokens/s.

Every case trains on one thread per process, as a Ray Train worker with one CPU does, so the
one-process DeepSpeed case is also the data-parallel baseline (a one-worker Ray Train launch would
add ~50 s of start-up and measure the same step). Tokens are labelled tokens (what the loss sees).
Prints a table, then one JSON line of ratios.

    python bench/train.py --quick    # 8 timed steps per case
    python bench/train.py            # 30 timed steps per case
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np
import torch

from actors.learner import launch_learner
from actors.ray_setup import init_ray
from worldvla_dist.data.mixing import mixed_batches
from worldvla_dist.data.synthetic_shards import write_random_shards
from worldvla_dist.data.token_shards import load_samples
from worldvla_dist.model.presets import MODEL_PRESETS
from worldvla_dist.model.worldvla import WorldVLA
from worldvla_dist.runtime.metrics_stream import MetricsStream
from worldvla_dist.runtime.redis_client import connect
from worldvla_dist.runtime.redis_server import EmbeddedRedis
from worldvla_dist.sequences.collate import collate
from worldvla_dist.sequences.token_space import TokenSpace
from worldvla_dist.training.deepspeed_learner import DeepSpeedLearner
from worldvla_dist.training.learner_config import LearnerConfig, OptimConfig
from worldvla_dist.training.train_run import TrainRunConfig

WARMUP = 3


def plain_tokens_per_s(model, batches, steps) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)
    tokens, elapsed = 0, 0.0
    for i in range(WARMUP + steps):
        start = time.perf_counter()
        batch = collate(next(batches), model.vocab)
        out = model(batch)
        opt.zero_grad(set_to_none=True)
        out.total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 4.0)
        opt.step()
        if i >= WARMUP:
            elapsed += time.perf_counter() - start
            tokens += int((batch.labels != -100).sum())
    return tokens / elapsed


def deepspeed_tokens_per_s(learner, batches, steps) -> float:
    tokens, elapsed = 0, 0.0
    for i in range(WARMUP + steps):
        logs = learner.train_micro_batch(next(batches))
        if i >= WARMUP:
            elapsed += logs["seconds"]
            tokens += logs["tokens"]
    return tokens / elapsed


def data_parallel_tokens_per_s(tokenizer, shards, run_dir, workers, steps, batch, redis_url) -> float:
    config = TrainRunConfig(shards=str(shards), run_dir=str(run_dir), tokenizer_dir=str(tokenizer),
                            steps=WARMUP + steps, save_every=10 ** 6, publish_every=10 ** 6,
                            learner=LearnerConfig(micro_batch_size=batch, optim=OptimConfig(lr=1e-4, warmup_steps=1)))
    run_id = f"bench-dp{workers}"
    launch_learner(config, num_workers=workers, redis_url=redis_url, run_id=run_id)
    logs = MetricsStream(connect(redis_url), f"train:{run_id}:metrics").read_new()[WARMUP:]
    # rank 0's step time is the whole group's (gradients are all-reduced every step)
    return workers * sum(r["tokens"] for r in logs) / sum(r["seconds"] for r in logs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--batch", type=int, default=4)
    args = p.parse_args()
    steps = 8 if args.quick else 30
    preset = MODEL_PRESETS.get("tiny-cpu")
    torch.manual_seed(0)
    tokens = TokenSpace.for_preset(preset)
    root = tempfile.mkdtemp(prefix="bench-train-")
    tokenizer, shards = write_random_shards(tokens, root, frames=40)
    action, world = load_samples(shards)

    def model():
        torch.manual_seed(1)
        return WorldVLA.build(preset, tokens.vocab, tokens.images.vqgan.cfg)

    stream = lambda: mixed_batches(action, world, args.batch, 0.5, seed=0)  # noqa: E731
    torch.set_num_threads(1)  # as each Ray Train worker below (one CPU each)
    walls = [time.perf_counter()]
    plain = plain_tokens_per_s(model().train(), stream(), steps)
    walls.append(time.perf_counter())
    ds = deepspeed_tokens_per_s(DeepSpeedLearner(model(), LearnerConfig(micro_batch_size=args.batch)), stream(), steps)
    torch.distributed.destroy_process_group()
    walls.append(time.perf_counter())
    init_ray(num_cpus=2)
    with EmbeddedRedis() as server:
        dp2 = data_parallel_tokens_per_s(tokenizer, shards, os.path.join(root, "dp2"), 2, steps, args.batch, server.url)
    walls.append(time.perf_counter())
    rows = [("plain PyTorch, 1 process", plain), ("DeepSpeed (ZeRO 0, fp32), 1 process", ds),
            ("DeepSpeed on Ray Train, 2 workers (gloo)", dp2)]
    print(f"tiny-cpu, micro-batch {args.batch}, {steps} timed steps after {WARMUP} warm-up, one thread per process, "
          f"{os.cpu_count()} CPUs")
    print(f"{'case':44s} {'labelled tokens/s':>18s} {'wall s (with start-up)':>23s}")
    for (name, value), wall in zip(rows, np.diff(walls)):
        print(f"{name:44s} {value:18.0f} {wall:23.1f}")
    print(json.dumps({"bench": "train", "quick": args.quick, "deepspeed_over_plain": ds / plain,
                      "dp2_over_dp1": dp2 / ds}))


if __name__ == "__main__":
    main()
