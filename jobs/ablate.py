"""The paper's Table 4, in direction, by one command: the same demos, steps and seeds trained in four
settings, each measured by held-out action-token accuracy per position in the chunk and by closed-loop
success on held-out init states.

    ray job submit --working-dir . -- python jobs/ablate.py --out runs/ablation
    python jobs/ablate.py --quick --out runs/ablation-quick     # ~6 min on 2 busy cores, 1 task, 2 demos
    python jobs/ablate.py --out runs/ablation                   # libero_object tasks 0-1, 10 demos each (~50 min)

(a) action model, K=1; (b) chunking K=5 under the causal mask, decoded one token at a time under it;
(c) chunking under the action mask (the default); (d) (c) plus world-model samples (joint). Everything
runs in this process (no Ray): the DeepSpeed learner of train_run, then the exported weights decoded
over the held-out demos (trials 1, 11, ... of the stable split, never trained on) and run closed loop
in an env process on init states the demos never started from (40, 41, ...).

Demos, the tokenizer and the token shards (K=1 and K) are made once under --data and reused; each
(setting, seed) writes its result under --out and is skipped when rerun, so a run cut short resumes.
Writes ablation.md and ablation.json to --out; the table goes to stdout, the JSON object last.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import transformers

from worldvla_dist.data.demo_generation import generate_task_demos
from worldvla_dist.data.prepare import tokenize_demo_file
from worldvla_dist.data.split import TRAIN, VAL_IND, assign_splits, task_key
from worldvla_dist.data.token_shards import ShardEntry, load_samples, write_index, write_shard
from worldvla_dist.envs.env_process import EnvProcess
from worldvla_dist.envs.libero_env import LiberoEnvConfig
from worldvla_dist.envs.libero_tasks import find_task
from worldvla_dist.evaluation.ablation import (SeedResult, closed_loop, decode_chunks, majority_position_accuracy,
                                               markdown_table, position_accuracy, prompts_and_targets, summarize,
                                               table4_settings)
from worldvla_dist.model.checkpoint import load_checkpoint
from worldvla_dist.sequences.token_space import TOKENIZER_FILES, TokenSpace
from worldvla_dist.serving.chunk_policy import ChunkPolicy
from worldvla_dist.training.learner_config import LearnerConfig, OptimConfig
from worldvla_dist.training.train_run import TrainRunConfig, run_training

log = logging.getLogger("ablate")
ROOT = Path(__file__).resolve().parents[1]

IMAGE_SIZE_PX = 128  # the micro-cpu / tiny-cpu presets' resolution
# --quick: one task, two demos (trial 0 trains, trial 1 is the held-out demo), short training and episodes
QUICK = dict(tasks=[0], demos_per_task=2, tokenizer_steps=60, steps=40, heldout_trials=[40], max_steps=30,
             max_prompts=16)
DEFAULT = dict(tasks=[0, 1], demos_per_task=10, tokenizer_steps=200, steps=1000, heldout_trials=[40, 41],
               max_steps=None, max_prompts=64)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=None, help="results folder (default runs/ablation[-quick])")
    p.add_argument("--data", type=Path, default=None,
                   help="demos, tokenizer and shards, made once and reused (default data/ablation[-quick])")
    p.add_argument("--quick", action="store_true", help="a small run to see it work: " + json.dumps(QUICK))
    p.add_argument("--suite", default="libero_object")
    p.add_argument("--tasks", type=int, nargs="+", default=None)
    p.add_argument("--demos-per-task", type=int, default=None, help="scripted demos from init states 0..N-1")
    p.add_argument("--tokenizer-steps", type=int, default=None)
    p.add_argument("--chunk", type=int, default=5, help="K of settings (b)-(d) (the suite's: 5 on Object)")
    p.add_argument("--world-fraction", type=float, default=0.25, help="share of world samples in (d)'s batches")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--settings", nargs="+", default=["a", "b", "c", "d"], choices=["a", "b", "c", "d"])
    p.add_argument("--preset", default="micro-cpu")
    p.add_argument("--steps", type=int, default=None, help="learner steps per (setting, seed)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup-steps", type=int, default=20, help="at most a fifth of --steps; cosine decay after")
    p.add_argument("--heldout-trials", type=int, nargs="+", default=None,
                   help="init states of the closed-loop episodes (never a demo's: demos start from 0..N-1)")
    p.add_argument("--max-steps", type=int, default=None, help="closed-loop step cap (default: the suite's)")
    p.add_argument("--max-prompts", type=int, default=None, help="held-out action prompts decoded per model")
    p.add_argument("--threads", type=int, default=1, help="torch threads (the learner and the decoders)")
    args = p.parse_args(argv)
    for name, value in (QUICK if args.quick else DEFAULT).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    tag = "ablation-quick" if args.quick else "ablation"
    args.out = args.out or ROOT / "runs" / tag
    args.data = args.data or ROOT / "data" / tag
    if args.chunk < 2:
        p.error(f"--chunk must be >= 2 (setting (a) is K=1), got {args.chunk}")
    held = set(args.heldout_trials) & set(range(args.demos_per_task))
    if held:
        p.error(f"--heldout-trials {sorted(held)} are demo init states (0..{args.demos_per_task - 1})")
    return args


def check_data_folder(args) -> None:
    """--data is reused only by the run that made it: other demos or a shorter tokenizer would mix silently."""
    made = {"suite": args.suite, "tasks": args.tasks, "demos_per_task": args.demos_per_task,
            "tokenizer_steps": args.tokenizer_steps, "preset": args.preset}
    record = args.data / "made_with.json"
    if record.exists() and json.loads(record.read_text()) != made:
        raise SystemExit(f"{args.data} was made with {record.read_text()}, this run asks for {json.dumps(made)}; "
                         "give another --data")
    args.data.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(made))


def make_demos(args) -> list[Path]:
    paths = []
    for task in args.tasks:
        spec = find_task(args.suite, task)
        path = args.data / "demos" / args.suite / f"{spec.name}_demo.hdf5"
        if not path.exists():
            start = time.time()
            report = generate_task_demos(args.suite, task, args.data / "demos", trials=args.demos_per_task,
                                         image_size_px=IMAGE_SIZE_PX)
            log.info("%s: %d of %d expert demos kept (%.0f s)", spec.key, report.kept_demos, report.trials,
                     time.time() - start)
        if path.exists():
            paths.append(path)
    if not paths:
        raise SystemExit(f"no demos were made for {args.suite} tasks {args.tasks}")
    return paths


def make_tokenizer(args) -> Path:
    out = args.data / "tokenizer"
    if not all((out / n).is_file() for n in TOKENIZER_FILES):
        subprocess.run([sys.executable, str(ROOT / "jobs" / "train_tokenizer.py"), "--demos", str(args.data / "demos"),
                        "--out", str(out), "--steps", str(args.tokenizer_steps), "--preset", args.preset], check=True,
                       env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})  # as many threads as the rest
    return out


def make_shards(args, demos: list[Path], tokenizer: Path, chunk: int) -> Path:
    """Token shards of action samples of `chunk` actions (and world samples) under the stable split."""
    out = args.data / f"shards_k{chunk}"
    if (out / "index.json").exists():
        return out
    tokens = TokenSpace.from_tokenizer_dir(tokenizer, IMAGE_SIZE_PX)
    splits = assign_splits(demos, "stable")
    entries = []
    for demo in demos:
        rel = Path(demo.parent.name) / (demo.stem.removesuffix("_demo") + ".msgpack")
        counts = write_shard(out / rel, tokenize_demo_file(tokens, demo, splits[demo], 2, chunk))
        entries.append(ShardEntry(str(rel), task_key(demo), *counts))
    write_index(out, entries)
    log.info("shards K=%d: %s", chunk, [(e.task, e.num_action, e.num_world, e.num_val_ind) for e in entries])
    return out


def train_one(args, setting, seed: int, shards: Path, tokenizer: Path) -> tuple[Path, dict, float]:
    run_dir = args.out / "runs" / f"{setting.key}-seed{seed}"
    config = TrainRunConfig(
        shards=str(shards), run_dir=str(run_dir), tokenizer_dir=str(tokenizer), preset=args.preset, steps=args.steps,
        save_every=args.steps, publish_every=args.steps, log_every=max(1, args.steps // 5), train_splits=(TRAIN,),
        learner=LearnerConfig(micro_batch_size=args.batch_size, world_fraction=setting.world_fraction, seed=seed,
                              attention_mask=setting.attention_mask,
                              optim=OptimConfig(lr=args.lr, warmup_steps=min(args.warmup_steps, args.steps // 5), weight_decay=0.0,
                                                decay_steps=args.steps)))
    start = time.time()
    logs = run_training(config, report=lambda l: log.info("(%s) seed %d step %d: L_action %.3f L_world %.3f",
                                                          setting.key, seed, l["step"], l["action_ce"], l["world_ce"]))
    return run_dir / "exports" / f"v{args.steps:06d}", logs, time.time() - start


def main(argv=None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("DeepSpeed").setLevel(logging.WARNING)
    transformers.utils.logging.disable_progress_bar()  # a bar per export and per load, 16 of each
    torch.set_num_threads(args.threads)
    started = time.time()
    args.out.mkdir(parents=True, exist_ok=True)
    settings = [s for s in table4_settings(args.chunk, args.world_fraction) if s.key in args.settings]

    check_data_folder(args)
    demos = make_demos(args)
    tokenizer = make_tokenizer(args)
    shards = {k: make_shards(args, demos, tokenizer, k) for k in sorted({1, args.chunk})}
    # every setting is measured on the same held-out prompts: those of the K-chunk samples
    heldout, _ = load_samples(shards[args.chunk], VAL_IND)
    if not heldout:
        raise SystemExit(f"{shards[args.chunk]}: no held-out (val_ind) demo; --demos-per-task must be >= 2")
    pick = np.sort(np.random.default_rng(0).permutation(len(heldout))[:args.max_prompts])
    prompts, targets = prompts_and_targets([heldout[i] for i in pick], args.chunk)
    train_targets = prompts_and_targets(load_samples(shards[args.chunk], TRAIN)[0], args.chunk)[1]
    majority = majority_position_accuracy(train_targets, targets)
    log.info("%d held-out prompts of %d; majority-bin accuracy per position %s", len(prompts), len(heldout),
             np.round(majority, 3).tolist())

    envs = {}
    results = []
    try:
        for seed in args.seeds:  # seed-major: a run cut short still has every setting of its first seeds
            for setting in settings:
                path = args.out / "results" / f"{setting.key}-seed{seed}.json"
                if path.exists():
                    results.append(SeedResult(**json.loads(path.read_text())))
                    continue
                folder, logs, seconds = train_one(args, setting, seed, shards[setting.chunk], tokenizer)
                model, tokens = load_checkpoint(folder)
                predicted = decode_chunks(model, prompts, setting.chunk, setting.attention_mask)
                accuracy = position_accuracy(predicted, targets[:, :setting.chunk])
                policy = ChunkPolicy(model, tokens, history=2, attention_mask=setting.attention_mask)
                successes = runs = errors = 0
                for task in args.tasks:
                    if task not in envs:
                        envs[task] = EnvProcess(LiberoEnvConfig(args.suite, task, image_size_px=IMAGE_SIZE_PX,
                                                                max_steps=args.max_steps))
                    s, n, e = closed_loop(policy, envs[task], args.heldout_trials, setting.chunk)
                    successes, runs, errors = successes + s, runs + n, errors + e
                result = SeedResult(setting.key, seed, accuracy.tolist(), len(prompts), successes, runs, errors,
                                    float(logs.get("action_ce", float("nan"))), seconds)
                log.info("(%s) seed %d: accuracy per position %s, success %d/%d", setting.key, seed,
                         np.round(accuracy, 3).tolist(), successes, runs)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(result.to_payload()))
                results.append(result)
    finally:
        for env in envs.values():
            env.close()

    summary = summarize(settings, results, args.chunk, majority)
    summary["config"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    summary["seconds"] = round(time.time() - started, 1)
    table = markdown_table(summary)
    header = (f"Ablation (paper Table 4) on {args.suite} tasks {args.tasks}: {args.demos_per_task} demos per task "
              f"(held out: the stable split's val_ind), {args.preset}, {args.steps} steps x batch {args.batch_size}, "
              f"seeds {args.seeds}; accuracy on {len(prompts)} held-out prompts, closed loop on init states "
              f"{args.heldout_trials} (cap {args.max_steps or 'the suite'} steps).")
    (args.out / "ablation.md").write_text(header + "\n\n" + table + "\n")
    (args.out / "ablation.json").write_text(json.dumps(summary, indent=1))
    print(header + "\n\n" + table, flush=True)
    print(json.dumps(summary), flush=True)
    return summary


if __name__ == "__main__":
    main()
