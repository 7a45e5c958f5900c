"""Where a trained policy's actions go wrong, open loop: action-token accuracy per dimension (x, y, z,
roll, pitch, yaw, gripper) and per position in the chunk on held-out demos, beside the majority bin of
the training demos, with near misses (within one bin) and the mean distance in bins.

    python jobs/make_demos.py --suites libero_object --tasks 0 1 --first-trial 40 --trials 4 \
        --image-size 128 --out data/heldout-demos          # demos from init states no training demo used
    python jobs/action_errors.py --checkpoint runs/heldout/exports/v003000 \
        --demos data/heldout-demos --train-demos data/demo-cache/heldout/demos

Writes action_errors.md and action_errors.json to --out (default: the checkpoint's folder); the table
goes to stdout, the JSON object last. The chunk size is the suite's (its folder under --demos).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from worldvla_dist.envs.libero_tasks import SUITES  # noqa: E402
from worldvla_dist.evaluation.action_errors import write_report  # noqa: E402
from worldvla_dist.evaluation.heldout import demo_action_errors  # noqa: E402
from worldvla_dist.model.checkpoint import load_checkpoint  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True, help="an export folder (exports/vNNNNNN)")
    p.add_argument("--demos", type=Path, required=True, help="held-out *_demo.hdf5 files (searched recursively)")
    p.add_argument("--train-demos", type=Path, required=True, help="the training demos: the majority-bin baseline")
    p.add_argument("--chunk", type=int, default=None, help="K (default: the suite's, from the demo folder's name)")
    p.add_argument("--history", type=int, default=2, help="frames per prompt (the reference's 2)")
    p.add_argument("--max-prompts", type=int, default=256, help="held-out chunks decoded (a seeded sample)")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    files = sorted(args.demos.rglob("*_demo.hdf5"))
    if not files:
        p.error(f"--demos {args.demos}: no *_demo.hdf5 file under it")
    if args.chunk is None:
        suite = files[0].parent.name
        if suite not in SUITES.names():
            p.error(f"--demos {args.demos}: {files[0]} is not in a folder named after a suite; give --chunk")
        args.chunk = SUITES.get(suite).chunk
    args.out = args.out or args.checkpoint
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    model, tokens = load_checkpoint(args.checkpoint)
    breakdown = demo_action_errors(model, tokens, args.demos, args.train_demos, args.chunk, args.history,
                                   args.max_prompts)
    header = (f"Open-loop action-token accuracy of {args.checkpoint} on {breakdown.num_chunks} held-out chunks of "
              f"K={args.chunk} ({args.demos}), majority bin of {args.train_demos}.")
    text, payload = write_report(breakdown, args.out, header, checkpoint=str(args.checkpoint), chunk=args.chunk)
    print(text, flush=True)
    print(json.dumps(payload), flush=True)
    return payload


if __name__ == "__main__":
    with torch.no_grad():
        main()
