"""Evaluate a checkpoint on LIBERO: 50 trials per task by default, spread over W SimWorkers that ask
one PolicyServer for action chunks over Redis.

    ray job submit --working-dir . -- python jobs/eval_libero.py --checkpoint /abs/ckpt --suites libero_spatial
    python jobs/eval_libero.py --checkpoint runs/demo-X/checkpoint --suites libero_object --tasks 0 1 --trials 5
    python jobs/eval_libero.py --checkpoint runs/demo-X/checkpoint --suites libero_object_swap libero_object_lan
    python jobs/eval_libero.py --checkpoint runs/demo-X/checkpoint --robustness libero_object --trials 10
    python jobs/eval_libero.py --checkpoint runs/demo-X/checkpoint --suites libero_goal --instruction-variants

LIBERO-PRO's perturbed suites (`<base>_{lan,object,swap,task}`) run like any suite, with the base
suite's step cap and chunk, their own BDDL files and init states, and the BDDL's `(:language ...)` as
the instruction (envs/libero_pro.py); a suite whose files are incomplete is refused before anything
is queued. `--robustness BASE` runs BASE and each runnable perturbation of it in one queue, episodes
interleaved (trial 0 of every task in every column first), and writes robustness.md / .csv / .json:
rows of tasks, columns original / language / object / swap / task, the drop from the original.
`--instruction-variants` also runs each base suite under its tasks' LIBERO-PRO `_lan` paraphrases
(suite `<base>_paraphrase`: same BDDL and init states, trial by trial; one result per task, trial and
variant) and writes variants.md / .csv / .json.

Outputs land in <out>/eval-<run id>/: success.md / .csv / .json (per task, errors apart from
failures, and per suite in the paper's layout), episodes.jsonl, videos/ with --videos. Re-running with
the same --run-id evaluates only the trials without a result (the embedded Redis keeps its
append-only file in the run folder; with --redis-url, results live in that Redis).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

from tqdm import tqdm

from actors.eval_fleet import EvalFleet, FleetConfig, default_num_workers
from actors.job_session import JobSession
from worldvla_dist.envs.libero_pro import BASE_SUITES, require_runnable
from worldvla_dist.envs.libero_tasks import SUITES, TRIALS_PER_TASK
from worldvla_dist.evaluation import robustness_table, success_table
from worldvla_dist.evaluation.capacity import SupplyCurve, choose_workers, demand_chunks_per_s, serving_report
from worldvla_dist.evaluation.episode_worker import EpisodeWorkerConfig
from worldvla_dist.evaluation.eval_run import EvalRun, plan_episodes
from worldvla_dist.model.checkpoint import check_model_files
from worldvla_dist.serving.policy_service import PolicyServiceConfig

log = logging.getLogger("eval_libero")
MEASURE_EVERY_S = 10.0  # the fleet re-reads the servers' supply and the workers' demand this often


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="our model folder, or a reference WorldVLA folder "
                                                       "(then also --tokenizer-dir and --preset)")
    p.add_argument("--tokenizer-dir", default=None)
    p.add_argument("--preset", default=None, help="worldvla-256 / worldvla-512 for reference checkpoints")
    p.add_argument("--suites", nargs="+", default=None, choices=SUITES.names(),
                   help="default: libero_spatial, or none with --robustness")
    p.add_argument("--robustness", default=None, choices=BASE_SUITES,
                   help="this suite and each runnable LIBERO-PRO perturbation of it, interleaved; robustness.md")
    p.add_argument("--instruction-variants", action="store_true",
                   help="each base suite also under its LIBERO-PRO _lan paraphrases (<base>_paraphrase); variants.md")
    p.add_argument("--tasks", nargs="*", default=None, help="task indices or names (default: all of each suite)")
    p.add_argument("--trials", type=int, default=50)
    p.add_argument("--first-trial", type=int, default=0,
                   help="init states --first-trial.. (40 with --trials 10: the states a 0..39 recipe never trained on)")
    p.add_argument("--max-steps", type=int, default=None, help="override the suite's step cap (smoke runs)")
    p.add_argument("--workers", type=int, default=None, help="SimWorkers (default: the cluster's CPUs minus one)")
    p.add_argument("--max-workers", type=int, default=None,
                   help="autoscale: add SimWorkers up to this many as the queue grows (asks the Ray autoscaler)")
    p.add_argument("--episodes-per-worker", type=int, default=10,
                   help="autoscale: queued episodes that justify one more SimWorker")
    p.add_argument("--max-policy-servers", type=int, default=1,
                   help="autoscale: add PolicyServers (one request stream) up to this many when supply binds")
    p.add_argument("--max-batch", type=int, default=8, help="PolicyServer's largest batch")
    p.add_argument("--max-wait-ms", type=float, default=5.0, help="PolicyServer's wait for more requests")
    p.add_argument("--policy-cpus", type=float, default=1.0,
                   help="Ray CPUs the PolicyServer takes (0: it may sit on a CPU-less head, as in "
                        "configs/cluster_local.yaml)")
    p.add_argument("--run-id", default=None, help="re-use to resume (default: a new time-stamped id)")
    p.add_argument("--out", type=Path, default=Path("runs"))
    p.add_argument("--redis-url", default=os.environ.get("WORLDVLA_REDIS_URL"),
                   help="an existing Redis (default: start an embedded redis-server)")
    p.add_argument("--address", default=None, help="Ray address (default: RAY_ADDRESS or a local Ray)")
    p.add_argument("--num-cpus", type=int, default=None, help="local Ray only")
    p.add_argument("--videos", action="store_true", help="write an mp4 per episode")
    p.add_argument("--wandb", choices=["off", "offline", "online"], default="off")
    p.add_argument("--step-timeout", type=float, default=60.0, help="env watchdog, seconds per step")
    p.add_argument("--reclaim-after", type=float, default=120.0,
                   help="seconds before a dead SimWorker's episode is taken over")
    args = p.parse_args(argv)
    if args.trials < 1 or args.first_trial < 0 or args.first_trial + args.trials > TRIALS_PER_TASK:
        p.error(f"--first-trial {args.first_trial} --trials {args.trials}: init states must lie in "
                f"0..{TRIALS_PER_TASK - 1} (each LIBERO task has {TRIALS_PER_TASK})")
    return args


def plan_layouts(args: argparse.Namespace) -> tuple[list[str], list[robustness_table.Layout]]:
    """The suites to run (in queue order) and the robustness / variant tables to write."""
    layouts = [robustness_table.robustness_layout(args.robustness)] if args.robustness else []
    suites = list(args.suites or ([] if args.robustness else ["libero_spatial"]))
    if args.instruction_variants:
        layouts += robustness_table.variant_layouts(dict.fromkeys(robustness_table.layout_suites(layouts) + suites))
    for layout in layouts:
        for why in dict(layout.skipped).values():
            log.warning("--robustness %s: left out, %s", layout.base, why)
    return list(dict.fromkeys(robustness_table.layout_suites(layouts) + suites)), layouts


def fixed_scaling(fleet: FleetConfig, policy_stats: dict, demand: float | None, episodes: int,
                  max_batch: int) -> dict:
    """Without --max-workers the count is fixed; the summary still says what the capacity rule would
    have chosen for this run's episodes from what was measured."""
    advice = choose_workers(episodes, 1, 1, max(1, episodes), SupplyCurve.from_stats(
        policy_stats.get("supply_chunks_per_s")), demand, max_batch=max_batch)
    return {"workers": fleet.num_workers, "bound": "fixed", "advised_workers": advice.workers,
            "reason": f"fixed (no --max-workers); the rule would choose {advice.workers}, {advice.reason}"}


def log_to_wandb(mode: str, run_dir: Path, run_id: str, args: argparse.Namespace, rows, results,
                 tables=()) -> None:
    import wandb

    run = wandb.init(project="worldvla-dist", name=f"eval-{run_id}", dir=str(run_dir), mode=mode,
                     config={k: str(v) for k, v in vars(args).items()})
    table = wandb.Table(columns=["suite", "task", "name", "trials", "successes", "failures", "errors", "success_rate"],
                        data=[[r.suite, r.task, r.name, r.trials, r.successes, r.failures, r.errors, r.rate] for r in rows])
    run.log({"success_table": table, **{f"success/{k}": v for k, v in success_table.suite_rates(rows).items()}})
    for robustness in tables:
        labels = robustness.labels
        run.log({f"{robustness.columns[1].label}/{robustness.base}": wandb.Table(
            columns=["task", "name", *labels, *[f"drop_{l}" for l in labels[1:]]],
            data=[[str(row.task), row.name, *[row.rate(l) for l in labels], *[row.drop(l) for l in labels[1:]]]
                  for row in robustness.rows])})
    for r in results:
        if r.video:
            run.log({f"video/{r.suite}/task{r.task}": wandb.Video(r.video, format="mp4")})
    run.finish()


def main(argv=None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run_id = args.run_id or time.strftime("%Y%m%d-%H%M%S")
    run_dir = (args.out / f"eval-{run_id}").resolve()
    suites, layouts = plan_layouts(args)
    require_runnable(suites)  # an incomplete (LIBERO-PRO) suite is refused with the package's reason, now
    check_model_files(args.checkpoint)  # before any actor: a wrong path fails now, not after 6 restarts
    session = JobSession.open(run_dir, args.redis_url, args.address, args.num_cpus)
    client, redis_url = session.client, session.redis_url
    fleet = None
    try:
        policy_gpus = 1.0 if session.has_gpu else 0.0
        worker = EpisodeWorkerConfig(run_id=run_id, step_timeout_s=args.step_timeout, reclaim_after_s=args.reclaim_after,
                                     video_dir=str(run_dir / "videos") if args.videos else None)
        service = PolicyServiceConfig(queue=f"eval:{run_id}:policy", max_batch=args.max_batch,
                                      max_wait_s=args.max_wait_ms / 1000)
        fleet_config = FleetConfig(checkpoint=str(Path(args.checkpoint).resolve()), tokenizer_dir=args.tokenizer_dir,
                                   preset=args.preset, policy_cpus=args.policy_cpus, policy_gpus=policy_gpus,
                                   num_workers=args.workers or default_num_workers(args.policy_cpus),
                                   max_workers=args.max_workers,
                                   episodes_per_worker=args.episodes_per_worker,
                                   max_servers=args.max_policy_servers)
        specs = plan_episodes(suites, args.tasks, args.trials, max_steps=args.max_steps, video=args.videos,
                              first_trial=args.first_trial)
        if layouts:  # a run stopped early still fills every column
            specs = robustness_table.interleave(specs, suites)
        run = EvalRun(client, worker, specs)
        missing = run.enqueue_missing()
        log.info("run %s: %d episodes, %d already done; %d SimWorkers, PolicyServer on %s", run_id, len(specs),
                 len(specs) - missing, fleet_config.num_workers, "GPU" if policy_gpus else "CPU")
        start = time.monotonic()
        if missing:
            fleet = EvalFleet(redis_url, fleet_config, worker, service).start()
            first = run.progress().done
            bar = tqdm(total=len(specs), initial=first, desc="episodes", unit="ep")

            def show(p):
                bar.update(p.done - bar.n)
                minutes = (time.monotonic() - start) / 60
                bar.set_postfix(success=f"{100 * p.success_rate:.1f}%", errors=p.errors,
                                per_min=f"{(p.done - first) / max(minutes, 1e-9):.1f}", refresh=False)

            fleet.scale_to_queue(missing)
            measured = {"at": time.monotonic(), "supply": None, "demand": None}  # the last measurement holds

            def poll():
                fleet.supervise()
                if args.max_workers and time.monotonic() - measured["at"] >= MEASURE_EVERY_S:
                    measured.update(at=time.monotonic(), supply=fleet.measured_supply(),
                                    demand=demand_chunks_per_s(run.results_so_far().values()))
                fleet.scale_to_queue(run.queue.depth(), measured["supply"], measured["demand"])

            try:
                run.wait(on_progress=show, on_poll=poll)
            except BaseException:  # a failure or Ctrl-C: the autoscaler request outlives the job, nodes would stay up
                fleet.withdraw_resource_request()
                raise
            bar.close()
            placement = fleet.placement()
            run.stop_workers()
            policy_stats = fleet.stop()
        else:
            policy_stats, placement = {}, {}
        files = run.write_tables(run_dir)
        results = run.collected()
        rows = success_table.task_rows(results)
        tables = {}
        for stem in dict.fromkeys(layout.stem for layout in layouts):
            tables[stem] = [layout.table(results) for layout in layouts if layout.stem == stem]
            files.update({f"{stem}_{kind}": path for kind, path in
                          robustness_table.write(run_dir, stem, tables[stem]).items()})
        demand = demand_chunks_per_s(results)
        scaling = None
        if fleet:
            scaling = fleet.decision.as_dict() if fleet.decision else fixed_scaling(fleet_config, policy_stats,
                                                                                   demand, missing, args.max_batch)
        summary = {"run_id": run_id, "run_dir": str(run_dir), "episodes": len(results),
                   "suites": success_table.suite_rates(rows), "policy_server": policy_stats,
                   "policy_servers": {str(i): v for i, v in fleet.server_stats.items()} if fleet else {},
                   "worker_demand_chunks_per_s": demand, "scaling": scaling,
                   "restarts": fleet.restarts if fleet else {}, "placement": placement,
                   "seconds": time.monotonic() - start,
                   "files": {k: str(v) for k, v in files.items()}}
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
        print(success_table.terminal(rows))
        print(serving_report(policy_stats, scaling, demand))
        for table in (t for ts in tables.values() for t in ts):
            print("\n" + robustness_table.markdown(table))
        if args.wandb != "off":
            log_to_wandb(args.wandb, run_dir, run_id, args, rows, results, [t for ts in tables.values() for t in ts])
        log.info("outputs: %s", run_dir)
        return summary
    finally:
        session.close()


if __name__ == "__main__":
    main()
