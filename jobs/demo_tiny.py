"""Smoke run of the whole model core on the tiny CPU preset, end to end in minutes (`make demo`).

    python jobs/demo_tiny.py                 # ~10 minutes on 2 cores
    python jobs/demo_tiny.py --quick         # ~1 minute, numbers meaningless: checks the plumbing

Scripted expert episodes in a procedural reaching world (LIBERO data arrives with the LIBERO issue),
then: train the tiny VQGAN, tokenise, train WorldVLA on mixed action + world samples, and report on
held-out episodes: action-token accuracy vs the majority bin, next-frame PSNR and code accuracy vs
copying the last frame, and parallel vs reference decoding. Outputs land in runs/demo-<time>/.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from worldvla_dist.data.episode_samples import episode_samples
from worldvla_dist.data.mixing import mixed_batches
from worldvla_dist.data.toy_world import ToyWorld
from worldvla_dist.decoding.next_frame import generate_next_frames
from worldvla_dist.decoding.parallel_decoder import parallel_decode_actions
from worldvla_dist.decoding.reference_decoder import reference_decode_actions
from worldvla_dist.evaluation.offline import action_token_accuracy, next_frame_quality
from worldvla_dist.model.checkpoint import save_checkpoint
from worldvla_dist.model.presets import MODEL_PRESETS
from worldvla_dist.model.worldvla import WorldVLA
from worldvla_dist.sequences.token_space import TokenSpace
from worldvla_dist.tokenizers.vqgan_training import reconstruction_psnr, train_vqgan
from worldvla_dist.training.torch_loop import train_steps

log = logging.getLogger("demo_tiny")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs"), help="parent folder of the run folder")
    p.add_argument("--episodes", type=int, default=48, help="expert episodes; the last sixth are held out")
    p.add_argument("--vqgan-steps", type=int, default=120)
    p.add_argument("--train-steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--world-fraction", type=float, default=0.5, help="share of world samples per batch")
    p.add_argument("--chunk", type=int, default=5, help="K, actions per chunk")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny numbers everywhere: a plumbing check")
    args = p.parse_args()
    if args.quick:
        args.episodes, args.vqgan_steps, args.train_steps, args.batch_size = 6, 3, 4, 4
    return args


def contact_sheet(path: Path, rows: list[tuple[np.ndarray, ...]]) -> None:
    """One row per example: frame_t | real frame_t+1 | predicted frame_t+1."""
    sheet = np.concatenate([np.concatenate(r, axis=1) for r in rows], axis=0)
    Image.fromarray(sheet).save(path)


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    torch.manual_seed(args.seed)
    run_dir = args.out / time.strftime("demo-%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    preset = MODEL_PRESETS.get("tiny-cpu")
    tokens = TokenSpace.for_preset(preset)

    world = ToyWorld(preset.image_size_px)
    episodes = [world.expert_episode(args.seed * 10_000 + i) for i in range(args.episodes)]
    held_out = max(1, args.episodes // 6)
    train_eps, eval_eps = episodes[:-held_out], episodes[-held_out:]
    train_frames = np.concatenate([e.frames for e in train_eps])
    log.info("%d training / %d held-out episodes, %d training frames", len(train_eps), len(eval_eps), len(train_frames))

    bar = tqdm(total=args.vqgan_steps, desc="VQGAN", unit="step")
    train_vqgan(tokens.images, train_frames, args.vqgan_steps, batch_size=4, lr=2e-3, seed=args.seed,
                on_step=lambda s, l: (bar.update(), bar.set_postfix(rec=f"{l['reconstruction']:.3f}")))
    bar.close()
    eval_frames = np.concatenate([e.frames for e in eval_eps])
    recon = reconstruction_psnr(tokens.images, eval_frames)

    action_samples, world_samples, eval_prompts, eval_targets, train_targets = [], [], [], [], []
    for i, ep in enumerate(tqdm(episodes, desc="tokenise", unit="episode")):
        codes = tokens.images.encode(ep.frames)
        a, w = episode_samples(tokens, codes, ep.actions, ep.instruction, chunk=args.chunk)
        targets = [tokens.actions.encode(ep.actions[t:t + args.chunk]) for t in range(len(a))]
        if i < len(train_eps):
            action_samples += a
            world_samples += w
            train_targets += targets
        else:
            eval_prompts += [s.input_ids[:s.prompt_length].tolist() for s in a]
            eval_targets += targets

    model = WorldVLA.build(preset, tokens.vocab, tokens.images.vqgan.cfg)
    bar = tqdm(total=args.train_steps, desc="WorldVLA", unit="step")
    history = []

    def on_step(step: int, logs: dict[str, float]) -> None:
        bar.update()
        bar.set_postfix(loss=f"{logs['loss']:.3f}", L_action=f"{logs['action_ce']:.3f}", L_world=f"{logs['world_ce']:.3f}")
        history.append(logs)

    train_steps(model, mixed_batches(action_samples, world_samples, args.batch_size, args.world_fraction, args.seed),
                args.train_steps, args.lr, on_step=on_step)
    bar.close()

    accuracy = action_token_accuracy(model, eval_prompts, np.stack(eval_targets), np.stack(train_targets))
    frames_t = np.concatenate([e.frames[:-1] for e in eval_eps])
    frames_next = np.concatenate([e.frames[1:] for e in eval_eps])
    acts = np.concatenate([e.actions for e in eval_eps])
    frame_quality = next_frame_quality(model, tokens, frames_t, acts, frames_next)

    probe = eval_prompts[:4]
    start = time.perf_counter()
    reference = reference_decode_actions(model, probe, args.chunk)
    reference_s = time.perf_counter() - start
    start = time.perf_counter()
    parallel = parallel_decode_actions(model, probe, args.chunk)
    parallel_s = time.perf_counter() - start
    agreement = float((reference == parallel).float().mean())

    ckpt = save_checkpoint(model, tokens, run_dir / "checkpoint")
    picks = np.linspace(0, len(frames_t) - 1, 4).astype(int)
    codes = tokens.images.encode(frames_t[picks])
    predicted = tokens.images.decode(generate_next_frames(
        model, tokens.layout, [tokens.samples.world_prompt(c, a) for c, a in zip(codes, acts[picks])]))
    contact_sheet(run_dir / "next_frames.png", [(frames_t[i], frames_next[i], p) for i, p in zip(picks, predicted)])

    summary = {
        "action_token_accuracy": asdict(accuracy), "next_frame": asdict(frame_quality),
        "vqgan_reconstruction_psnr_db": recon, "final_train_loss": history[-1],
        "decoders": {"agreement": agreement, "reference_s": reference_s, "parallel_s": parallel_s},
        "args": {k: str(v) for k, v in vars(args).items()}, "checkpoint": str(ckpt)}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    table = [
        ("held-out action-token accuracy", f"{accuracy.model:.3f}", f"majority bin {accuracy.majority:.3f}"),
        ("next-frame PSNR (dB)", f"{frame_quality.model_psnr:.2f}", f"copy last frame {frame_quality.copy_last_psnr:.2f}, "
         f"tokenizer ceiling {frame_quality.tokenizer_ceiling_psnr:.2f}"),
        ("next-frame VQ code accuracy", f"{frame_quality.model_code_accuracy:.3f}",
         f"copy last frame {frame_quality.copy_last_code_accuracy:.3f}"),
        ("VQGAN reconstruction PSNR (dB)", f"{recon:.2f}", "held-out frames"),
        ("parallel vs reference decoding", f"{agreement:.3f} agree", f"{reference_s / parallel_s:.1f}x faster"),
    ]
    lines = [f"{name:34s} {value:>14s}   {note}" for name, value, note in table]
    log.info("results (%s)\n%s", "QUICK: plumbing only" if args.quick else "tiny-cpu", "\n".join(lines))
    log.info("outputs: %s (summary.json, next_frames.png, checkpoint/)", run_dir)


if __name__ == "__main__":
    main()
