"""The project's one wire and file format: msgpack with a schema version, numpy arrays as
{"__nd__": bytes, "dtype", "shape"}. Never pickle: a message from the network is data, not code."""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

from worldvla_dist.errors import WorldVLAError

SCHEMA_VERSION = 1
_ARRAY = "__nd__"
_ALLOWED_DTYPES = {"uint8", "int8", "int16", "int32", "int64", "uint16", "uint32", "float16", "float32", "float64", "bool"}


class CodecError(WorldVLAError, ValueError):
    """A message that is not valid msgpack, has the wrong schema version or a malformed array."""


def _encode(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        if obj.dtype.name not in _ALLOWED_DTYPES:
            raise CodecError(f"codec: arrays of dtype {obj.dtype} are not supported")
        return {_ARRAY: np.ascontiguousarray(obj).tobytes(), "dtype": obj.dtype.name, "shape": list(obj.shape)}
    if isinstance(obj, np.generic):
        return obj.item()
    raise CodecError(f"codec: cannot encode {type(obj).__name__}")


def _decode(obj: dict) -> Any:
    if _ARRAY not in obj:
        return obj
    dtype, shape, raw = obj.get("dtype"), obj.get("shape"), obj[_ARRAY]
    if dtype not in _ALLOWED_DTYPES or not isinstance(shape, list) or not isinstance(raw, bytes):
        raise CodecError(f"codec: malformed array (dtype={dtype!r}, shape={shape!r})")
    expected = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if len(raw) != expected:
        raise CodecError(f"codec: array of shape {shape} and dtype {dtype} needs {expected} bytes, got {len(raw)}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def pack(payload: dict[str, Any]) -> bytes:
    """dict -> bytes, with the schema version added."""
    return msgpack.packb({"v": SCHEMA_VERSION, **payload}, default=_encode, use_bin_type=True)


def unpack(data: bytes, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """bytes -> dict; checks the schema version and that every `required` field is present."""
    try:
        message = msgpack.unpackb(data, object_hook=_decode, raw=False, strict_map_key=True)
    except CodecError:
        raise
    except Exception as e:  # msgpack raises several exception types for garbage
        raise CodecError(f"codec: not a msgpack message ({type(e).__name__}: {e})") from e
    if not isinstance(message, dict):
        raise CodecError(f"codec: expected a map, got {type(message).__name__}")
    if message.get("v") != SCHEMA_VERSION:
        raise CodecError(f"codec: schema version {message.get('v')!r}, this code reads {SCHEMA_VERSION}")
    missing = [f for f in required if f not in message]
    if missing:
        raise CodecError(f"codec: message lacks fields {missing}")
    return message
