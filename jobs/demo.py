"""`make demo`: the main job on one small machine, end to end, from nothing.

    python jobs/demo.py                     # the memorization recipe (~6 minutes on 2 cores)
    python jobs/demo.py --recipe heldout    # 2 libero_object tasks, 20 demos each, judged on init states 40..49 (~30 min)
    python jobs/demo.py --quick             # ~4 minutes, numbers meaningless: checks the plumbing

1. starts a local Ray head with its job server, and an embedded redis-server (loopback, password);
2. scripted LIBERO demonstrations -> hdf5 (cached in data/demo-cache/<recipe>/);
3. trains the tiny VQGAN on their frames (cached) and tokenises them into shards;
4. `jobs/train_joint.py` on the recipe's config: DeepSpeed learner + evaluation rounds on the
   published weights;
5. reports success on the init states it trained on and on init states it never saw, and (heldout
   recipe) open-loop action-token accuracy per dimension and chunk position on demos made from the
   held-out init states (action_errors.md).

Recipes. memorize (the default; configs/memorize_cpu.yaml): the micro-cpu model learns 2 demos of one
short task and replays them closed loop: what a user can see learn in minutes on a CPU, and the
setting of tests/jobs/test_memorize.py. It is memorization, not generalization: the unseen init
states beside it say so. heldout (configs/heldout_cpu.yaml): the generalization setting, evaluated on
init states no demo started from (2026-12-06: 50% of 20 held-out episodes after 3,000 steps, 28 min
from nothing from a clean clone; with 10 demos per task 25%; docs/benchmarks.md).

Steps 2-4 are each a `ray job submit` to the head, as a user would run them on a cluster. Their
output is kept to our own lines (Ray's submission text, robosuite's macro warnings and DeepSpeed's
start-up lines are dropped; progress bars refresh at most every 30 s).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from actors.ray_setup import _LOOPBACK_ENV, RAY_CLI, STATE_API_ENV, RayNode  # noqa: E402
from worldvla_dist.model.checkpoint import load_checkpoint  # noqa: E402
from worldvla_dist.runtime.redis_server import EmbeddedRedis, EmbeddedRedisConfig, free_loopback_port  # noqa: E402

log = logging.getLogger("demo")
ENV = {**os.environ, **_LOOPBACK_ENV}


@dataclass(frozen=True)
class DemoRecipe:
    """What the demo trains on and how it is judged. Demos are made from init states 0..demos-1 of each
    task; evaluation runs eval_trials init states from eval_first_trial: those below `demos` were
    trained on, the rest never seen."""

    suite: str
    tasks: tuple[str, ...]
    demos: int  # scripted demos per task
    tokenizer_steps: int
    config: str  # the train_joint config (paths are replaced by the demo's)
    eval_first_trial: int
    eval_trials: int
    eval_max_steps: int
    label: str
    heldout_demos: int = 0  # demos per task from init states eval_first_trial..: open-loop action errors


RECIPES = {
    "memorize": DemoRecipe("libero_goal", ("7",), 2, 200, "configs/memorize_cpu.yaml", 0, 4, 150,
                           "memorization: 2 demos of one task, replayed closed loop"),
    "heldout": DemoRecipe("libero_object", ("0", "1"), 20, 200, "configs/heldout_cpu.yaml", 40, 10, 280,
                          "held-out: 20 demos per task, evaluated on init states 40..49 (never trained on)", 4),
}

# Lines of `ray job submit` and of the libraries' start-up that say nothing about the run; a job's
# verdict ("Job 'raysubmit_..' succeeded") is kept.
CHATTER = re.compile("|".join((
    r"\b(cli|packaging|working_dir|job_manager|sdk|worker|dashboard_sdk)\.py:\d+ -- ", r"robosuite WARNING",
    r"setup_macros\.py", r"\[info\] Applying task order", r"detached actor in an anonymous namespace",
    r"has constructor arguments in the object store and max_restarts", r"\[(INFO|WARNING)\] \[(real_accelerator|logging|config|comm)",
    r"^\s*$")))
VERDICT = re.compile(r"Job '\S+' (succeeded|failed|stopped)")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", choices=sorted(RECIPES), default="memorize")
    p.add_argument("--out", type=Path, default=ROOT / "runs", help="parent folder of the run folder")
    p.add_argument("--cache", type=Path, default=None, help="demos, tokenizer, shards (default data/demo-cache/<recipe>)")
    p.add_argument("--steps", type=int, default=None, help="learner steps (default: the recipe config's)")
    p.add_argument("--demos", type=int, default=None,
                   help="scripted demos per task, from init states 0.. (default: the recipe's; own cache folder)")
    p.add_argument("--videos", action="store_true", help="an mp4 per evaluation episode (run folder and wandb)")
    p.add_argument("--wandb", default="off", choices=["off", "offline", "online"])
    p.add_argument("--quick", action="store_true", help="tiny numbers everywhere: a plumbing check")
    args = p.parse_args()
    recipe = RECIPES[args.recipe]
    if args.demos is not None:
        if args.demos < 1 or (recipe.eval_first_trial and args.demos > recipe.eval_first_trial):
            p.error(f"--demos {args.demos}: the {args.recipe} recipe evaluates init states from "
                    f"{recipe.eval_first_trial}; demos must come from before them")
        recipe = replace(recipe, demos=args.demos, label=recipe.label.replace(f"{recipe.demos} demos", f"{args.demos} demos"))
    name = args.recipe + (f"-d{args.demos}" if args.demos else "") + ("-quick" if args.quick else "")
    args.cache = args.cache or ROOT / "data" / "demo-cache" / name
    if args.quick:
        recipe = replace(recipe, tasks=recipe.tasks[:1], demos=2, tokenizer_steps=3, eval_trials=1, eval_max_steps=10,
                         heldout_demos=min(recipe.heldout_demos, 1))
        args.steps = 4
    args.recipe_spec = recipe
    return args


def run(*cmd: str) -> None:
    """Runs `cmd`, passing on its output without the chatter; raises on failure with the last lines."""
    shown = ["ray job submit ... --", *cmd[cmd.index("--") + 1:]] if "--" in cmd else cmd
    log.info("$ %s", " ".join(shown))
    tail: list[str] = []
    with subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          bufsize=1) as proc:
        for line in proc.stdout:
            tail = (tail + [line])[-40:]
            line = ANSI.sub("", line)
            if VERDICT.search(line) or not CHATTER.search(line):
                sys.stdout.write(line)
                sys.stdout.flush()
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd, "".join(tail))


def train_config(recipe: DemoRecipe, cache: Path, run_dir: Path, steps: int | None, videos: bool, wandb: str) -> dict:
    """The recipe's train_joint config with the demo's paths and evaluation."""
    config = yaml.safe_load((ROOT / recipe.config).read_text())
    train = config["train"]
    train.update(shards=str(cache / "shards"), tokenizer_dir=str(cache / "tokenizer"), run_dir=str(run_dir))
    if steps:
        train.update(steps=steps, save_every=max(1, steps // 2), publish_every=max(1, steps // 2))
        if train["learner"]["optim"].get("decay_steps"):
            train["learner"]["optim"]["decay_steps"] = steps
        train["learner"]["optim"]["warmup_steps"] = min(20, steps - 1)
    config["eval"] = {"suites": [recipe.suite], "tasks": [int(t) for t in recipe.tasks], "trials": recipe.eval_trials,
                      "first_trial": recipe.eval_first_trial, "max_steps": recipe.eval_max_steps, "videos": videos}
    config["wandb"] = wandb
    return config


def success_by_init_state(episodes: list[dict], trained: int) -> dict[str, tuple[int, int]]:
    """(successes, episodes run) on the init states below `trained` and on the others."""
    out = {}
    for name, chosen in (("trained", [e for e in episodes if e["trial"] < trained]),
                         ("unseen", [e for e in episodes if e["trial"] >= trained])):
        ran = [e for e in chosen if not e.get("error")]
        out[name] = (sum(e["success"] for e in ran), len(ran))
    return out


def main() -> None:
    args = parse_args()
    recipe: DemoRecipe = args.recipe_spec
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    started = time.monotonic()
    run_dir = (args.out / time.strftime(f"demo-{args.recipe}-%Y%m%d-%H%M%S")).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    cache = args.cache.resolve()
    port, dashboard = free_loopback_port(), free_loopback_port()
    address, dashboard_url = f"127.0.0.1:{port}", f"http://127.0.0.1:{dashboard}"
    log.info("recipe %s (%s); starting a Ray head with its job server at %s", args.recipe, recipe.label, address)
    head = RayNode([f"--port={port}", f"--dashboard-port={dashboard}", "--dashboard-host=127.0.0.1",
                    f"--num-cpus={max(3, os.cpu_count() or 2)}", "--num-gpus=0", "--object-store-memory=268435456"]
                   ).start(address, url=f"{dashboard_url}/api/version")
    redis = EmbeddedRedis(EmbeddedRedisConfig(data_dir=str(run_dir / "redis"), appendonly=True)).start()

    def submit(*job: str, env_vars: dict[str, str] | None = None) -> None:
        run(RAY_CLI, "job", "submit", "--address", dashboard_url, "--working-dir", str(ROOT),
            # the state API's address in every actor (Ray Train's PlacementGroupCleaner asks it; see init_ray);
            # job logs are no terminal: a progress bar line at most every 30 s
            "--runtime-env-json", json.dumps({"env_vars": {**_LOOPBACK_ENV, STATE_API_ENV: dashboard_url,
                                                           "TQDM_MININTERVAL": "30", **(env_vars or {})}}),
            "--", sys.executable, *job)

    try:
        submit("jobs/make_demos.py", "--suites", recipe.suite, "--tasks", *recipe.tasks, "--trials", str(recipe.demos),
               "--image-size", "128", "--out", str(cache / "demos"))  # the tiny presets' resolution
        submit("jobs/train_tokenizer.py", "--demos", str(cache / "demos"), "--out", str(cache / "tokenizer"),
               "--steps", str(recipe.tokenizer_steps))
        submit("jobs/prepare_data.py", "--demos", str(cache / "demos"), "--tokenizer", str(cache / "tokenizer"),
               "--out", str(cache / "shards"))
        if recipe.heldout_demos:  # from the init states evaluated, which no training demo started from
            submit("jobs/make_demos.py", "--suites", recipe.suite, "--tasks", *recipe.tasks, "--first-trial",
                   str(recipe.eval_first_trial), "--trials", str(recipe.heldout_demos), "--image-size", "128",
                   "--out", str(cache / "heldout-demos"))
        config = train_config(recipe, cache, run_dir, args.steps, args.videos, args.wandb)
        (run_dir / "demo_config.yaml").write_text(yaml.safe_dump(config))
        submit("jobs/train_joint.py", "--config", str(run_dir / "demo_config.yaml"),
               env_vars={"WORLDVLA_REDIS_URL": redis.url})
    finally:
        redis.stop()
        head.stop()
    report = demo_report(args, recipe, config, cache, run_dir)
    report["minutes"] = (time.monotonic() - started) / 60
    (run_dir / "demo_report.json").write_text(json.dumps(report, indent=1))
    print(f"\nWorldVLA demo, recipe {args.recipe} ({'QUICK: plumbing only' if args.quick else recipe.label}), "
          f"{report['minutes']:.1f} min\n" + "\n".join(f"{name:36s} {value:>8s}   {note}" for name, value, note in report["rows"]))
    print(f"\noutputs: {run_dir}  (summary.json, rounds.md, loss.png, success_rounds.png, eval/, exports/, "
          f"demo_report.json)")


def demo_report(args, recipe: DemoRecipe, config: dict, cache: Path, run_dir: Path) -> dict:
    """The closing table: success on trained and unseen init states, losses, and for the heldout
    recipe where its actions go wrong on demos from the held-out init states."""
    summary = json.loads((run_dir / "summary.json").read_text())
    steps = summary["steps"]
    episodes = [json.loads(x) for x in (run_dir / "eval" / f"v{steps:06d}" / "episodes.jsonl").read_text().splitlines()]
    split = success_by_init_state(episodes, recipe.demos)
    where = f"{recipe.suite} task(s) {' '.join(recipe.tasks)}, {recipe.eval_max_steps} steps, weights v{steps}"
    rows = [(name, _rate(*split[key]), f"{note}; {where}") for key, name, note in (
        ("trained", "success on trained init states", f"init states 0..{recipe.demos - 1}"),
        ("unseen", "success on unseen init states", f"init states >= {recipe.demos}, never trained on"))
        if split[key][1]]
    world = summary["final_L_world"]
    rows.append(("final L_action / L_world", f"{summary['final_L_action']:.3f}",
                 "no world samples (world_fraction 0)" if world is None or math.isnan(world) else f"{world:.3f}"))
    report = {"recipe": args.recipe, "label": recipe.label, "success": {k: list(v) for k, v in split.items()},
              "summary": summary, "tokenizer": json.loads((cache / "tokenizer" / "tokenizer_report.json").read_text())}
    if recipe.heldout_demos:
        from worldvla_dist.evaluation.action_errors import ACTION_DIM_NAMES, write_report
        from worldvla_dist.evaluation.heldout import demo_action_errors

        export = sorted((run_dir / "exports").iterdir())[-1]
        model, tokens = load_checkpoint(export)
        errors = demo_action_errors(model, tokens, cache / "heldout-demos", cache / "demos",
                                    max_prompts=16 if args.quick else 256)
        write_report(errors, run_dir, f"Open-loop action-token accuracy of {export} on {errors.num_chunks} chunks of "
                     f"demos from init states {recipe.eval_first_trial}.., majority bin of the training demos.",
                     checkpoint=str(export))
        by_dim = dict(zip(ACTION_DIM_NAMES[:3], errors.by_dimension))
        rows += [("held-out action-token accuracy", f"{np.mean(errors.accuracy):.3f}",
                  f"majority bin {np.mean(errors.majority_accuracy):.3f}; {errors.num_chunks} chunks of demos from "
                  f"init states {recipe.eval_first_trial}.."),
                 ("  x / y / z exact", " / ".join(f"{v:.2f}" for v in by_dim.values()),
                  "per position and dimension: action_errors.md")]
        report["action_errors"] = errors.to_payload()  # also in action_errors.json
    report["rows"] = rows
    return report


def _rate(successes: int, ran: int) -> str:
    return f"{100 * successes / ran:.0f}% ({successes}/{ran})" if ran else "-"


if __name__ == "__main__":
    main()
