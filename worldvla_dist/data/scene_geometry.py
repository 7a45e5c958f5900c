"""Where things are in a LIBERO scene, from its collision geometry: bounding boxes (world and
object frame) and which bodies belong to an object."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_CORNER_SIGNS = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)])


@dataclass
class Box:
    """Axis-aligned world bounds of an object's collision geoms."""

    lo: np.ndarray
    hi: np.ndarray

    def reach(self, direction: np.ndarray) -> float:
        """How far the box extends along `direction` (its furthest corner's projection)."""
        corners = (self.lo + self.hi) / 2 + _CORNER_SIGNS * (self.hi - self.lo) / 2
        return float((corners @ direction).max())

    @property
    def center(self) -> np.ndarray:
        return (self.lo + self.hi) / 2

    @property
    def size(self) -> np.ndarray:
        return self.hi - self.lo


def subtree_bodies(model, root: int) -> set[int]:
    bodies = {root}
    for b in range(model.nbody):
        parent = b
        while parent not in bodies and parent != 0:
            parent = model.body_parentid[parent]
        if parent in bodies:
            bodies.add(b)
    return bodies


def geom_corners(sim, body_id: int, per_geom: bool = False, subtree: bool = True):
    """World corners of the local AABBs of the collision geoms of a body (and its children when
    `subtree`): one (N, 3) array, or a list of (8, 3) arrays when `per_geom`."""
    model, data = sim.model, sim.data
    bodies = subtree_bodies(model, body_id) if subtree else {body_id}
    corners = []
    for g in range(model.ngeom):
        if model.geom_bodyid[g] not in bodies or (model.geom_contype[g] == 0 and model.geom_conaffinity[g] == 0):
            continue
        local = model.geom_aabb[g][:3] + _CORNER_SIGNS * model.geom_aabb[g][3:]
        corners.append(data.geom_xpos[g] + local @ data.geom_xmat[g].reshape(3, 3).T)
    if per_geom:
        return corners
    return np.concatenate(corners) if corners else data.body_xpos[body_id][None].copy()


def body_frame_box(sim, body_id: int) -> Box:
    """Bounds of the object's collision geoms in its own body frame (unchanged when it tilts)."""
    rot = sim.data.body_xmat[body_id].reshape(3, 3)
    local = (geom_corners(sim, body_id) - sim.data.body_xpos[body_id]) @ rot
    return Box(local.min(0), local.max(0))


def object_box(sim, body_id: int) -> Box:
    """World AABB over the collision geoms of a body and its children."""
    pts = geom_corners(sim, body_id)
    if len(pts) == 1:
        return Box(pts[0] - 0.02, pts[0] + 0.02)
    return Box(pts.min(0), pts.max(0))
