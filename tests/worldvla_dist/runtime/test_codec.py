import msgpack
import numpy as np
import pytest

from worldvla_dist.runtime.codec import CodecError, pack, unpack


def test_round_trip_with_arrays():
    image = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    msg = unpack(pack({"image": image, "ids": np.arange(5, dtype=np.int32), "name": "x", "n": np.int64(3)}), ("image",))
    assert np.array_equal(msg["image"], image) and msg["image"].dtype == np.uint8
    assert msg["ids"].tolist() == [0, 1, 2, 3, 4] and msg["name"] == "x" and msg["n"] == 3 and msg["v"] == 1


@pytest.mark.parametrize("blob, message", [
    (b"\xc1garbage", "not a msgpack message"),
    (msgpack.packb([1, 2]), "expected a map"),
    (msgpack.packb({"v": 99}), "schema version 99"),
    (msgpack.packb({"v": 1, "a": {"__nd__": b"abc", "dtype": "float32", "shape": [2]}}), "needs 8 bytes, got 3"),
    (msgpack.packb({"v": 1, "a": {"__nd__": b"abc", "dtype": "object", "shape": [3]}}), "malformed array"),
])
def test_bad_messages_are_named(blob, message):
    with pytest.raises(CodecError, match=message):
        unpack(blob)


def test_required_fields_and_no_pickle():
    with pytest.raises(CodecError, match=r"lacks fields \['trial'\]"):
        unpack(pack({"task": 1}), ("task", "trial"))
    with pytest.raises(CodecError, match="cannot encode"):
        pack({"obj": object()})
