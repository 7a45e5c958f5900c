"""Pre-tokenised samples on disk: one msgpack shard per demo file (length-prefixed records), and an
index that says what each shard holds. Training reads these instead of images. Shards and indexes
written before the split had val_ind / val_ood read back with their "val" as "val_ind"."""

from __future__ import annotations

import json
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from worldvla_dist.data.split import SPLITS, TRAIN, VAL_IND, VAL_OOD
from worldvla_dist.errors import WorldVLAError
from worldvla_dist.runtime.codec import pack, unpack
from worldvla_dist.sequences.samples import TokenSample

INDEX_JSON = "index.json"
_LEN = struct.Struct("<I")
RECORD_FIELDS = ("kind", "input_ids", "labels", "split", "trajectory")
LEGACY_SPLIT = "val"  # the one held-out tag of shards written before val_ind / val_ood: our stable side


@dataclass(frozen=True)
class ShardEntry:
    file: str  # relative to the shard folder
    task: str
    num_action: int
    num_world: int
    num_val_ind: int  # samples of held-out trajectories of trained tasks
    num_val_ood: int  # samples of held-out tasks (the reference split only)


@dataclass
class ShardRecord:
    sample: TokenSample
    split: str  # "train", "val_ind" or "val_ood" (worldvla_dist.data.split)
    trajectory: str  # split.trajectory_key: <suite>/<task>/<demo>


def write_shard(path: str | Path, records: Iterable[ShardRecord]) -> tuple[int, int, int, int]:
    """Writes records atomically; returns (action, world, val_ind, val_ood) sample counts."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".partial")
    counts = dict.fromkeys(("action", "world", *SPLITS), 0)
    with tmp.open("wb") as f:
        for r in records:
            if r.split not in SPLITS:
                raise WorldVLAError(f"write_shard {path}: split must be one of {SPLITS}, got {r.split!r}")
            blob = pack({"kind": r.sample.kind, "input_ids": r.sample.input_ids.astype(np.int32),
                         "labels": r.sample.labels.astype(np.int32), "split": r.split, "trajectory": r.trajectory})
            f.write(_LEN.pack(len(blob)))
            f.write(blob)
            counts[r.sample.kind] += 1
            counts[r.split] += 1
    tmp.replace(path)
    return counts["action"], counts["world"], counts[VAL_IND], counts[VAL_OOD]


def read_shard(path: str | Path) -> Iterator[ShardRecord]:
    path = Path(path)
    with path.open("rb") as f:
        while header := f.read(_LEN.size):
            (size,) = _LEN.unpack(header)
            blob = f.read(size)
            if len(blob) != size:
                raise WorldVLAError(f"{path}: truncated record ({len(blob)} of {size} bytes)")
            m = unpack(blob, RECORD_FIELDS)
            sample = TokenSample(m["input_ids"].astype(np.int64), m["labels"].astype(np.int64), m["kind"])
            yield ShardRecord(sample, VAL_IND if m["split"] == LEGACY_SPLIT else m["split"], m["trajectory"])


def write_index(folder: str | Path, entries: list[ShardEntry]) -> Path:
    path = Path(folder) / INDEX_JSON
    path.write_text(json.dumps({"shards": [asdict(e) for e in sorted(entries, key=lambda e: e.file)]}, indent=1))
    return path


def read_index(folder: str | Path) -> list[ShardEntry]:
    path = Path(folder) / INDEX_JSON
    if not path.is_file():
        raise WorldVLAError(f"{folder}: no {INDEX_JSON}; run jobs/prepare_data.py first")
    entries = json.loads(path.read_text())["shards"]
    for e in entries:
        if "num_val" in e:  # an index written before val_ind / val_ood
            e.update(num_val_ind=e.pop("num_val"), num_val_ood=0)
    return [ShardEntry(**e) for e in entries]


def load_samples(folder: str | Path, split: str = TRAIN) -> tuple[list[TokenSample], list[TokenSample]]:
    """All (action, world) samples of one split ("train", "val_ind" or "val_ood") from a shard folder."""
    if split not in SPLITS:
        raise WorldVLAError(f"load_samples: split must be one of {SPLITS}, got {split!r}")
    actions, worlds = [], []
    for entry in read_index(folder):
        for r in read_shard(Path(folder) / entry.file):
            if r.split == split:
                (actions if r.sample.kind == "action" else worlds).append(r.sample)
    return actions, worlds
