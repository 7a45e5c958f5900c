"""Imagined rollouts of the world model at scale: rollout specs on a Redis stream, W ImaginationWorkers
imagining B rollouts side by side each, every result written once.

    ray job submit --working-dir . -- python jobs/imagine.py --checkpoint /abs/ckpt --demos /abs/demos \\
        --mode replay --horizon 50 --rollouts 1000
    python jobs/imagine.py --checkpoint runs/demo-X/exports/v000300 --demos data/demo-cache/demos --horizon 10

replay: from a real frame of a validation trajectory, the recorded actions drive the world model.
dream: the policy and the world model take turns from a real frame.

Outputs land in <out>/imagine-<run id>/: results.md / .csv / .json (FVD / PSNR / SSIM / LPIPS at 10 and
50 frames, the model next to copying the last real frame; FVD needs --i3d, LPIPS --lpips-backbone and
--lpips-linear, all local files), rollouts.jsonl, strips/*.mp4 (real | imagined), contact_sheet.png.
Re-running with the same --run-id imagines only the rollouts without a result.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path

import ray
from tqdm import tqdm

from actors.imagination_worker import ImaginationWorker
from actors.job_session import JobSession
from actors.supervisor import ServeSupervisor
from worldvla_dist.imagination.imagination_worker import ImaginationWorkerConfig
from worldvla_dist.imagination.imagine_run import ImagineRun
from worldvla_dist.imagination.scoring import CLIP_LENGTHS, ScoringConfig
from worldvla_dist.imagination.specs import MODES, plan_rollouts
from worldvla_dist.model.checkpoint import check_model_files

log = logging.getLogger("imagine")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="our model folder, or a reference WorldVLA folder "
                                                       "(then also --tokenizer-dir and --preset)")
    p.add_argument("--tokenizer-dir", default=None)
    p.add_argument("--preset", default=None, help="worldvla-256 / worldvla-512 for reference checkpoints")
    p.add_argument("--demos", required=True, type=Path, help="folder of LIBERO *_demo.hdf5 files (ours or official)")
    p.add_argument("--split", choices=["validation", "all"], default="validation",
                   help="trajectories to start from (the held-out side of our stable split by default)")
    p.add_argument("--mode", choices=MODES, default="replay")
    p.add_argument("--horizon", type=int, default=50, help="frames per rollout")
    p.add_argument("--rollouts", type=int, default=100)
    p.add_argument("--workers", type=int, default=None, help="ImaginationWorkers (default: the cluster's CPUs)")
    p.add_argument("--worker-gpus", type=float, default=None, help="GPUs per worker (default: 1 if the cluster has any)")
    p.add_argument("--batch", type=int, default=8, help="rollouts each worker imagines side by side")
    p.add_argument("--torch-threads", type=int, default=None)
    p.add_argument("--videos", type=int, default=8, help="rollouts that get a real | imagined mp4 strip")
    p.add_argument("--chunk", type=int, default=None, help="dream: actions per policy call (default: the suite's)")
    p.add_argument("--temperature", type=float, default=0.0, help="0: greedy")
    p.add_argument("--weight-version", type=int, default=0, help="the version of --checkpoint, recorded in results")
    p.add_argument("--follow-run-id", default=None,
                   help="a training run whose published weights the workers take between batches")
    p.add_argument("--lpips-backbone", default=None, help="torchvision AlexNet state dict (local file)")
    p.add_argument("--lpips-linear", default=None, help="lpips v0.1 alex.pth linear weights (local file)")
    p.add_argument("--i3d", default=None, help="I3D TorchScript file for FVD (local file)")
    p.add_argument("--run-id", default=None, help="re-use to resume (default: a new time-stamped id)")
    p.add_argument("--out", type=Path, default=Path("runs"))
    p.add_argument("--redis-url", default=os.environ.get("WORLDVLA_REDIS_URL"),
                   help="an existing Redis (default: start an embedded redis-server)")
    p.add_argument("--address", default=None, help="Ray address (default: RAY_ADDRESS or a local Ray)")
    p.add_argument("--num-cpus", type=int, default=None, help="local Ray only")
    p.add_argument("--reclaim-after", type=float, default=120.0,
                   help="seconds before a dead worker's rollouts are taken over")
    p.add_argument("--max-restarts", type=int, default=5,
                   help="restarts per worker before the job gives up with the worker's error")
    p.add_argument("--wandb", choices=["off", "offline", "online"], default="off")
    args = p.parse_args(argv)
    if args.horizon < 1 or args.rollouts < 1 or args.batch < 1:
        p.error("--horizon, --rollouts and --batch must be >= 1")
    return args


def table_lengths(horizon: int) -> tuple[int, ...]:
    """The paper's 10 and 50 frames where the horizon reaches them, else the horizon itself."""
    return tuple(n for n in CLIP_LENGTHS if n <= horizon) or (horizon,)


def log_to_wandb(mode: str, run_dir: Path, run_id: str, args: argparse.Namespace, files: dict, results) -> None:
    import wandb

    run = wandb.init(project="worldvla-dist", name=f"imagine-{run_id}", dir=str(run_dir), mode=mode,
                     config={k: str(v) for k, v in vars(args).items()})
    rows = json.loads(Path(files["json"]).read_text())
    run.log({"world_model_table": wandb.Table(columns=list(rows[0]), data=[list(r.values()) for r in rows])})
    if "contact_sheet" in files:
        run.log({"contact_sheet": wandb.Image(str(files["contact_sheet"]))})
    for r in results:
        if r.video:
            run.log({f"strip/{Path(r.video).stem}": wandb.Video(r.video, format="mp4")})
    run.finish()


def main(argv=None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run_id = args.run_id or time.strftime("%Y%m%d-%H%M%S")
    run_dir = (args.out / f"imagine-{run_id}").resolve()
    specs, used = plan_rollouts(args.demos, args.rollouts, args.horizon, args.mode, args.videos, args.split)
    if used != args.split:
        log.warning("no validation trajectory is longer than %d steps: starting from training trajectories",
                    args.horizon)
    lengths = table_lengths(args.horizon)
    check_model_files(args.checkpoint)  # before any actor: a wrong path fails now, not after 6 restarts
    session = JobSession.open(run_dir, args.redis_url, args.address, args.num_cpus)
    client, redis_url = session.client, session.redis_url
    supervisor = None
    try:
        gpus = args.worker_gpus if args.worker_gpus is not None else (1.0 if session.has_gpu else 0.0)
        workers = args.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        worker = ImaginationWorkerConfig(run_id=run_id, batch=args.batch, chunk=args.chunk,
                                         temperature=args.temperature, reclaim_after_s=args.reclaim_after,
                                         video_dir=str(run_dir / "strips"))
        scoring = ScoringConfig(lpips_backbone=args.lpips_backbone, lpips_linear=args.lpips_linear, i3d=args.i3d,
                                clip_lengths=lengths)
        run = ImagineRun(client, worker, specs)
        missing = run.enqueue_missing()
        log.info("run %s: %d rollouts of %d frames (%s), %d already done; %d workers x batch %d on %s", run_id,
                 len(specs), args.horizon, args.mode, len(specs) - missing, workers, args.batch,
                 "GPU" if gpus else "CPU")
        start = time.monotonic()
        if missing:
            supervisor = ServeSupervisor(args.max_restarts)
            checkpoint = str(Path(args.checkpoint).resolve())
            for i in range(workers):
                supervisor.launch("imagine", i, lambda i=i: ImaginationWorker.options(num_cpus=1, num_gpus=gpus).remote(
                    redis_url, checkpoint, asdict(worker), asdict(scoring), args.tokenizer_dir, args.preset,
                    args.torch_threads, args.weight_version, args.follow_run_id, name=f"imagine-{i}"))
            first = run.progress()
            bar = tqdm(total=len(specs), initial=first.done, desc="rollouts", unit="rollout")

            def show(p):
                bar.update(p.done - bar.n)
                bar.set_postfix(errors=p.errors, frames_per_s=f"{(p.frames - first.frames) / (time.monotonic() - start):.2f}",
                                refresh=False)

            try:
                run.wait(on_progress=show, on_poll=supervisor.supervise)
            finally:  # also when the workers keep dying: stop and reap them before the error goes up
                bar.close()
                run.stop_workers()
                worker_stats = list(supervisor.finish().values())
        else:
            worker_stats = []
        files = run.write_outputs(run_dir, lengths)
        results = run.collected()
        summary = {"run_id": run_id, "run_dir": str(run_dir), "mode": args.mode, "horizon": args.horizon,
                   "rollouts": len(results), "errors": sum(bool(r.error) for r in results), "start_split": used,
                   "workers": worker_stats, "restarts": supervisor.restarts if supervisor else {},
                   "seconds": time.monotonic() - start, "files": {k: str(v) for k, v in files.items()}}
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
        print(files["markdown"].read_text())
        if args.wandb != "off":
            log_to_wandb(args.wandb, run_dir, run_id, args, files, results)
        log.info("outputs: %s", run_dir)
        return summary
    finally:
        session.close()


if __name__ == "__main__":
    main()
