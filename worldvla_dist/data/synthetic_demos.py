"""LIBERO demo files in the official layout with random frames and actions: for benchmarks and tests
of jobs that only read trajectories (imagination), where simulating them would cost minutes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from worldvla_dist.data.libero_hdf5 import Demo, DemoFileInfo, write_demo_file


def write_random_demo_files(folder: str | Path, files: int = 2, demos: int = 3, steps: int = 12, size: int = 128,
                            suite: str = "libero_object", seed: int = 0) -> list[Path]:
    """`files` demo files of `demos` trajectories of `steps` (size x size) frames under `folder/suite/`."""
    rng = np.random.default_rng(seed)
    paths = []
    for f in range(files):
        info = DemoFileInfo(language_instruction=f"pick up object {f} and place it in the basket",
                            problem_name="libero_tabletop_manipulation", bddl_file_name=f"{suite}/task_{f}.bddl")
        trajectories = [Demo(actions=rng.uniform(-1, 1, (steps, 7)), states=rng.normal(size=(steps, 9)),
                             agentview=rng.integers(0, 256, (steps, size, size, 3), dtype=np.uint8))
                        for _ in range(demos)]
        paths.append(write_demo_file(Path(folder) / suite / f"task_{f}_demo.hdf5", info, trajectories))
    return paths
