"""Demo hdf5 files -> pre-tokenised action and world samples in msgpack shards with an index.

    ray job submit --working-dir . -- python jobs/prepare_data.py --demos data/demos --tokenizer data/tokenizer --out data/shards
    python jobs/prepare_data.py --demos data/demos --tokenizer data/tokenizer --out data/shards

One Ray task per demo file; a shard that exists is skipped (resumable). Action samples use M history
frames and K actions (K from the suite: 5, or 10 for LIBERO-10); samples of the held-out 10% of
trajectories are tagged "val".
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import ray
from tqdm import tqdm

from actors.ray_setup import init_ray
from worldvla_dist.data.prepare import tokenize_demo_file
from worldvla_dist.data.token_shards import ShardEntry, read_shard, write_index, write_shard
from worldvla_dist.envs.libero_tasks import SUITES
from worldvla_dist.sequences.token_space import TokenSpace

log = logging.getLogger("prepare_data")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demos", type=Path, required=True, help="folder with <suite>/<task>_demo.hdf5 files")
    p.add_argument("--tokenizer", type=Path, required=True, help="tokenizer folder (jobs/train_tokenizer.py)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--history", type=int, default=2, help="M, history frames per action sample")
    p.add_argument("--address", default=None)
    p.add_argument("--num-cpus", type=int, default=None)
    return p.parse_args()


@ray.remote(num_cpus=1)
def shard_one(demo: str, shard: str, tokenizer: str, image_size: int, history: int, chunk: int):
    import torch

    torch.set_num_threads(1)
    tokens = TokenSpace.from_tokenizer_dir(tokenizer, image_size)
    return write_shard(shard, tokenize_demo_file(tokens, demo, history, chunk))


def counts_of(path: Path) -> tuple[int, int, int]:
    a = w = v = 0
    for r in read_shard(path):
        a += r.sample.kind == "action"
        w += r.sample.kind == "world"
        v += r.split == "val"
    return a, w, v


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    TokenSpace.from_tokenizer_dir(args.tokenizer, args.image_size)  # fail early, naming what is missing
    todo, entries = [], []
    for demo in sorted(args.demos.rglob("*_demo.hdf5")):
        suite = demo.parent.name
        chunk = SUITES.get(suite).chunk if suite in SUITES.names() else 5
        rel = Path(suite) / (demo.stem.removesuffix("_demo") + ".msgpack")
        task_key = f"{suite}/{demo.stem.removesuffix('_demo')}"
        if (args.out / rel).exists():
            entries.append(ShardEntry(str(rel), task_key, *counts_of(args.out / rel)))
        else:
            todo.append((demo, rel, task_key, chunk))
    log.info("%d demo files to tokenise, %d shards already written", len(todo), len(entries))
    if todo:
        init_ray(args.address, args.num_cpus)
        refs = {shard_one.remote(str(d), str(args.out / rel), str(args.tokenizer), args.image_size,
                                 args.history, chunk): (rel, key) for d, rel, key, chunk in todo}
        pending = list(refs)
        with tqdm(total=len(pending), desc="shards", unit="file") as bar:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                rel, key = refs[done[0]]
                entries.append(ShardEntry(str(rel), key, *ray.get(done[0])))
                bar.update()
    index = write_index(args.out, entries)
    totals = [sum(getattr(e, f) for e in entries) for f in ("num_action", "num_world", "num_val")]
    log.info("%d action and %d world samples (%d held out) in %d shards; index %s", *totals, len(entries), index)


if __name__ == "__main__":
    main()
