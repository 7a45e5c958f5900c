"""Decoding speed on the tiny-cpu preset (M = 2 history frames): the reference one-token decoder vs
the parallel chunk decoder at K = 5 and 10, B = 1 and 8; and next-frame tokens/s at B = 1 vs 8.

Both action decoders start with the same prompt forward (one pass over text + M images). The table
gives end-to-end latency (what a policy call costs) and, apart, the decode steps after the prompt
(latency minus the prompt forward timed alone), which is where the two decoders differ.

    python bench/decode.py            # a few repeats per cell
    python bench/decode.py --quick    # under a minute

Prints a table, then one JSON line: each figure a ratio measured in this run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np
import torch

from worldvla_dist.decoding.next_frame import generate_next_frames
from worldvla_dist.decoding.parallel_decoder import parallel_decode_actions
from worldvla_dist.decoding.reference_decoder import reference_decode_actions
from worldvla_dist.decoding.state import encode_prompts
from worldvla_dist.model.presets import MODEL_PRESETS
from worldvla_dist.model.worldvla import WorldVLA
from worldvla_dist.sequences.token_space import TokenSpace


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="two timed repeats per cell (under a minute)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    repeats = 2 if args.quick else 5

    torch.manual_seed(0)
    preset = MODEL_PRESETS.get("tiny-cpu")
    tokens = TokenSpace.for_preset(preset)
    model = WorldVLA.build(preset, tokens.vocab, tokens.images.vqgan.cfg).eval()
    rng = np.random.default_rng(0)
    codes = torch.as_tensor(rng.integers(0, tokens.vocab.num_image_codes, (16, tokens.layout.rows, tokens.layout.cols)))

    rows, figures = [], {}
    for k in (5, 10):
        for b in (1, 8):
            prompts = [tokens.samples.action_prompt("put the bowl on the plate", [codes[2 * i], codes[2 * i + 1]])
                       for i in range(b)]
            prompt = timed(lambda: encode_prompts(model, prompts), repeats)
            ref = timed(lambda: reference_decode_actions(model, prompts, k), repeats)
            par = timed(lambda: parallel_decode_actions(model, prompts, k), repeats)
            steps = (ref - prompt) / (par - prompt)
            rows.append((f"actions K={k} B={b} end-to-end", f"{ref * 1e3:9.1f} ms", f"{par * 1e3:9.1f} ms", f"{ref / par:6.2f}x"))
            rows.append((f"  after prompt ({prompt * 1e3:.0f} ms)", f"{(ref - prompt) * 1e3:9.1f} ms",
                         f"{(par - prompt) * 1e3:9.1f} ms", f"{steps:6.2f}x"))
            rows.append(("  model steps", f"{9 * k - 2:9d}", f"{7:9d}", f"{(9 * k - 2) / 7:6.2f}x"))
            figures[f"parallel_speedup_k{k}_b{b}"] = round(ref / par, 3)
            figures[f"parallel_speedup_after_prompt_k{k}_b{b}"] = round(steps, 3)

    frame_tps = {}
    for b in (1, 8):
        prompts = [tokens.samples.world_prompt(codes[i], rng.uniform(-0.3, 0.3, 7)) for i in range(b)]
        seconds = timed(lambda: generate_next_frames(model, tokens.layout, prompts), repeats)
        frame_tps[b] = b * tokens.layout.num_tokens / seconds
    rows.append(("next frame tokens/s B=1 | B=8", f"{frame_tps[1]:9.0f}", f"{frame_tps[8]:9.0f}",
                 f"{frame_tps[8] / frame_tps[1]:6.2f}x"))
    figures["next_frame_tokens_per_s_b8_over_b1"] = round(frame_tps[8] / frame_tps[1], 3)

    header = ("case", "reference", "parallel", "ratio")
    print(f"{header[0]:34s} {header[1]:>12s} {header[2]:>12s} {header[3]:>8s}")
    for r in rows:
        print(f"{r[0]:34s} {r[1]:>12s} {r[2]:>12s} {r[3]:>8s}")
    print(json.dumps({"bench": "decode", "preset": preset.name, "history_frames": 2, "quick": args.quick,
                      "threads": args.threads, "cpu_count": os.cpu_count(), "machine": platform.machine(),
                      "torch": torch.__version__, **figures}))


if __name__ == "__main__":
    main()
