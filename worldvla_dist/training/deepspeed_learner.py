"""The learner: a DeepSpeed engine over the joint loss L_action + alpha * L_world (alpha lives in
the loss as the image-code weight), with checkpoints that resume model, optimizer, scheduler, step
and data position, and an exported model folder the PolicyServer loads.

Processes are started by a launcher (Ray Train, torchrun); a single process without one gets the
rendezvous variables DeepSpeed insists on. On the CPU the backend is gloo."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Sequence

import torch

from worldvla_dist.model.checkpoint import save_checkpoint
from worldvla_dist.model.worldvla import WorldVLA
from worldvla_dist.runtime.redis_server import free_loopback_port
from worldvla_dist.sequences.collate import collate
from worldvla_dist.sequences.samples import TokenSample
from worldvla_dist.sequences.token_space import TokenSpace
from worldvla_dist.training.learner_config import LearnerConfig

log = logging.getLogger(__name__)


def prepare_process_group_env() -> None:
    """DeepSpeed reads the rendezvous variables even when a launcher (Ray Train, torchrun) already
    made the process group: fill them from that group, or, for a lone process, with rank 0 of 1."""
    if not torch.cuda.is_available():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    if torch.distributed.is_initialized():
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
        os.environ.update(RANK=str(rank), WORLD_SIZE=str(world))
        os.environ.setdefault("LOCAL_RANK", str(rank))
    for key, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1")):
        os.environ.setdefault(key, value)
    os.environ.setdefault("MASTER_PORT", str(free_loopback_port()))
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(Path.home() / ".cache" / "torch_extensions"))


class DeepSpeedLearner:
    def __init__(self, model: WorldVLA, config: LearnerConfig):
        prepare_process_group_env()
        import deepspeed  # heavy: imported on use

        if not torch.distributed.is_initialized():
            deepspeed.init_distributed(dist_backend="nccl" if torch.cuda.is_available() else "gloo")
        self.config = config
        self.vocab = model.vocab
        self.world_size = torch.distributed.get_world_size()
        self.rank = torch.distributed.get_rank()
        params = [p for p in model.parameters() if p.requires_grad]
        o = config.optim
        optimizer = torch.optim.AdamW(params, lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, o.lr_factor)
        self.engine, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=model, optimizer=optimizer, lr_scheduler=scheduler, config=config.deepspeed_config(self.world_size))
        self.step = 0  # optimizer steps taken
        self.micro_steps = 0  # batches consumed by this process (the data position)

    @property
    def model(self) -> WorldVLA:
        return self.engine.module

    def train_micro_batch(self, samples: Sequence[TokenSample]) -> dict[str, float]:
        """Forward + backward on one micro-batch; the optimizer steps every grad_accum_steps of them."""
        self.engine.train()
        start = time.perf_counter()
        batch = collate(samples, self.vocab, dtype=self.model.dtype,
                        attention_mask=self.config.attention_mask).to(self.engine.device)
        out = self.engine(batch)
        self.engine.backward(out.total)
        self.engine.step()
        self.micro_steps += 1
        if self.engine.is_gradient_accumulation_boundary() or self.micro_steps % self.config.grad_accum_steps == 0:
            self.step = self.engine.global_steps
        tokens = int((batch.labels != -100).sum())
        return {"loss": out.total.item(), "action_ce": out.action_ce.item(), "world_ce": out.world_ce.item(),
                "lr": self.scheduler.get_last_lr()[0], "tokens": tokens,
                "seconds": time.perf_counter() - start, "step": self.step}

    def save(self, folder: str | Path, extra: dict | None = None) -> str:
        """A DeepSpeed checkpoint (model, optimizer, scheduler) tagged by step; every rank calls it."""
        tag = f"step{self.step:08d}"
        state = {"step": self.step, "micro_steps": self.micro_steps, **(extra or {})}
        self.engine.save_checkpoint(str(folder), tag=tag, client_state=state)
        return tag

    def load(self, folder: str | Path) -> dict | None:
        """Resumes from the newest checkpoint in `folder`; returns its client state (None: none there)."""
        folder = Path(folder)
        if not (folder / "latest").is_file():
            return None
        path, state = self.engine.load_checkpoint(str(folder))
        if path is None:
            return None
        self.step, self.micro_steps = int(state["step"]), int(state["micro_steps"])
        log.info("resumed from %s at step %d", path, self.step)
        return state

    def export(self, folder: str | Path, tokens: TokenSpace) -> Path:
        """Our model folder (what the PolicyServer loads), written by rank 0. ZeRO 0-2 keep whole
        parameters on every rank, so the module's own weights are complete."""
        if self.rank != 0:
            return Path(folder)
        return save_checkpoint(self.model, tokens, folder)
