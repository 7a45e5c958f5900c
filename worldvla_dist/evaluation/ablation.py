"""The paper's Table 4 at toy scale: four training settings of the same data, steps and seeds, their
held-out action-token accuracy per position in the chunk and their closed-loop success, as one table.

(a) action model, K = 1; (b) chunking (K) under the plain causal mask, decoded one token at a time
under it, so each action conditions on the ones generated before it and errors propagate; (c)
chunking under the action mask (every action sees the prompt and itself only); (d) (c) plus world-model
samples. The paper's claims (WORLDVLA.md): (c) > (b) at positions 2..K, and (d) >= (c)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from worldvla_dist.decoding.parallel_decoder import parallel_decode_actions
from worldvla_dist.decoding.reference_decoder import reference_decode_actions
from worldvla_dist.envs.env_process import EnvCrashed
from worldvla_dist.errors import ConfigError
from worldvla_dist.evaluation.episodes import StepEnv, run_episode
from worldvla_dist.model.worldvla import WorldVLA
from worldvla_dist.sequences.attention_mask import check_attention_mask
from worldvla_dist.sequences.samples import TokenSample
from worldvla_dist.serving.chunk_policy import ChunkPolicy
from worldvla_dist.serving.protocol import PolicyRequest
from worldvla_dist.tokenizers.action_tokenizer import ACTION_BLOCK_LEN


@dataclass(frozen=True)
class AblationSetting:
    key: str  # "a".."d", the row's name in the table
    label: str
    chunk: int  # K, actions per training sample and per policy answer
    attention_mask: str  # the mask it trains under, and decodes under
    world_fraction: float  # share of world samples per batch

    def __post_init__(self) -> None:
        check_attention_mask(self.attention_mask, f"AblationSetting {self.key}")
        if self.chunk < 1 or not 0 <= self.world_fraction < 1:
            raise ConfigError(f"AblationSetting {self.key}: chunk >= 1 and world_fraction in [0, 1), got {self}")


def table4_settings(chunk: int = 5, world_fraction: float = 0.25) -> tuple[AblationSetting, ...]:
    """The paper's four rows at chunk size `chunk` (5 on LIBERO-Object)."""
    return (AblationSetting("a", "action model, K=1", 1, "action", 0.0),
            AblationSetting("b", f"chunking K={chunk}, causal mask", chunk, "causal", 0.0),
            AblationSetting("c", f"chunking K={chunk}, action mask", chunk, "action", 0.0),
            AblationSetting("d", f"(c) + world model ({world_fraction:g} of each batch)", chunk, "action",
                            world_fraction))


@dataclass
class SeedResult:
    """One trained model of one setting."""

    setting: str
    seed: int
    position_accuracy: list[float]  # per position 1..K of the chunk: fraction of the 7 bins decoded exactly
    num_prompts: int
    successes: int
    episodes: int  # closed-loop episodes that ran (errors excluded)
    errors: int = 0  # episodes the env could not run
    final_action_ce: float = float("nan")
    train_seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    def to_payload(self) -> dict:
        return asdict(self)


def prompts_and_targets(samples: Sequence[TokenSample], chunk: int) -> tuple[list[list[int]], np.ndarray]:
    """Action samples -> (their prompts, (N, chunk, 7) action-bin ids of their answers' first `chunk` actions)."""
    prompts, targets = [], []
    for s in samples:
        if s.kind != "action":
            raise ValueError(f"prompts_and_targets: expected action samples, got a {s.kind} sample")
        p = s.prompt_length
        answer = np.asarray(s.input_ids[p:-1])  # K blocks [BOA] 7 bins [EOA], then the end-of-turn id
        if len(answer) % ACTION_BLOCK_LEN or len(answer) // ACTION_BLOCK_LEN < chunk:
            raise ValueError(f"prompts_and_targets: an answer of {len(answer)} tokens holds fewer than {chunk} "
                             f"actions of {ACTION_BLOCK_LEN} tokens")
        prompts.append(list(map(int, s.input_ids[:p])))
        targets.append(answer.reshape(-1, ACTION_BLOCK_LEN)[:chunk, 1:-1])
    return prompts, np.stack(targets)


def position_accuracy(predicted: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(N, K, 7) predicted and target bin ids -> (K,): per position in the chunk, the fraction of bins right."""
    predicted, targets = np.asarray(predicted), np.asarray(targets)
    if predicted.shape != targets.shape or predicted.ndim != 3 or not len(predicted):
        raise ValueError(f"position_accuracy: expected two equal (N, K, 7) arrays with N > 0, got "
                         f"{predicted.shape} and {targets.shape}")
    return (predicted == targets).mean(axis=(0, 2))


def majority_position_accuracy(train_targets: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The baseline: always each dimension's most frequent training bin -> (K,) as position_accuracy."""
    majority = np.array([np.bincount(train_targets[..., d].ravel()).argmax() for d in range(targets.shape[-1])])
    return position_accuracy(np.broadcast_to(majority, targets.shape), targets)


def decode_chunks(model: WorldVLA, prompts: Sequence[list[int]], num_actions: int, attention_mask: str,
                  batch_size: int = 16) -> np.ndarray:
    """Greedy -> (N, K, 7) bin ids: side by side under the action mask, one token at a time under the causal one."""
    check_attention_mask(attention_mask, "decode_chunks")
    out = []
    for i in range(0, len(prompts), batch_size):
        rows = list(prompts[i:i + batch_size])
        bins = (reference_decode_actions(model, rows, num_actions, attention_mask="causal")
                if attention_mask == "causal" else parallel_decode_actions(model, rows, num_actions))
        out.append(bins.cpu().numpy())
    return np.concatenate(out)


def closed_loop(policy: ChunkPolicy, env: StepEnv, trials: Sequence[int], chunk: int,
                history: int = 2) -> tuple[int, int, int]:
    """Episodes from the env's init states `trials` -> (successes, episodes run, errors)."""

    def act(instruction: str, frames: list[np.ndarray], num_actions: int) -> tuple[np.ndarray, int]:
        return policy.predict([PolicyRequest(instruction, frames, num_actions, reply_to="")])[0], 0

    successes = runs = errors = 0
    for trial in trials:
        try:
            outcome = run_episode(env, act, trial, chunk, history)
        except EnvCrashed:
            errors += 1
            continue
        successes += outcome.success
        runs += 1
    return successes, runs, errors


def _spread(values: Sequence[float], fmt: str) -> str:
    """"mean (min-max)" over seeds; just the value for one seed."""
    if len(values) == 1:
        return format(values[0], fmt)
    return f"{format(float(np.mean(values)), fmt)} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def summarize(settings: Sequence[AblationSetting], results: Sequence[SeedResult], chunk: int,
              majority: np.ndarray | None = None) -> dict:
    """-> {"rows": one per setting (mean / min / max per position over seeds, success), "directions": the
    paper's two claims checked on the means and per seed}."""
    rows = []
    for s in settings:
        mine = sorted((r for r in results if r.setting == s.key), key=lambda r: r.seed)
        if not mine:
            continue
        acc = np.full((len(mine), chunk), np.nan)
        for i, r in enumerate(mine):
            acc[i, :len(r.position_accuracy)] = r.position_accuracy
        later = acc[:, 1:].mean(axis=1) if chunk > 1 and s.chunk > 1 else np.full(len(mine), np.nan)
        rows.append({"setting": s.key, "label": s.label, "chunk": s.chunk, "attention_mask": s.attention_mask,
                     "world_fraction": s.world_fraction, "seeds": [r.seed for r in mine],
                     "position_accuracy": acc.tolist(), "later_positions_accuracy": later.tolist(),
                     "successes": [r.successes for r in mine], "episodes": [r.episodes for r in mine],
                     "errors": [r.errors for r in mine]})
    by_key = {r["setting"]: r for r in rows}

    def compare(better: str, worse: str, metric: str) -> dict | None:
        if better not in by_key or worse not in by_key:
            return None
        b, w = by_key[better][metric], by_key[worse][metric]
        if metric == "successes":
            b = [x / max(n, 1) for x, n in zip(b, by_key[better]["episodes"])]
            w = [x / max(n, 1) for x, n in zip(w, by_key[worse]["episodes"])]
        return {"claim": f"({better}) {'>' if metric == 'later_positions_accuracy' else '>='} ({worse}) on {metric}",
                "mean": [float(np.mean(b)), float(np.mean(w))],
                "holds": bool(np.mean(b) > np.mean(w)) if metric == "later_positions_accuracy"
                else bool(np.mean(b) >= np.mean(w)),
                "seeds_holding": int(sum(x > y for x, y in zip(b, w)))}

    directions = [d for d in (compare("c", "b", "later_positions_accuracy"), compare("d", "c", "later_positions_accuracy"),
                              compare("c", "b", "successes"), compare("d", "c", "successes")) if d]
    return {"chunk": chunk, "rows": rows, "directions": directions,
            "majority_position_accuracy": None if majority is None else [float(x) for x in majority]}


def markdown_table(summary: dict) -> str:
    """The summary as the paper's table: one row per setting, action-token accuracy at positions 1..K and
    the mean over 2..K (mean over seeds, min-max in brackets), closed-loop successes per seed."""
    k = summary["chunk"]
    head = ["setting", "K", "mask", "world"] + [f"acc@{j}" for j in range(1, k + 1)] + ["acc@2..K", "success (per seed)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary["rows"]:
        acc = np.asarray(r["position_accuracy"], dtype=float)
        cells = [_spread(list(acc[:, j]), ".3f") if not np.isnan(acc[:, j]).any() else "-" for j in range(k)]
        later = r["later_positions_accuracy"]
        successes = sum(r["successes"])
        episodes = sum(r["episodes"])
        per_seed = ", ".join(f"{s}/{n}" for s, n in zip(r["successes"], r["episodes"]))
        errors = sum(r["errors"])
        success = f"{successes}/{episodes} ({per_seed})" + (f", {errors} errors" if errors else "")
        lines.append("| " + " | ".join([f"({r['setting']}) {r['label']}", str(r["chunk"]), r["attention_mask"],
                                        f"{r['world_fraction']:g}", *cells,
                                        "-" if np.isnan(later).any() else _spread(later, ".3f"), success]) + " |")
    if summary.get("majority_position_accuracy"):
        maj = summary["majority_position_accuracy"]
        lines.append("| majority bin (baseline) | - | - | - | " + " | ".join(f"{x:.3f}" for x in maj)
                     + f" | {np.mean(maj[1:]) if k > 1 else float('nan'):.3f} | - |")
    out = "\n".join(lines)
    if summary["directions"]:
        out += "\n\n" + "\n".join(
            f"- {d['claim']}: {d['mean'][0]:.3f} vs {d['mean'][1]:.3f} -> "
            f"{'holds' if d['holds'] else 'does not hold'} on the means ({d['seeds_holding']} seed(s) strictly)"
            + (" - no success in either, so it says nothing" if d["claim"].endswith("successes") and
               not any(d["mean"]) else "")
            for d in summary["directions"])
    return out
