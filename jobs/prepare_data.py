"""Demo hdf5 files -> pre-tokenised action and world samples in msgpack shards with an index.

    ray job submit --working-dir . -- python jobs/prepare_data.py --demos data/demos --tokenizer data/tokenizer --out data/shards
    python jobs/prepare_data.py --demos data/demos --tokenizer data/tokenizer --out data/shards

    python jobs/prepare_data.py --demos data/demos --tokenizer data/tokenizer --out data/shards_ref --split reference

One Ray task per demo file; a shard that exists is skipped (resumable) after checking that its
samples carry the split they would be given now. Action samples use M history frames and K actions
(K from the suite: 5, or 10 for LIBERO-10). Each sample is tagged with its trajectory's split
(worldvla_dist/data/split.py): "train" or "val_ind" under ours (--split stable), "train", "val_ind"
or "val_ood" under the reference's (--split reference).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import ray
from tqdm import tqdm

from actors.ray_setup import init_ray
from worldvla_dist.data.prepare import tokenize_demo_file
from worldvla_dist.data.split import RULES, SPLITS, assign_splits, task_key, trajectory_key
from worldvla_dist.data.token_shards import ShardEntry, read_shard, write_index, write_shard
from worldvla_dist.envs.libero_tasks import SUITES
from worldvla_dist.sequences.token_space import TokenSpace

log = logging.getLogger("prepare_data")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demos", type=Path, required=True, help="folder with <suite>/<task>_demo.hdf5 files")
    p.add_argument("--tokenizer", type=Path, required=True, help="tokenizer folder (jobs/train_tokenizer.py)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--history", type=int, default=2, help="M, history frames per action sample")
    p.add_argument("--split", choices=RULES, default="stable",
                   help="stable: ours, trials 1, 11, 21, ... of every task held out (val_ind); reference: WorldVLA's, "
                        "the last 10%% of each suite's tasks (val_ood) and of each other task's trajectories (val_ind)")
    p.add_argument("--address", default=None)
    p.add_argument("--num-cpus", type=int, default=None)
    return p.parse_args(argv)


@ray.remote(num_cpus=1)
def shard_one(demo: str, shard: str, tokenizer: str, image_size: int, history: int, chunk: int,
              splits: dict[str, str]):
    import torch

    torch.set_num_threads(1)
    tokens = TokenSpace.from_tokenizer_dir(tokenizer, image_size)
    return write_shard(shard, tokenize_demo_file(tokens, demo, splits, history, chunk))


def counts_of(path: Path, expected: dict[str, str]) -> tuple[int, int, int, int]:
    """(action, world, val_ind, val_ood) samples of an existing shard, whose every record must carry the
    split its trajectory gets now (`expected`: trajectory key -> split)."""
    counts = dict.fromkeys(("action", "world", *SPLITS), 0)
    for r in read_shard(path):
        if expected.get(r.trajectory) != r.split:
            raise SystemExit(f"{path}: {r.trajectory} is tagged {r.split!r}, this run gives it "
                             f"{expected.get(r.trajectory)!r} (another --split, another set of task files, or the "
                             "old hash split); delete the shard or write to a fresh --out")
        counts[r.sample.kind] += 1
        counts[r.split] += 1
    return counts["action"], counts["world"], counts["val_ind"], counts["val_ood"]


def main(argv=None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    TokenSpace.from_tokenizer_dir(args.tokenizer, args.image_size)  # fail early, naming what is missing
    todo, entries = [], []
    demos = sorted(args.demos.rglob("*_demo.hdf5"))
    splits = assign_splits(demos, args.split)
    for demo in demos:
        suite = demo.parent.name
        chunk = SUITES.get(suite).chunk if suite in SUITES.names() else 5
        rel = Path(suite) / (demo.stem.removesuffix("_demo") + ".msgpack")
        if (args.out / rel).exists():
            expected = {trajectory_key(demo, name): split for name, split in splits[demo].items()}
            entries.append(ShardEntry(str(rel), task_key(demo), *counts_of(args.out / rel, expected)))
        else:
            todo.append((demo, rel, task_key(demo), chunk))
    log.info("%d demo files to tokenise, %d shards already written (%s split)", len(todo), len(entries), args.split)
    if todo:
        init_ray(args.address, args.num_cpus)
        refs = {shard_one.remote(str(d), str(args.out / rel), str(args.tokenizer), args.image_size,
                                 args.history, chunk, splits[d]): (rel, key) for d, rel, key, chunk in todo}
        pending = list(refs)
        with tqdm(total=len(pending), desc="shards", unit="file") as bar:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                rel, key = refs[done[0]]
                entries.append(ShardEntry(str(rel), key, *ray.get(done[0])))
                bar.update()
    index = write_index(args.out, entries)
    totals = [sum(getattr(e, f) for e in entries) for f in ("num_action", "num_world", "num_val_ind", "num_val_ood")]
    log.info("%d action and %d world samples (held out: %d val_ind, %d val_ood) in %d shards; index %s", *totals,
             len(entries), index)


if __name__ == "__main__":
    main()
