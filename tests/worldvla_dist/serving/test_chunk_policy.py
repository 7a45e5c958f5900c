"""ChunkPolicy's decoder follows the mask its model was trained under (the paper's Table 4 ablation)."""

import numpy as np
import pytest

from worldvla_dist.decoding.reference_decoder import reference_decode_actions
from worldvla_dist.errors import ConfigError
from worldvla_dist.serving.chunk_policy import ChunkPolicy
from worldvla_dist.serving.protocol import PolicyRequest

from tests.conftest import make_tiny_model


def test_a_causal_policy_decodes_one_token_at_a_time_under_the_causal_mask(tokens, tiny_preset):
    model = make_tiny_model(tokens, tiny_preset, seed=200)
    size = tokens.images.geometry.height_px
    frames = [np.random.default_rng(i).integers(0, 256, (size, size, 3), dtype=np.uint8) for i in range(2)]
    request = PolicyRequest("open the top drawer", frames, 5, reply_to="")
    causal = ChunkPolicy(model, tokens, attention_mask="causal")
    prompt = tokens.samples.action_prompt(request.instruction, causal.encode_frames(frames))
    expected = tokens.actions.decode(reference_decode_actions(model, [prompt], 5, attention_mask="causal").numpy())[0]
    np.testing.assert_array_equal(causal.predict([request])[0], expected.astype(np.float32))
    action = ChunkPolicy(model, tokens).predict([request])[0]
    np.testing.assert_array_equal(action[0], expected[0].astype(np.float32))  # the first action sees the prompt only
    with pytest.raises(ConfigError, match="ChunkPolicy"):
        ChunkPolicy(model, tokens, attention_mask="full")
