"""WorldVLA's loss: weighted-mean cross entropy (alpha on image-code targets) plus z-loss.

The reference applies alpha as a per-class weight on image-code ids (its slice, ids 3-8194, is one
off from the code range; we weight exactly the vocabulary's image-code ids). A mixed batch of action
and world samples then gives L_action + alpha * L_world in one weighted mean. L_action and L_world
are also reported separately, unweighted, for logging.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from worldvla_dist.model.presets import LossConfig
from worldvla_dist.tokenizers.vocabulary import Vocabulary


@dataclass
class LossOutput:
    total: torch.Tensor  # scalar, what the optimiser sees
    action_ce: torch.Tensor  # mean CE over action-sample targets (nan if the batch has none)
    world_ce: torch.Tensor  # mean CE over world-sample targets (nan if none)
    z_loss: torch.Tensor
    num_action_tokens: int
    num_world_tokens: int


def worldvla_loss(logits: torch.Tensor, targets: torch.Tensor, target_is_world: torch.Tensor,
                  vocab: Vocabulary, cfg: LossConfig) -> LossOutput:
    """logits (N, V) at the labelled positions, targets (N,) ids, target_is_world (N,) bool."""
    logits = logits.float()
    lse = torch.logsumexp(logits, dim=-1)
    ce = lse - logits.gather(1, targets[:, None]).squeeze(1)
    weight = torch.where(vocab.image_code_mask.to(targets.device)[targets], cfg.image_weight, 1.0)
    weighted_ce = (weight * ce).sum() / weight.sum().clamp_min(1e-12)
    z_loss = cfg.z_loss_weight * (lse ** 2).mean()
    nan = torch.tensor(float("nan"), device=logits.device)
    is_world = target_is_world.bool()
    action_ce = ce[~is_world].mean() if (~is_world).any() else nan
    world_ce = ce[is_world].mean() if is_world.any() else nan
    return LossOutput(total=weighted_ce + z_loss, action_ce=action_ce.detach(), world_ce=world_ce.detach(),
                      z_loss=z_loss.detach(), num_action_tokens=int((~is_world).sum()),
                      num_world_tokens=int(is_world.sum()))
