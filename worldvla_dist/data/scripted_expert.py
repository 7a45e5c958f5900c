"""A scripted expert for LIBERO: reads the task's goal predicates and object poses from the simulator
and drives the end effector through waypoints (OSC delta-pose actions), so demonstrations can be
generated here instead of downloaded.

Skills, one per goal predicate: pick-and-place (`on`, `in`; bowls by the rim, flat plates pushed),
drawers (`open`, `close`, by the handle with the hand turned sideways), knobs (`turnon`). The hand
points down and turns about z only, except where a skill turns it sideways. An object that has left
the hand by the end of the lift or the carry is picked up again (a bowl from another rim side). The
file is long (~570 lines) because the skills share the scene queries and the waypoint controller;
scene geometry lives in `scene_geometry.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from worldvla_dist.data.scene_geometry import Box, body_frame_box, geom_corners, object_box, subtree_bodies
from worldvla_dist.envs.libero_env import LiberoEnv

OPEN, CLOSE = -1.0, 1.0
POS_PER_UNIT = 0.05  # OSC_POSE: an action of 1.0 asks for 5 cm
ROT_PER_UNIT = 0.5  # and 0.5 rad
GAIN = 1.6  # proportional gain on the position error, in action units per POS_PER_UNIT
HOVER = 0.10  # metres above an object's top before descending onto it
STALL_STEPS = 10  # a waypoint whose error stops shrinking for this many steps is taken as reached
TILTED = 0.996  # cos(5 deg): an approach axis further than this from straight down is straightened
RELEASE_GAP = 0.03  # metres between a held object's bottom and the surface when it is let go
REGRASPS = 2  # times an object that left the hand (a lift that lost it, a drop on the way) is picked again
HELD_MARGIN = 0.02  # metres: the fingertips within this of the object's box means it is in the hand
TURNED = 0.1  # radians: a waypoint with an orientation is reached only once the hand is turned this close


@dataclass
class Waypoint:
    """Drive the end effector to `target()` with the gripper at `grip`; done when within `tol` metres,
    or after `hold` steps when `hold` is set (grasping and releasing wait for the fingers). `target`
    is evaluated when the waypoint starts, or at every step when `track` is set (objects move: a
    bowl settling off a ramekin, a nudged can)."""

    target: Callable[[], np.ndarray]
    grip: float
    tol: float = 0.01
    hold: int = 0
    track: bool = False
    until_blocked: bool = False  # also done once the error stops shrinking (lowering onto something)
    max_steps: int = 80
    finger_axis: Callable[[], np.ndarray] | None = None  # world xy direction the fingers open along
    orientation: Callable[[], np.ndarray] | None = None  # full 3x3 target of the end effector's frame
    carries: tuple[str, str] | None = None  # (object, target): ends with the object in the hand, or is regrasped
    skill: int = 0  # which goal predicate's skill the waypoint belongs to (plan() numbers them)


@dataclass
class ExpertState:
    plan: list[Waypoint] = field(default_factory=list)
    index: int = 0
    steps_here: int = 0
    goal: np.ndarray | None = None
    best_error: float = np.inf
    stalled: int = 0
    straighten: bool = False  # after a waypoint that turned the hand sideways, until it points down again


class ScriptedExpert:
    """`act()` gives the next 7-D action for the env's current state; `finished` when the plan ran out."""

    def __init__(self, env: LiberoEnv):
        self.env = env
        self.robosuite = env._env.env
        self.robot = self.robosuite.robots[0]
        self.state = ExpertState()
        self.predicates = [tuple(p) for p in self.robosuite.parsed_problem["goal_state"]]
        self._rim_side: dict[str, int] = {}
        self._grasp_shift: dict[str, float] = {}
        self._failed_sides: dict[str, set[int]] = {}  # rim sides whose grasp lost the bowl
        self.regrasps: dict[str, int] = {}

    # ---- scene queries ----
    @property
    def sim(self):
        return self.robosuite.sim

    def eef(self) -> np.ndarray:
        return np.array(self.sim.data.site_xpos[self.robot.eef_site_id])

    def box(self, name: str) -> Box:
        if name in self.robosuite.obj_body_id:
            return object_box(self.sim, self.robosuite.obj_body_id[name])
        site = self.sim.model.site_name2id(name)  # a region: its site, with the site's size as extent
        pos, size = np.array(self.sim.data.site_xpos[site]), np.array(self.sim.model.site_size[site])
        half = np.array([size[0], size[1] if size[1] > 0 else size[0], 0.0])
        return Box(pos - half, pos + half)

    def clearance(self, point: np.ndarray, exclude: str) -> float:
        """Horizontal distance from `point` to the nearest other object's box (fixtures included)."""
        names = [n for n in self.robosuite.obj_body_id if n != exclude]
        gaps = []
        for n in names:
            b = self.box(n)
            if b.hi[2] < point[2] - 0.05:  # well below the fingers (the table, a plate under the bowl)
                continue
            d = np.maximum(np.maximum(b.lo[:2] - point[:2], point[:2] - b.hi[:2]), 0.0)
            gaps.append(float(np.linalg.norm(d)))
        return min(gaps, default=1.0)

    # ---- planning ----
    def plan(self) -> list[Waypoint]:
        waypoints: list[Waypoint] = []
        # placing into a drawer comes before closing it; switching a stove on comes last
        order = {"open": 0, "on": 1, "in": 1, "close": 2, "turnon": 3, "turnoff": 3}
        for skill, predicate in enumerate(sorted(self.predicates, key=lambda p: order.get(p[0].lower(), 1))):
            start = len(waypoints)
            kind = predicate[0].lower()
            if kind in ("on", "in"):
                obj, target = predicate[1], predicate[2]
                if self.drawer_of(target) is not None and not self.drawer_is_open(target):
                    waypoints += self.open_drawer(target)
                if "plate" in obj and obj in self.robosuite.obj_body_id:
                    waypoints += self.push(obj, target)  # too flat to grasp
                else:
                    waypoints += self.pick_and_place(obj, target)
            elif kind == "open":
                waypoints += self.open_drawer(predicate[1])
            elif kind == "close":
                waypoints += self.close_drawer(predicate[1])
            elif kind == "turnon":
                waypoints += self.turn_knob(predicate[1], +1)
            elif kind == "turnoff":
                waypoints += self.turn_knob(predicate[1], -1)
            else:
                raise NotImplementedError(f"ScriptedExpert: no skill for predicate {predicate}")
            for w in waypoints[start:]:
                w.skill = skill
        return waypoints

    def grasp_point(self, obj: str) -> np.ndarray:
        """Where the end effector closes on `obj`: a bowl by its rim, anything else across its middle."""
        if "bowl" in obj:
            return self.rim_grasp(obj)[0]
        ob = self.box(obj)
        center, minor = self.footprint(obj)
        grasp = np.array([*center, max(ob.hi[2] - 0.035, ob.lo[2] + 0.015)])
        if obj not in self._grasp_shift:  # slide along the long side if the palm would hit a neighbour
            major = np.array([-minor[1], minor[0]])
            shifts = [0.0, -0.015, 0.015, -0.03, 0.03]
            self._grasp_shift[obj] = min(shifts, key=lambda d: (
                self.palm_obstacles(grasp + [*(d * major), 0.0], obj, minor), abs(d)))
        major = np.array([-minor[1], minor[0]])
        return grasp + [*(self._grasp_shift[obj] * major), 0.0]

    def footprint(self, obj: str) -> tuple[np.ndarray, np.ndarray]:
        """Centre and minor axis of the object's outline seen from above (from its collision geoms):
        the fingers close across the narrow side."""
        points = geom_corners(self.sim, self.robosuite.obj_body_id[obj])[:, :2]
        center = (points.min(0) + points.max(0)) / 2
        _, vectors = np.linalg.eigh(np.cov((points - center).T))
        return center, vectors[:, 0]

    def finger_axis(self, obj: str) -> np.ndarray:
        return self.rim_grasp(obj)[1] if "bowl" in obj else self.footprint(obj)[1]

    def rim_grasp(self, bowl: str) -> tuple[np.ndarray, np.ndarray]:
        """A point 2 cm below the rim, and the finger axis, where the rim's outward direction is along
        world +-x or +-y (the fingers then straddle the wall), choosing among the four the one whose
        fingers are least blocked from above (drawer walls, shelves), then with most room around.
        Works for tilted bowls: the rim is traced in the bowl's own frame."""
        body = self.robosuite.obj_body_id[bowl]
        local = body_frame_box(self.sim, body)
        rot = self.sim.data.body_xmat[body].reshape(3, 3)
        origin = self.sim.data.body_xpos[body]
        radius = min(local.size[0], local.size[1]) / 2 - 0.012
        theta = np.linspace(0, 2 * np.pi, 72, endpoint=False)
        radial = np.stack([np.cos(theta), np.sin(theta), np.zeros_like(theta)], 1)
        rim = origin + (local.center + [0, 0, local.size[2] / 2] + radius * radial) @ rot.T
        outward = radial @ rot.T
        axes = [np.array([0.0, 1.0]), np.array([0.0, 1.0]), np.array([1.0, 0.0]), np.array([1.0, 0.0])]
        candidates = [rim[np.argmax(sign * outward[:, dim])] - [0, 0, 0.02]
                      for dim, sign in ((1, -1), (1, 1), (0, -1), (0, 1))]
        if bowl not in self._rim_side:  # choose once: the arm itself must not sway the choice later
            failed = self._failed_sides.get(bowl, set())
            self._rim_side[bowl] = min(range(4), key=lambda i: (
                i in failed, self.obstacles_above(candidates[i], bowl, axes[i]),
                self.palm_obstacles(candidates[i], bowl, axes[i]), i >= 2, -self.clearance(candidates[i], exclude=bowl)))
        i = self._rim_side[bowl]
        return candidates[i].copy(), axes[i]

    def obstacles_above(self, point: np.ndarray, obj: str, axis: np.ndarray, across: float = 0.065,
                        along: float = 0.0, lift: float = -0.005, height: float = 0.35) -> int:
        """How many vertical rays, cast upwards from `lift` above `point` on a 1-2 cm grid spanning
        +-`across` along the finger `axis` and +-`along` across it, hit something other than `obj`
        or the robot: what the open fingers (or the palm, with a positive `lift`) would run into on
        the way down. Upwards, so the arm hovering above does not hide what lies below it."""
        import mujoco

        model = self.sim.model
        own = subtree_bodies(model, self.robosuite.obj_body_id[obj])
        normal = np.array([-axis[1], axis[0]])
        hits = 0
        for a in np.arange(-across, across + 1e-9, 0.01 if not along else 0.02):
            for b in (np.arange(-along, along + 1e-9, 0.015) if along else (0.0,)):
                start = np.array([*(point[:2] + a * axis + b * normal), point[2] + lift])
                geom = np.zeros(1, dtype=np.int32)
                dist = mujoco.mj_ray(model._model, self.sim.data._data, start, np.array([0.0, 0.0, 1.0]), None, 1, -1, geom)
                if not 0 <= dist < height:
                    continue
                body = model.geom_bodyid[geom[0]]
                name = model.body_id2name(body) or ""
                if body not in own and not name.startswith(("robot0_", "gripper0_", "mount0_")):
                    hits += 1
        return hits

    def palm_obstacles(self, point: np.ndarray, obj: str, axis: np.ndarray) -> int:
        """`obstacles_above` for the hand's palm when the fingertips are at `point`: wider than the
        fingers (+-10 cm along them, +-3 cm across) and from 3 cm up. A cabinet's top beside a bowl
        passes the fingers but stops the palm (libero_spatial_object task 6)."""
        return self.obstacles_above(point, obj, axis, across=0.10, along=0.03, lift=0.03)

    def pick_and_place(self, obj: str, target: str) -> list[Waypoint]:
        """Grasp `obj` from above, lift, carry over `target`, lower until the object's bottom clears
        the target's top, open, back off upwards."""

        def hover() -> np.ndarray:
            return self.grasp_point(obj) + [0, 0, HOVER]

        def transit() -> np.ndarray:
            goal = hover()
            return np.array([*goal[:2], self.transit_z(goal, (obj,))])

        def lift() -> np.ndarray:
            return np.array([*self.eef()[:2], self.carry_z(obj, target)])

        def over_target() -> np.ndarray:
            tb = self.box(target)
            return np.array([*(tb.center[:2] + self.eef()[:2] - self.base_point(obj)[:2]), self.carry_z(obj, target)])

        def place() -> np.ndarray:
            # lower until the held object's bottom is just above the surface under the target's
            # centre (a plate's well, a basket's floor), not its bounding box's top (the rim)
            ob, tb, eef = self.box(obj), self.box(target), self.eef()
            surface = self.surface_below(tb.center[:2], ob.lo[2] - 0.002, default=tb.hi[2])
            return np.array([*(tb.center[:2] + eef[:2] - self.base_point(obj)[:2]),
                             surface + (eef[2] - ob.lo[2]) + RELEASE_GAP])

        def here() -> np.ndarray:
            return self.eef()

        def back_off() -> np.ndarray:
            return self.eef() + [0, 0, 0.10]

        axis = lambda: self.finger_axis(obj)  # noqa: E731
        return [
            Waypoint(transit, OPEN, tol=0.03, finger_axis=axis),
            Waypoint(hover, OPEN, tol=0.015, track=True, finger_axis=axis),
            Waypoint(lambda: self.grasp_point(obj), OPEN, tol=0.008, track=True, until_blocked=True, finger_axis=axis),
            Waypoint(here, CLOSE, hold=12),
            Waypoint(lift, CLOSE, tol=0.02, carries=(obj, target)),
            Waypoint(over_target, CLOSE, tol=0.015, carries=(obj, target)),
            Waypoint(place, CLOSE, tol=0.012, until_blocked=True),
            Waypoint(here, OPEN, hold=8),
            Waypoint(back_off, OPEN, tol=0.03),
        ]

    def base_point(self, obj: str) -> np.ndarray:
        """The centre of the object's own bottom face, in the world: what should end up over the
        target's centre (a held object hangs tilted, so its bounding box's centre is not it)."""
        body = self.robosuite.obj_body_id[obj]
        local = body_frame_box(self.sim, body)
        rot = self.sim.data.body_xmat[body].reshape(3, 3)
        return self.sim.data.body_xpos[body] + rot @ np.array([local.center[0], local.center[1], local.lo[2]])

    def surface_below(self, xy: np.ndarray, from_z: float, default: float) -> float:
        """Height of the first surface a vertical ray from (xy, from_z) meets going down."""
        import mujoco

        geom = np.zeros(1, dtype=np.int32)
        dist = mujoco.mj_ray(self.sim.model._model, self.sim.data._data, np.array([xy[0], xy[1], from_z]),
                             np.array([0.0, 0.0, -1.0]), None, 1, -1, geom)
        return from_z - dist if dist >= 0 else default

    def path_top(self, start: np.ndarray, end: np.ndarray, exclude: tuple[str, ...], margin: float) -> float:
        """Highest top among objects within `margin` of the straight segment start-end (table plane)."""
        top = -np.inf
        for name in self.robosuite.obj_body_id:
            if name in exclude:
                continue
            b = self.box(name)
            t = np.clip(np.dot(b.center[:2] - start, end - start) / max(np.dot(end - start, end - start), 1e-9), 0, 1)
            nearest = start + t * (end - start)
            gap = np.maximum(np.maximum(b.lo[:2] - nearest, nearest - b.hi[:2]), 0.0)
            if np.linalg.norm(gap) < margin:
                top = max(top, b.hi[2])
        return float(top)

    def carry_z(self, obj: str, target: str) -> float:
        """End-effector height at which the held object's bottom is 6 cm above the target and above
        every object near the straight path to it."""
        ob, tb = self.box(obj), self.box(target)
        top = max(tb.hi[2], self.path_top(ob.center[:2], tb.center[:2], (obj, target), ob.size[:2].max() / 2 + 0.04))
        return float(top + (self.eef()[2] - ob.lo[2]) + 0.06)

    def transit_z(self, goal: np.ndarray, exclude: tuple[str, ...]) -> float:
        """Height at which the open hand (fingertips ~5 cm below the wrist, the hand ~10 cm wide)
        travels from where it is to above `goal` without sweeping through anything."""
        top = self.path_top(self.eef()[:2], goal[:2], exclude, margin=0.10)
        return float(max(goal[2], top + 0.08))

    # ---- articulated fixtures ----
    def drawer_of(self, region: str) -> tuple[int, int] | None:
        """(body, slide joint) of the drawer a region site belongs to, or None."""
        model = self.sim.model
        try:
            body = model.site_bodyid[model.site_name2id(region)]
        except (ValueError, KeyError):
            return None
        for j in range(model.njnt):
            if model.jnt_bodyid[j] == body and model.jnt_type[j] == 2:  # mjJNT_SLIDE
                return body, j
        return None

    def drawer_is_open(self, region: str) -> bool:
        body, joint = self.drawer_of(region)
        return float(self.sim.data.qpos[self.sim.model.jnt_qposadr[joint]]) < -0.12

    def opening_direction(self, body: int, joint: int) -> np.ndarray:
        """World direction the drawer moves when it opens (its slide axis, towards the open range)."""
        model = self.sim.model
        axis = self.sim.data.body_xmat[body].reshape(3, 3) @ model.jnt_axis[joint]
        lo, hi = model.jnt_range[joint]
        return axis if abs(hi) > abs(lo) else -axis  # LIBERO's cabinets open towards the range's far end

    def handle(self, body: int, direction: np.ndarray) -> Box:
        """The collision geoms of a body that stick out furthest along `direction`: a drawer's
        handle, a knob's ridge."""
        boxes = [Box(p.min(0), p.max(0)) for p in geom_corners(self.sim, body, per_geom=True, subtree=False)]
        reach = max(b.reach(direction) for b in boxes)
        front = [b for b in boxes if b.reach(direction) > reach - 0.005]
        return Box(np.min([b.lo for b in front], 0), np.max([b.hi for b in front], 0))

    @staticmethod
    def facing(approach: np.ndarray) -> np.ndarray:
        """End-effector frame pointing horizontally along `approach`, fingers opening vertically."""
        z = approach / np.linalg.norm(approach)
        x = np.array([0.0, 0.0, 1.0])
        return np.stack([x, np.cross(z, x), z], axis=1)

    def drawer_approach(self, region: str):
        """(opening direction, hand orientation facing the drawer, handle centre): the latter two as
        callables, since the handle moves while the drawer does."""
        found = self.drawer_of(region)
        if found is None:  # a microwave door, say: hinged, not a sliding drawer
            raise NotImplementedError(f"ScriptedExpert: no skill for opening or closing {region!r} (not a drawer)")
        body, joint = found
        out = self.opening_direction(body, joint)
        return out, (lambda: self.facing(-out)), (lambda: self.handle(body, out).center)

    def open_drawer(self, region: str) -> list[Waypoint]:
        """Turn the hand to face the drawer, grasp its handle bar from the front (fingers above and
        below it), pull it out along the slide, let go and back off."""
        out, pose, bar = self.drawer_approach(region)
        return [
            Waypoint(lambda: self.eef() + [0, 0, 0.05], OPEN, tol=0.03, orientation=pose),
            Waypoint(lambda: bar() + out * 0.12, OPEN, tol=0.015, orientation=pose),
            Waypoint(lambda: bar() - out * 0.01, OPEN, tol=0.008, orientation=pose, until_blocked=True),
            Waypoint(self.eef, CLOSE, hold=12, orientation=pose),
            Waypoint(lambda: self.eef() + out * 0.17, CLOSE, tol=0.01, orientation=pose, until_blocked=True),
            Waypoint(self.eef, OPEN, hold=8, orientation=pose),
            Waypoint(lambda: self.eef() + out * 0.08 + [0, 0, 0.06], OPEN, tol=0.02, orientation=pose),
        ]

    def close_drawer(self, region: str) -> list[Waypoint]:
        """Face the drawer with the hand closed and push its handle in along the slide."""
        out, pose, bar = self.drawer_approach(region)
        return [
            Waypoint(lambda: self.eef() + [0, 0, 0.05], CLOSE, tol=0.03, orientation=pose),
            Waypoint(lambda: bar() + out * 0.08, CLOSE, tol=0.015, orientation=pose),
            Waypoint(lambda: bar() - out * 0.18, CLOSE, tol=0.01, orientation=pose, until_blocked=True),
            Waypoint(lambda: self.eef() + out * 0.08 + [0, 0, 0.05], CLOSE, tol=0.02, orientation=pose),
        ]

    def turn_knob(self, stove: str, sign: int) -> list[Waypoint]:
        """Grasp the knob's ridge from above and turn the wrist 0.8 rad about the knob's axis."""
        model = self.sim.model
        knob_joint = next(j for j in range(model.njnt) if (model.joint_id2name(j) or "").startswith(stove)
                          and model.jnt_type[j] == 3)  # mjJNT_HINGE
        body = model.jnt_bodyid[knob_joint]
        ridge = self.handle(body, np.array([0.0, 0.0, 1.0]))  # the part that stands highest
        long_side = np.array([1.0, 0.0]) if ridge.size[0] > ridge.size[1] else np.array([0.0, 1.0])
        across = np.array([-long_side[1], long_side[0]])
        grip = np.array([*ridge.center[:2], ridge.hi[2] - 0.012])
        angle = np.arctan2(across[1], across[0]) + sign * 0.8
        turned = np.array([np.cos(angle), np.sin(angle)])
        return [
            Waypoint(lambda: grip + [0, 0, HOVER], OPEN, tol=0.015, finger_axis=lambda: across),
            Waypoint(lambda: grip, OPEN, tol=0.006, finger_axis=lambda: across, until_blocked=True),
            Waypoint(self.eef, CLOSE, hold=10, finger_axis=lambda: across),
            Waypoint(self.eef, CLOSE, hold=40, finger_axis=lambda: turned),
            Waypoint(self.eef, OPEN, hold=6, finger_axis=lambda: turned),
            Waypoint(lambda: self.eef() + [0, 0, 0.08], OPEN, tol=0.02),
        ]

    def push(self, obj: str, target: str) -> list[Waypoint]:
        """Slide a flat object (a plate) over the table: closed fingertips set down inside it near the
        rim away from the target, then moved so its centre ends on the target's centre. Pushing from
        inside needs no room behind it (the cabinet often stands there)."""
        def geometry():
            ob, tb = self.box(obj), self.box(target)
            delta = tb.center[:2] - ob.center[:2]
            direction = delta / max(np.linalg.norm(delta), 1e-6)
            radius = float(np.abs(ob.size[:2] * direction).max()) / 2
            return ob, tb, direction, radius

        def behind() -> np.ndarray:
            ob, _, direction, radius = geometry()
            return np.array([*(ob.center[:2] - direction * (radius - 0.025)), ob.lo[2] + 0.012])

        def through() -> np.ndarray:  # move the hand by what the object still lacks
            ob, tb = self.box(obj), self.box(target)
            return np.array([*(self.eef()[:2] + tb.center[:2] - ob.center[:2]), ob.lo[2] + 0.012])

        axis = {}  # fixed per round, so the hand does not spin as the object nears the target

        def sideways() -> np.ndarray:  # the palm's long side across the push, not into what is behind
            if "now" not in axis:
                direction = geometry()[2]
                axis["now"] = np.array([-direction[1], direction[0]])
            return axis["now"]

        def new_round() -> np.ndarray:
            axis.clear()
            return self.eef() + [0, 0, 0.06]

        push_round = [
            Waypoint(new_round, CLOSE, tol=0.02),
            Waypoint(lambda: behind() + [0, 0, 0.10], CLOSE, tol=0.015, finger_axis=sideways),
            Waypoint(behind, CLOSE, tol=0.01, until_blocked=True, finger_axis=sideways),
            Waypoint(through, CLOSE, tol=0.01, until_blocked=True, max_steps=100, finger_axis=sideways),
        ]
        # two rounds: the second corrects what the first left (the object slides a little after)
        return push_round + [Waypoint(w.target, w.grip, w.tol, w.hold, w.track, w.until_blocked, w.max_steps,
                                      w.finger_axis) for w in push_round] + [
            Waypoint(lambda: self.eef() + [0, 0, 0.08], CLOSE, tol=0.02)]

    def holds(self, obj: str) -> bool:
        """The fingertips are within HELD_MARGIN of the object's box: it is in the hand (a dropped
        object lies tens of centimetres below)."""
        box, eef = self.box(obj), self.eef()
        return bool(np.all(eef >= box.lo - HELD_MARGIN) and np.all(eef <= box.hi + HELD_MARGIN))

    def regrasp(self, obj: str, target: str, skill: int) -> list[Waypoint]:
        """Open, rise, and pick `obj` up again from where it now lies, a bowl from another rim side
        than the one that lost it: only ever planned once an object has left the hand, so an episode
        the first grasp solves runs exactly as it would without it."""
        self.regrasps[obj] = self.regrasps.get(obj, 0) + 1
        if obj in self._rim_side:
            self._failed_sides.setdefault(obj, set()).add(self._rim_side.pop(obj))
        self._grasp_shift.pop(obj, None)
        again = [Waypoint(lambda: self.eef() + [0, 0, 0.05], OPEN, tol=0.02, hold=8)] + self.pick_and_place(obj, target)
        for w in again:
            w.skill = skill
        return again

    # ---- control ----
    @property
    def finished(self) -> bool:
        return bool(self.state.plan) and self.state.index >= len(self.state.plan)

    def act(self) -> np.ndarray:
        if not self.state.plan:
            self.state.plan = self.plan()
        if self.finished:
            return np.array([0, 0, 0, 0, 0, 0, self.state.plan[-1].grip])
        wp = self.state.plan[self.state.index]
        if self.state.goal is None or wp.track:
            self.state.goal = wp.target()
        error = self.state.goal - self.eef()
        self.state.steps_here += 1
        reached = (self.state.steps_here >= wp.hold) if wp.hold else (np.abs(error).max() < wp.tol)
        turn = self.rotation_error(wp.orientation()) if wp.orientation is not None else None
        if turn is not None and not wp.hold:
            # executed actions are clipped to the tokenizer's +-0.375 rotation bound: turning the hand
            # sideways takes longer than moving it, and a drawer's handle must not be met half turned
            reached = reached and np.linalg.norm(turn) < TURNED
        # blocked (a held object resting on its target, a finger on a rim): no progress for a while
        distance = float(np.abs(error).max())
        if distance < self.state.best_error - 1e-3:
            self.state.best_error, self.state.stalled = distance, 0
        else:
            self.state.stalled += 1
        stuck = wp.until_blocked and self.state.stalled >= STALL_STEPS
        if reached or stuck or self.state.steps_here >= wp.max_steps:
            self.state.index += 1
            if wp.carries and not self.holds(wp.carries[0]) and self.regrasps.get(wp.carries[0], 0) < REGRASPS:
                # the object left the hand: the rest of this pick-and-place is planned again from where it lies
                rest = self.state.plan[self.state.index:]
                skill_end = next((i for i, w in enumerate(rest) if w.skill != wp.skill), len(rest))
                self.state.plan[self.state.index:] = self.regrasp(*wp.carries, skill=wp.skill) + rest[skill_end:]
            self.state.steps_here = self.state.stalled = 0
            self.state.best_error = np.inf
            self.state.goal = None
        action = np.zeros(7)
        action[:3] = np.clip(GAIN * error / POS_PER_UNIT, -1.0, 1.0)
        approach = self.sim.data.site_xmat[self.robot.eef_site_id].reshape(3, 3)[:, 2]
        self.state.straighten = (self.state.straighten or wp.orientation is not None) and approach[2] > -TILTED
        if turn is not None:
            action[3:6] = np.clip(GAIN * turn / ROT_PER_UNIT, -1.0, 1.0)
        elif self.state.straighten and approach[2] > -TILTED:  # back from facing a drawer: straighten the wrist
            axis = wp.finger_axis() if wp.finger_axis else self.finger_axis_now()
            action[3:6] = np.clip(GAIN * self.rotation_error(self.top_down(axis)) / ROT_PER_UNIT, -1.0, 1.0)
        elif wp.finger_axis is not None:  # near vertical: turn about z only, leave the small tilts be
            action[5] = np.clip(GAIN * self.yaw_error(wp.finger_axis()) / ROT_PER_UNIT, -1.0, 1.0)
        action[6] = wp.grip
        return action

    def rotation_error(self, target: np.ndarray) -> np.ndarray:
        """World-frame axis-angle (radians) from the end effector's frame to `target` (OSC_POSE's
        rotation actions are world-frame axis-angle deltas)."""
        from scipy.spatial.transform import Rotation

        current = self.sim.data.site_xmat[self.robot.eef_site_id].reshape(3, 3)
        return Rotation.from_matrix(target @ current.T).as_rotvec()

    def yaw_error(self, wanted_axis: np.ndarray) -> float:
        """Rotation about world z (radians, in [-pi/2, pi/2]: the fingers are symmetric) that turns
        the current finger axis onto `wanted_axis`."""
        current = self.finger_axis_now()
        delta = np.arctan2(wanted_axis[1], wanted_axis[0]) - np.arctan2(current[1], current[0])
        return float((delta + np.pi / 2) % np.pi - np.pi / 2)

    def finger_axis_now(self) -> np.ndarray:
        """The current finger-opening direction in the table plane."""
        model, data = self.sim.model, self.sim.data
        axis = (data.body_xpos[model.body_name2id("gripper0_rightfinger")]
                - data.body_xpos[model.body_name2id("gripper0_leftfinger")])[:2]
        return axis / max(np.linalg.norm(axis), 1e-9)

    def top_down(self, finger_axis: np.ndarray) -> np.ndarray:
        """End-effector frame pointing straight down with the fingers opening along `finger_axis`
        (the sign closest to the current one: the fingers are symmetric, half a turn is wasted motion)."""
        current = self.sim.data.site_xmat[self.robot.eef_site_id].reshape(3, 3)[:, 0]
        x = np.array([finger_axis[0], finger_axis[1], 0.0])
        x /= max(np.linalg.norm(x), 1e-9)
        if x @ current < 0:
            x = -x
        z = np.array([0.0, 0.0, -1.0])
        return np.stack([x, np.cross(z, x), z], axis=1)

@dataclass
class ExpertRollout:
    """What the expert did in one trial: actions (T, 7), states (T, D) (states[t] before actions[t])."""

    actions: np.ndarray
    states: np.ndarray
    success: bool
    error: str = ""
    regrasps: int = 0  # times an object that left the hand was picked up again


SETTLE_STEPS = 15  # after the plan ends, let a released object come to rest before judging


def run_expert(env: LiberoEnv, trial: int,
               quantize: Callable[[np.ndarray], np.ndarray] | None = None) -> ExpertRollout:
    """Runs the expert from init state `trial` without rendering, until success, the plan's end
    (plus settling steps) or the env's step cap. `quantize` maps each action to what is executed
    and recorded (ActionTokenizer.quantize: actions the model can express)."""
    env.reset(trial, cameras=())
    expert = ScriptedExpert(env)
    actions, states = [], []
    settle = SETTLE_STEPS
    try:
        while not env.done and not env.truncated and settle > 0:
            action = expert.act() if quantize is None else quantize(expert.act())
            states.append(env.sim.get_state().flatten())
            actions.append(action)
            env.step(action)
            settle -= expert.finished
    except NotImplementedError as e:
        return ExpertRollout(np.zeros((0, 7)), np.zeros((0, 0)), False, str(e))
    return ExpertRollout(np.asarray(actions), np.asarray(states), env.done, regrasps=sum(expert.regrasps.values()))
