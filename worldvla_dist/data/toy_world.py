"""A procedural 2-D pick-and-place world for smoke runs: a gripper (seen from above, larger when
lower) moves by the action's (dx, dy, dz), closes on a coloured block, carries it to a corner and
puts it down. It has the shapes of LIBERO data (uint8 frames, 7-D actions within the reference
bounds, an instruction) and a scripted expert, but renders in microseconds; the demo and tests use
it where a simulator would only add minutes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COLORS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 80, 220)}
CORNERS = {"top left": (0.2, 0.2), "top right": (0.8, 0.2), "bottom left": (0.2, 0.8), "bottom right": (0.8, 0.8)}
BLOCK_PX = 16
PIXELS_PER_UNIT = 10.0  # an action of 0.9375 (the bound) moves the gripper ~9 px
Z_PER_UNIT = 0.4  # and ~0.37 of the full height
MAX_STEP = 0.9375


@dataclass
class Episode:
    """frames (T+1, H, W, 3) uint8, actions (T, 7) float32, the instruction."""

    frames: np.ndarray
    actions: np.ndarray
    instruction: str


class ToyWorld:
    def __init__(self, image_size_px: int = 128, steps: int = 32):
        self.size = image_size_px
        self.steps = steps

    def render(self, gripper: np.ndarray, z: float, closed: bool, block: np.ndarray, color: str) -> np.ndarray:
        img = np.full((self.size, self.size, 3), 200, dtype=np.uint8)
        img[:4], img[-4:], img[:, :4], img[:, -4:] = 120, 120, 120, 120
        bx, by = (block - BLOCK_PX / 2).astype(int)
        img[by:by + BLOCK_PX, bx:bx + BLOCK_PX] = COLORS[color]
        half = int(6 + 5 * (1.0 - z))  # lower is closer to the camera: larger
        gx, gy = gripper.astype(int)
        img[max(0, gy - half):gy + half, max(0, gx - half):gx + half] = 40
        if closed:
            img[max(0, gy - 3):gy + 3, max(0, gx - 3):gx + 3] = (240, 220, 0)
        return img

    def expert_episode(self, seed: int) -> Episode:
        """The scripted expert, a phase machine: approach high, descend, grasp and lift, carry to the
        corner, descend, release and lift."""
        rng = np.random.default_rng(seed)
        color = list(COLORS)[seed % len(COLORS)]
        corner = list(CORNERS)[(seed // len(COLORS)) % len(CORNERS)]
        block = rng.uniform(BLOCK_PX, self.size - BLOCK_PX, 2)
        gripper = rng.uniform(BLOCK_PX, self.size - BLOCK_PX, 2)
        goal = np.asarray(CORNERS[corner]) * self.size
        z, closed, phase = 1.0, False, "approach"
        frames, actions = [self.render(gripper, z, closed, block, color)], []
        for _ in range(self.steps):
            target_xy = goal if phase in ("carry", "place") else block
            target_z = 0.0 if phase in ("descend", "place") else 1.0
            action = np.zeros(7)
            action[:2] = np.clip((target_xy - gripper) / PIXELS_PER_UNIT, -MAX_STEP, MAX_STEP)
            action[2] = np.clip((target_z - z) / Z_PER_UNIT, -MAX_STEP, MAX_STEP)
            gripper = gripper + action[:2] * PIXELS_PER_UNIT
            z = float(np.clip(z + action[2] * Z_PER_UNIT, 0.0, 1.0))
            at_xy = np.abs(target_xy - gripper).max() < 1.0
            if phase == "approach" and at_xy:
                phase = "descend"
            elif phase == "descend" and z == 0.0:
                phase, closed = "lift", True
            elif phase == "lift" and z == 1.0:
                phase = "carry"
            elif phase == "carry" and at_xy:
                phase = "place"
            elif phase == "place" and z == 0.0:
                phase, closed = "retreat", False
            if closed:
                block = gripper.copy()
            action[6] = 1.0 if closed else -1.0
            frames.append(self.render(gripper, z, closed, block, color))
            actions.append(action)
        return Episode(np.stack(frames), np.asarray(actions, dtype=np.float32),
                       f"pick up the {color} block and place it in the {corner} corner")
