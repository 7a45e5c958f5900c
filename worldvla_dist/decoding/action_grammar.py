"""The layout of an action answer: K blocks `[BOA] 7 bins [EOA]`; bins are the only free choices."""

from __future__ import annotations

from worldvla_dist.tokenizers.action_tokenizer import ACTION_DIM

BLOCK_LEN = ACTION_DIM + 2  # BOA, 7 bins, EOA
