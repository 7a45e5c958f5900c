"""The main job: train WorldVLA (DeepSpeed on Ray Train) while evaluation rounds run on the weights
it publishes (SimWorkers + PolicyServer over Redis).

    ray job submit --working-dir . -- python jobs/train_joint.py --config configs/tiny_cpu.yaml --run-dir /abs/runs/r1
    python jobs/train_joint.py --config configs/tiny_cpu.yaml

The learner checkpoints every `save_every` steps and publishes weights every `publish_every` steps
(exported to <run dir>/exports/v<step>/, version recorded in Redis). A PolicyServer starts on the
first export; an evaluation round (trials per task on the configured suites) starts on each
`every_versions`-th version when the previous round is done, and the last version always gets one.
A round first puts the PolicyServers on its version (the registry serves it) and only then queues its
episodes, so every episode of round v<step> runs on those weights while the learner goes on.
Re-running with the same --run-dir resumes: the learner from its last checkpoint, finished rounds
from Redis' append-only file in the run folder.

Outputs in the run folder: summary.json, rounds.md (success per task per round), loss.png,
success_rounds.png, metrics.jsonl, eval/ tables per round, exports/.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import ray
from tqdm import tqdm

from actors.eval_fleet import EvalFleet, FleetConfig, default_num_workers
from actors.job_session import JobSession
from actors.learner import launch_learner
from actors.weight_registry import get_or_create_registry, version_key
from worldvla_dist.config import load_yaml, to_dict
from worldvla_dist.evaluation import success_table
from worldvla_dist.evaluation.episode_worker import EpisodeWorkerConfig
from worldvla_dist.evaluation.eval_run import EvalRun, plan_episodes
from worldvla_dist.metrics.training_plots import plot_losses, plot_success_rounds
from worldvla_dist.model.checkpoint import load_checkpoint
from worldvla_dist.runtime.metrics_stream import MetricsStream
from worldvla_dist.serving.policy_service import PolicyServiceConfig
from worldvla_dist.training.joint_config import JointJobConfig

log = logging.getLogger("train_joint")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, type=Path)
    p.add_argument("--run-dir", type=Path, default=None, help="overrides train.run_dir; re-use to resume")
    p.add_argument("--steps", type=int, default=None, help="overrides train.steps")
    p.add_argument("--redis-url", default=os.environ.get("WORLDVLA_REDIS_URL"))
    p.add_argument("--address", default=None, help="Ray address (default: RAY_ADDRESS or a local Ray)")
    p.add_argument("--num-cpus", type=int, default=None, help="local Ray only")
    return p.parse_args(argv)


def serve_round_version(registry, fleet: EvalFleet, version: int, export: Path, timeout_s: float = 600.0) -> None:
    """Makes the registry serve `version` and waits until the PolicyServers do: the round's episodes
    then run on its weights only, however far the learner gets meanwhile. A version the registry no
    longer holds (a resumed run's registry, a learner far ahead) is read from its export folder."""
    if not ray.get(registry.serve.remote(version)):
        model, _ = load_checkpoint(export)
        ray.get(registry.serve.remote(version, model.chameleon.state_dict()))
    if not fleet.wait_for_version(version, timeout_s):
        log.warning("PolicyServers not on version %d after %.0f s; the round starts anyway (episodes record the "
                    "versions that answered them)", version, timeout_s)


class Rounds:
    """Evaluation rounds, one at a time, each on one published weight version."""

    def __init__(self, client, config: JointJobConfig, run_id: str, run_dir: Path):
        self.client, self.config, self.run_dir = client, config, run_dir
        self.worker = EpisodeWorkerConfig(run_id=f"{run_id}-eval", video_dir=str(run_dir / "videos") if config.eval.videos else None)
        self.current: tuple[int, EvalRun] | None = None
        self.finished: dict[int, list] = {}
        self.seen_versions: list[int] = []

    def want(self, version: int, last: bool) -> bool:
        index = len(self.seen_versions)
        return last or index % self.config.eval.every_versions == 0

    def offer(self, version: int, final_version: int, serve: Callable[[int], None]) -> None:
        """Starts a round on `version` if one is due; `serve(version)` first puts every PolicyServer on it."""
        if version in self.seen_versions or self.current is not None:
            return
        if not self.want(version, version == final_version):
            self.seen_versions.append(version)
            return
        serve(version)
        self.seen_versions.append(version)
        e = self.config.eval
        specs = plan_episodes(e.suites, e.tasks, e.trials, weight_version=version, max_steps=e.max_steps, video=e.videos,
                              first_trial=e.first_trial)
        run = EvalRun(self.client, self.worker, specs)
        missing = run.enqueue_missing()
        log.info("evaluation round on version %d: %d episodes (%d to run)", version, len(specs), missing)
        self.current = (version, run)

    def poll(self, wandb_run=None) -> str:
        if self.current is None:
            return ""
        version, run = self.current
        p = run.progress()
        if p.done >= p.total:
            self.finished[version] = run.collected()
            if wandb_run is not None:
                import wandb

                rows = success_table.task_rows(self.finished[version])
                wandb_run.log({f"success/{k}": v for k, v in success_table.suite_rates(rows).items()} |
                              {f"video/v{version}/{r.suite}/task{r.task}": wandb.Video(r.video, format="mp4")
                               for r in self.finished[version] if r.video})
            run.write_tables(self.run_dir / "eval" / f"v{version:06d}")
            self.current = None
            rows = success_table.task_rows(self.finished[version])
            log.info("round v%d done\n%s", version, success_table.terminal(rows))
            mixed = [r for r in self.finished[version] if r.weight_versions and r.weight_versions != [version]]
            if mixed:
                log.warning("round v%d: %d episode(s) answered by other weights too: %s", version, len(mixed),
                            ", ".join(f"{r.suite}/{r.task}/{r.trial}: {r.weight_versions}" for r in mixed[:5]))
        return f"v{version} {p.done}/{p.total} SR {100 * p.success_rate:.0f}%"

    def table(self) -> str:
        versions = sorted(self.finished)
        per_round = {v: {f"{r.suite}/{r.task}": r for r in success_table.task_rows(self.finished[v])} for v in versions}
        tasks = sorted({t for rows in per_round.values() for t in rows})
        lines = ["| task | " + " | ".join(f"v{v}" for v in versions) + " |", "|---|" + "---|" * len(versions)]
        for t in tasks:
            cells = []
            for v in versions:
                row = per_round[v].get(t)
                cells.append("-" if row is None or row.rate is None else
                             f"{100 * row.rate:.0f}% ({row.successes}/{row.successes + row.failures}"
                             f"{f', {row.errors} err' if row.errors else ''})")
            lines.append(f"| {t} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def rates(self) -> dict[int, dict[str, float | None]]:
        return {v: {f"{r.suite}/{r.task}": r.rate for r in success_table.task_rows(res)} for v, res in self.finished.items()}


def main(argv=None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = load_yaml(JointJobConfig, args.config)
    train = config.train
    if args.run_dir:
        train = replace(train, run_dir=str(args.run_dir))
    if args.steps:
        train = replace(train, steps=args.steps)
    run_dir = Path(train.run_dir).resolve()
    train = replace(train, run_dir=str(run_dir))
    config = replace(config, train=train)
    run_id = run_dir.name
    session = JobSession.open(run_dir, args.redis_url, args.address, args.num_cpus)
    client, redis_url = session.client, session.redis_url
    (run_dir / "config.json").write_text(json.dumps(to_dict(config), indent=1))
    fleet = None
    try:
        res = config.resources
        has_gpu = session.has_gpu
        registry = get_or_create_registry(redis_url, run_id)
        metrics = MetricsStream(client, f"train:{run_id}:metrics")
        learner_error: list[BaseException] = []

        def learn():
            try:
                launch_learner(train, num_workers=res.learner_workers, use_gpu=has_gpu, redis_url=redis_url,
                               run_id=run_id, cpus_per_worker=res.learner_cpus)
            except BaseException as e:  # reported by the driver loop
                learner_error.append(e)

        learner = threading.Thread(target=learn, name="learner", daemon=True)
        learner.start()
        rounds = Rounds(client, config, run_id, run_dir)
        history: list[dict] = []
        bar = tqdm(total=train.steps, desc="train", unit="step")
        wandb_run = None
        if config.wandb != "off":
            import wandb

            wandb_run = wandb.init(project="worldvla-dist", name=run_id, dir=str(run_dir), mode=config.wandb,
                                   config=to_dict(config), resume="allow", id=run_id)
        while True:
            for record in metrics.read_new():
                history.append(record)
                bar.update(max(0, record["step"] - bar.n))
                bar.set_postfix(L_action=f"{record['action_ce']:.3f}", L_world=f"{record['world_ce']:.3f}",
                                tok_s=f"{record['tokens'] * record['world_size'] / record['seconds']:.0f}", refresh=False)
                if wandb_run:
                    wandb_run.log({"L_action": record["action_ce"], "L_world": record["world_ce"], "loss": record["loss"],
                                   "tokens_per_s": record["tokens"] * record["world_size"] / record["seconds"],
                                   "lr": record["lr"]}, step=record["step"])
            raw = client.get(version_key(run_id))
            version = int(raw) if raw is not None else None
            if version is not None and fleet is None:
                fleet = EvalFleet(redis_url, FleetConfig(
                    checkpoint=str(run_dir / "exports" / f"v{version:06d}"), weight_version=version,
                    follow_run_id=run_id, num_workers=res.sim_workers or default_num_workers(
                        res.policy_cpus + res.learner_cpus * res.learner_workers),
                    policy_cpus=res.policy_cpus, policy_gpus=res.policy_gpus if res.policy_gpus is not None else float(has_gpu),
                    policy_torch_threads=res.policy_torch_threads, worker_cpus=res.sim_cpus,
                    max_workers=res.max_sim_workers, episodes_per_worker=res.episodes_per_sim_worker),
                    rounds.worker, PolicyServiceConfig(queue=f"eval:{run_id}:policy")).start()
            if version is not None:
                rounds.offer(version, train.steps, lambda v: serve_round_version(
                    registry, fleet, v, run_dir / "exports" / f"v{v:06d}"))
            status = rounds.poll(wandb_run)
            if status:
                bar.set_description(f"train | eval {status}", refresh=False)
            if fleet:
                fleet.supervise()
                if rounds.current is not None:
                    fleet.scale_to_queue(rounds.current[1].queue.depth())
            if learner_error:
                raise RuntimeError(f"the learner failed: {learner_error[0]}") from learner_error[0]
            finished = not learner.is_alive() and rounds.current is None and train.steps in rounds.finished
            if finished:
                break
            time.sleep(0.5)
        bar.close()
        if fleet:
            client.set(f"eval:{rounds.worker.run_id}:stop", 1)
            fleet.stop()
        ray.kill(registry)

        history.sort(key=lambda r: r["step"])
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
        plots = {"loss": str(plot_losses(history, run_dir / "loss.png")) if history else None,
                 "success": str(plot_success_rounds(rounds.rates(), run_dir / "success_rounds.png"))}
        table = rounds.table()
        (run_dir / "rounds.md").write_text(table + "\n")
        last = history[-1] if history else {}
        summary = {"run_dir": str(run_dir), "steps": last.get("step"), "final_L_action": last.get("action_ce"),
                   "final_L_world": last.get("world_ce"), "rounds": {str(v): success_table.suite_rates(
                       success_table.task_rows(r)) for v, r in rounds.finished.items()}, "plots": plots}
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
        if wandb_run:
            import wandb

            wandb_run.log({"success_per_round": wandb.Table(
                columns=["version", "task", "success_rate"],
                data=[[v, t, r] for v, rs in rounds.rates().items() for t, r in rs.items()])})
            wandb_run.finish()
        print("success per task per round (weight version = learner step)\n" + table)
        log.info("outputs: %s", run_dir)
        return summary
    finally:
        session.close()


if __name__ == "__main__":
    main()
