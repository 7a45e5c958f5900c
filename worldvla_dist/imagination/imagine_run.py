"""The driver's side of an imagination run, without Ray (`WorkRun`: enqueue the rollouts without a
result, so a re-run with the same run id resumes; dead letters become error results), with frames
imagined as progress, and the output files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import redis

from worldvla_dist.imagination import report
from worldvla_dist.imagination.imagination_worker import ImagineChannels, ImaginationWorkerConfig
from worldvla_dist.imagination.specs import RolloutResult, RolloutSpec
from worldvla_dist.runtime.result_store import ResultStore
from worldvla_dist.runtime.work_queue import WorkQueue
from worldvla_dist.runtime.work_run import WorkRun


@dataclass
class ImagineProgress:
    done: int
    total: int
    errors: int
    frames: int  # imagined so far by the finished rollouts


class ImagineRun(WorkRun[RolloutSpec, RolloutResult]):
    def __init__(self, client: redis.Redis, worker_config: ImaginationWorkerConfig, specs: list[RolloutSpec]):
        self.channels = ImagineChannels(worker_config.run_id)
        super().__init__(client, WorkQueue(client, worker_config.queue_config()),
                         ResultStore(client, self.channels.results), self.channels.stop_key, specs)

    def parse_spec(self, payload: dict) -> RolloutSpec:
        return RolloutSpec.from_payload(payload)

    def parse_result(self, payload: dict) -> RolloutResult:
        return RolloutResult.from_payload(payload)

    def error_payload(self, spec: RolloutSpec, reason: str) -> dict:
        return RolloutResult(spec.key, spec.mode, spec.horizon, -1, error=reason).to_payload()

    def progress(self) -> ImagineProgress:
        done = list(self.results_so_far().values())
        return ImagineProgress(len(done), len(self.specs), sum(bool(r.error) for r in done),
                               sum(r.horizon for r in done if not r.error))

    def write_outputs(self, out_dir: str | Path, lengths: tuple[int, ...]) -> dict[str, Path]:
        """results.md / .csv / .json (the paper's table), rollouts.jsonl (per rollout means and
        errors), contact_sheet.png (rollouts with kept frames)."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        results = self.collected()
        rows = report.table_rows(results, lengths)
        files = {"markdown": out_dir / "results.md", "csv": out_dir / "results.csv", "json": out_dir / "results.json",
                 "rollouts": out_dir / "rollouts.jsonl"}
        files["markdown"].write_text(report.markdown(rows) + "\n")
        files["csv"].write_text(report.to_csv(rows))
        files["json"].write_text(report.to_json(rows))
        files["rollouts"].write_text("".join(json.dumps(_summary(r)) + "\n" for r in results))
        sheet = report.contact_sheet(results, out_dir / "contact_sheet.png")
        if sheet:
            files["contact_sheet"] = sheet
        return files


def _summary(r: RolloutResult) -> dict:
    return {"key": r.key, "mode": r.mode, "horizon": r.horizon, "weight_version": r.weight_version, "error": r.error,
            "worker": r.worker, "seconds": r.seconds, "video": r.video,
            **{k: float(v.mean()) for k, v in r.scores.items()}}
