"""`make demo`: the main job on one small machine, end to end, from nothing.

    python jobs/demo.py            # ~22 minutes on 2 cores (22.3 min from a fresh clone, 2026-11-26)
    python jobs/demo.py --quick    # ~4 minutes, numbers meaningless: checks the plumbing

1. starts a local Ray head with its job server, and an embedded redis-server (loopback, password);
2. scripted LIBERO demonstrations for a few tasks -> hdf5 (cached in data/demo-cache/);
3. trains the tiny VQGAN on their frames (cached) and tokenises them into shards;
4. `jobs/train_joint.py` with the tiny-cpu preset: DeepSpeed learner + evaluation rounds on the
   published weights;
5. reports what the tiny model learned on held-out trajectories (action-token accuracy vs the
   majority bin, next-frame PSNR vs copying the last frame) and its success on the trained tasks.

Steps 2-4 are each a `ray job submit` to the head, as a user would run them on a cluster.
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

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from actors.ray_setup import _LOOPBACK_ENV, RAY_CLI, STATE_API_ENV, RayNode  # noqa: E402
from worldvla_dist.model.checkpoint import load_checkpoint  # noqa: E402
from worldvla_dist.runtime.redis_server import EmbeddedRedis, EmbeddedRedisConfig, free_loopback_port  # noqa: E402

log = logging.getLogger("demo")
ENV = {**os.environ, **_LOOPBACK_ENV}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "runs", help="parent folder of the run folder")
    p.add_argument("--cache", type=Path, default=ROOT / "data" / "demo-cache", help="demos, tokenizer, shards")
    p.add_argument("--suite", default="libero_object")
    p.add_argument("--tasks", nargs="+", default=["0", "1"])
    p.add_argument("--trials", type=int, default=12, help="scripted demos per task")
    p.add_argument("--tokenizer-steps", type=int, default=150)
    p.add_argument("--steps", type=int, default=300, help="learner steps")
    p.add_argument("--eval-trials", type=int, default=3)
    p.add_argument("--eval-max-steps", type=int, default=150, help="per episode (the suite's cap is 280)")
    p.add_argument("--videos", action="store_true", help="an mp4 per evaluation episode (run folder and wandb)")
    p.add_argument("--wandb", default="off", choices=["off", "offline", "online"])
    p.add_argument("--quick", action="store_true", help="tiny numbers everywhere: a plumbing check")
    args = p.parse_args()
    if args.quick:
        args.tasks, args.trials, args.tokenizer_steps, args.steps = args.tasks[:1], 2, 3, 4
        args.eval_trials, args.eval_max_steps = 1, 10
        if args.cache == ROOT / "data" / "demo-cache":  # a given --cache is used as it is
            args.cache = args.cache.with_name(args.cache.name + "-quick")
    return args


def run(*cmd: str) -> None:
    log.info("$ %s", " ".join(cmd))
    subprocess.run(cmd, check=True, cwd=ROOT, env=ENV)


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    started = time.monotonic()
    run_dir = (args.out / time.strftime("demo-%Y%m%d-%H%M%S")).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    cache = args.cache.resolve()
    port, dashboard = free_loopback_port(), free_loopback_port()
    address, dashboard_url = f"127.0.0.1:{port}", f"http://127.0.0.1:{dashboard}"
    log.info("starting a Ray head with its job server at %s", address)
    head = RayNode([f"--port={port}", f"--dashboard-port={dashboard}", "--dashboard-host=127.0.0.1",
                    f"--num-cpus={max(3, os.cpu_count() or 2)}", "--num-gpus=0", "--object-store-memory=268435456"]
                   ).start(address, url=f"{dashboard_url}/api/version")
    redis = EmbeddedRedis(EmbeddedRedisConfig(data_dir=str(run_dir / "redis"), appendonly=True)).start()

    def submit(*job: str, env_vars: dict[str, str] | None = None) -> None:
        run(RAY_CLI, "job", "submit", "--address", dashboard_url, "--working-dir", str(ROOT),
            # the state API's address in every actor (Ray Train's PlacementGroupCleaner asks it; see init_ray)
            "--runtime-env-json", json.dumps({"env_vars": {**_LOOPBACK_ENV, STATE_API_ENV: dashboard_url,
                                                           **(env_vars or {})}}),
            "--", sys.executable, *job)

    try:
        submit("jobs/make_demos.py", "--suites", args.suite, "--tasks", *args.tasks, "--trials", str(args.trials),
               "--image-size", "128", "--out", str(cache / "demos"))  # the tiny-cpu preset's resolution
        submit("jobs/train_tokenizer.py", "--demos", str(cache / "demos"), "--out", str(cache / "tokenizer"),
               "--steps", str(args.tokenizer_steps))
        submit("jobs/prepare_data.py", "--demos", str(cache / "demos"), "--tokenizer", str(cache / "tokenizer"),
               "--out", str(cache / "shards"))
        config = {
            "train": {"shards": str(cache / "shards"), "tokenizer_dir": str(cache / "tokenizer"), "run_dir": str(run_dir),
                      "steps": args.steps, "save_every": max(1, args.steps // 4), "publish_every": max(1, args.steps // 2),
                      "learner": {"micro_batch_size": 8, "optim": {"lr": 1e-3, "warmup_steps": min(20, args.steps)}}},
            "eval": {"suites": [args.suite], "tasks": [int(t) for t in args.tasks], "trials": args.eval_trials,
                     "max_steps": args.eval_max_steps, "videos": args.videos},
            "wandb": args.wandb,
            "resources": {"learner_cpus": 1, "policy_cpus": 0.5, "sim_workers": 1, "sim_cpus": 0.5},
        }
        (run_dir / "demo_config.yaml").write_text(yaml.safe_dump(config))
        submit("jobs/train_joint.py", "--config", str(run_dir / "demo_config.yaml"),
               env_vars={"WORLDVLA_REDIS_URL": redis.url})
    finally:
        redis.stop()
        head.stop()

    from worldvla_dist.evaluation.heldout import heldout_report

    summary = json.loads((run_dir / "summary.json").read_text())
    last_export = sorted((run_dir / "exports").iterdir())[-1]
    model, tokens = load_checkpoint(last_export)
    samples = 8 if args.quick else 64
    report = heldout_report(model, tokens, cache / "demos", max_frames=samples, max_prompts=samples)
    final_round = summary["rounds"].get(str(summary["steps"]), {})
    acc, frame = report["action_token_accuracy"], report["next_frame"]
    tokenizer_report = json.loads((cache / "tokenizer" / "tokenizer_report.json").read_text())
    on = report["on"]
    rows = [
        (f"{on} action-token accuracy", f"{acc['model']:.3f}", f"majority bin {acc['majority']:.3f}"),
        (f"{on} next-frame PSNR (dB)", f"{frame['model_psnr']:.2f}",
         f"copy last frame {frame['copy_last_psnr']:.2f}, tokenizer ceiling {frame['tokenizer_ceiling_psnr']:.2f}"),
        ("next-frame VQ code accuracy", f"{frame['model_code_accuracy']:.3f}",
         f"copy last frame {frame['copy_last_code_accuracy']:.3f}"),
        ("success on the trained tasks", f"{100 * final_round.get(args.suite, 0.0):.0f}%",
         f"{args.eval_trials} trials x {len(args.tasks)} tasks, {args.eval_max_steps} steps, weights v{summary['steps']}"),
        ("final L_action / L_world", f"{summary['final_L_action']:.3f}", f"{summary['final_L_world']:.3f}"),
    ]
    report.update(success=final_round, tokenizer=tokenizer_report, minutes=(time.monotonic() - started) / 60)
    (run_dir / "demo_report.json").write_text(json.dumps(report, indent=1))
    lines = [f"{name:32s} {value:>8s}   {note}" for name, value, note in rows]
    print(f"\nWorldVLA tiny-cpu demo ({'QUICK: plumbing only' if args.quick else 'LIBERO ' + args.suite}), "
          f"{report['minutes']:.1f} min\n" + "\n".join(lines))
    print(f"\noutputs: {run_dir}  (summary.json, rounds.md, loss.png, success_rounds.png, eval/, exports/, "
          f"demo_report.json)")


if __name__ == "__main__":
    main()
