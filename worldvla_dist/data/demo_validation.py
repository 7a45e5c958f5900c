"""Checks of LIBERO demo files from hdf5 metadata (shapes, dtypes, names, attributes): no image is read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from worldvla_dist.errors import WorldVLAError

ACTION_DIM = 7  # xyz, axis-angle rotation, gripper
IMAGE_KEYS = ("obs/agentview_rgb", "obs/eye_in_hand_rgb")
PROPRIO_KEYS = ("ee_pos", "ee_ori", "ee_states", "gripper_states", "joint_states")
# per-step datasets besides actions and images: (key, required, ndim)
STEP_KEYS = (("states", True, 2), ("rewards", True, 1), ("dones", True, 1), ("robot_states", False, 2),
             *((f"obs/{k}", False, None) for k in PROPRIO_KEYS))


class LiberoDataError(WorldVLAError, ValueError):
    """A demonstration file is unreadable or malformed, or lacks a key the format requires."""


def text_attr(value: Any) -> str:
    """An hdf5 string attribute, stored variable-length (str) or fixed-length (bytes)."""
    return value.decode() if isinstance(value, (bytes, np.bytes_)) else str(value)


def json_attr(path: Path, data: h5py.Group, key: str, default: str | None = None) -> dict[str, Any]:
    """`data.attrs[key]` parsed as a JSON object."""
    raw = text_attr(data.attrs.get(key, default))
    try:
        value = json.loads(raw)
    except ValueError as e:
        raise LiberoDataError(f"{path}: data attribute '{key}' is not JSON ({e}): {raw[:80]!r}") from e
    if not isinstance(value, dict):
        raise LiberoDataError(f"{path}: data attribute '{key}' should be a JSON object, got {type(value).__name__}")
    return value


def demo_names(path: Path, data: h5py.Group) -> list[str]:
    """data/demo_<i> groups in numeric order (demo_2 before demo_10; gaps allowed)."""
    names = [k for k in data.keys() if k.startswith("demo_")]
    for name in names:
        if not name.removeprefix("demo_").isdigit():
            raise LiberoDataError(f"{path}: /data/{name}: expected demo groups named demo_<integer>, got {name!r}")
        if not isinstance(data[name], h5py.Group):
            raise LiberoDataError(f"{path}: /data/{name} should be a group of datasets, "
                                  f"got a {type(data[name]).__name__}")
    return sorted(names, key=lambda k: int(k.removeprefix("demo_")))


def check_demo(path: Path, ep: h5py.Group) -> int:
    """Number of steps T of one demo, once every dataset's shape and dtype fit it: actions (T, 7)
    float, images (T, H, W, 3) uint8, one state / reward / done / proprio row per action."""
    where = f"{path}: {ep.name}"

    def dataset(key: str, required: bool = True) -> h5py.Dataset | None:
        if key not in ep:
            if required:
                raise LiberoDataError(f"{where} is missing key '{key}'")
            return None
        if not isinstance(ep[key], h5py.Dataset):
            raise LiberoDataError(f"{where}/{key} should be a dataset, got a {type(ep[key]).__name__}")
        return ep[key]

    actions = dataset("actions")
    if len(actions.shape) != 2 or actions.shape[1] != ACTION_DIM or actions.dtype.kind != "f":
        raise LiberoDataError(f"{where}/actions: expected (T, {ACTION_DIM}) float, got {actions.shape} {actions.dtype}")
    steps = actions.shape[0]
    if steps == 0:
        raise LiberoDataError(f"{where}: 0 steps (actions {actions.shape}); a demo needs at least one")
    for key in IMAGE_KEYS:
        images = dataset(key, required=key == "obs/agentview_rgb")
        if images is None:
            continue
        if len(images.shape) != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            hint = " (channels first?)" if len(images.shape) == 4 and images.shape[1] == 3 else ""
            raise LiberoDataError(f"{where}/{key}: expected ({steps}, H, W, 3) uint8, "
                                  f"got {images.shape} {images.dtype}{hint}")
        if images.shape[0] != steps:
            raise LiberoDataError(f"{where}/{key}: {images.shape[0]} frames, expected one per action ({steps})")
    for key, required, ndim in STEP_KEYS:
        values = dataset(key, required)
        if values is None:
            continue
        if ndim is not None and len(values.shape) != ndim:
            raise LiberoDataError(f"{where}/{key}: expected {ndim}-D ({steps}{', D' if ndim == 2 else ''}), "
                                  f"got {values.shape}")
        if len(values.shape) == 0 or values.shape[0] != steps:
            raise LiberoDataError(f"{where}/{key}: {values.shape[0] if values.shape else 0} rows ({values.shape}), "
                                  f"expected one per action ({steps})")
    return steps
