"""Policy requests and replies as they travel over Redis (msgpack through our codec).

A request carries the history frames (oldest first, the model's resolution, uint8) and the number of
actions wanted; the reply goes to the Redis list named in `reply_to`, which the asking SimWorker
waits on. A request that cannot be served gets a reply with `error` set, so nobody waits forever."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import numpy as np

from worldvla_dist.errors import WorldVLAError

REQUEST_FIELDS = ("request_id", "reply_to", "instruction", "frames", "num_actions")
MAX_ACTIONS_PER_CHUNK = 64
MAX_FRAMES_PER_REQUEST = 16  # the policy reads the last `history` (2) frames; more is a broken client


class InvalidRequest(WorldVLAError, ValueError):
    """A policy request whose fields have the wrong types, shapes or values."""


@dataclass
class PolicyRequest:
    instruction: str
    frames: list[np.ndarray]  # (H, W, 3) uint8 each, oldest first
    num_actions: int
    reply_to: str
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    sent_at: float = field(default_factory=time.time)

    def to_payload(self) -> dict:
        return {"request_id": self.request_id, "reply_to": self.reply_to, "instruction": self.instruction,
                "frames": list(self.frames), "num_actions": self.num_actions, "sent_at": self.sent_at}

    @classmethod
    def from_payload(cls, p: dict, image_size_px: int) -> "PolicyRequest":
        problems = []
        if not isinstance(p.get("request_id"), str) or not isinstance(p.get("reply_to"), str):
            problems.append("request_id and reply_to must be strings")
        if not isinstance(p.get("instruction"), str) or not p.get("instruction"):
            problems.append("instruction must be a non-empty string")
        k = p.get("num_actions")
        if not isinstance(k, int) or not 1 <= k <= MAX_ACTIONS_PER_CHUNK:
            problems.append(f"num_actions must be an int in 1..{MAX_ACTIONS_PER_CHUNK}, got {k!r}")
        frames = p.get("frames")
        want = (image_size_px, image_size_px, 3)
        if not isinstance(frames, list) or not 1 <= len(frames) <= MAX_FRAMES_PER_REQUEST:
            problems.append(f"frames must be a list of 1..{MAX_FRAMES_PER_REQUEST} frames, "
                            f"got {len(frames) if isinstance(frames, list) else type(frames).__name__}")
        elif not all(isinstance(f, np.ndarray) and f.shape == want and f.dtype == np.uint8 for f in frames):
            got = [(getattr(f, "shape", type(f).__name__), str(getattr(f, "dtype", ""))) for f in frames]
            problems.append(f"frames must be uint8 arrays of shape {want}, got {got}")
        sent_at = p.get("sent_at", time.time())
        if not isinstance(sent_at, (int, float)) or isinstance(sent_at, bool):
            problems.append(f"sent_at must be a number (seconds since the epoch), got {sent_at!r}")
        if problems:
            raise InvalidRequest("policy request: " + "; ".join(problems))
        return cls(p["instruction"], frames, k, p["reply_to"], p["request_id"], float(sent_at))


@dataclass
class PolicyReply:
    request_id: str
    actions: np.ndarray | None  # (K, 7) float32; None with an error
    weight_version: int
    error: str | None = None

    def to_payload(self) -> dict:
        return {"request_id": self.request_id, "actions": self.actions, "weight_version": self.weight_version,
                "error": self.error}

    @classmethod
    def from_payload(cls, p: dict) -> "PolicyReply":
        return cls(p["request_id"], p.get("actions"), int(p.get("weight_version", -1)), p.get("error"))
