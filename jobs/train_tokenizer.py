"""Trains the tiny VQGAN image tokenizer on recorded demo frames and saves a tokenizer folder
(text_tokenizer.json, vocabulary.json, vqgan.yaml, vqgan.ckpt) that TokenSpace.from_tokenizer_dir reads.

    ray job submit --working-dir . -- python jobs/train_tokenizer.py --demos data/demos --out data/tokenizer
    python jobs/train_tokenizer.py --demos data/demos --steps 600 --out data/tokenizer

Reports reconstruction PSNR on frames of held-out trajectories (our stable split, data/split.py). Skips the work if
--out already holds a tokenizer, unless --force.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from worldvla_dist.data.libero_hdf5 import DemoFile
from worldvla_dist.data.split import TRAIN, assign_splits
from worldvla_dist.model.presets import MODEL_PRESETS
from worldvla_dist.sequences.token_space import TOKENIZER_FILES, TokenSpace
from worldvla_dist.tokenizers.vqgan_training import reconstruction_psnr, train_vqgan

log = logging.getLogger("train_tokenizer")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demos", type=Path, required=True, help="folder of *_demo.hdf5 files (searched recursively)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--preset", default="tiny-cpu", help="model preset whose image size and VQGAN to train")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--frame-stride", type=int, default=2, help="use every n-th frame of each demo")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true")
    return p.parse_args(argv)


def load_frames(demos: Path, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) agentview frames in model orientation, split by trajectory."""
    train, val = [], []
    files = sorted(demos.rglob("*_demo.hdf5"))
    if not files:
        raise SystemExit(f"no *_demo.hdf5 files under {demos}; run jobs/make_demos.py first")
    splits = assign_splits(files, "stable")
    for path in files:
        with DemoFile(path) as f:
            for name in f.names:
                frames = f[name].model_images()[::stride]
                (train if splits[path][name] == TRAIN else val).append(frames)
    if not val:  # tiny data sets: hold out the last trajectory rather than nothing
        if len(train) < 2:
            raise SystemExit(f"{demos}: {len(train)} recorded trajectory; training and reporting a held-out PSNR "
                             "need at least 2 (run jobs/make_demos.py with more --trials)")
        val.append(train.pop())
    return np.concatenate(train), np.concatenate(val)


def main(argv=None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if all((args.out / f).is_file() for f in TOKENIZER_FILES) and not args.force:
        log.info("%s already holds a tokenizer; pass --force to retrain", args.out)
        return
    torch.manual_seed(args.seed)
    preset = MODEL_PRESETS.get(args.preset)
    tokens = TokenSpace.for_preset(preset)
    train, val = load_frames(args.demos, args.frame_stride)
    if train.shape[1:3] != (preset.image_size_px, preset.image_size_px):
        raise SystemExit(f"demo frames are {train.shape[1:3]}, preset {preset.name} needs {preset.image_size_px} px")
    log.info("%d training frames, %d held-out frames", len(train), len(val))
    bar = tqdm(total=args.steps, desc="VQGAN", unit="step")
    train_vqgan(tokens.images, train, args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                on_step=lambda s, l: (bar.update(), bar.set_postfix(rec=f"{l['reconstruction']:.3f}", refresh=False)))
    bar.close()
    psnr = reconstruction_psnr(tokens.images, val)
    tokens.save(args.out)
    (args.out / "tokenizer_report.json").write_text(json.dumps(
        {"heldout_psnr_db": psnr, "train_frames": len(train), "heldout_frames": len(val), "steps": args.steps}))
    log.info("held-out reconstruction PSNR %.2f dB; tokenizer saved to %s", psnr, args.out)


if __name__ == "__main__":
    main()
