"""Safetensors interop for tests/io/safetensors_test.cpp, with NumPy only (struct + json + numpy;
no safetensors or torch package). Run by the test as /usr/bin/python3:

  safetensors_check.py write FILE   writes a file the way another producer might: JSON with spaces, keys not
                                    in data order, "__metadata__" last, data unaligned and in its own order
  safetensors_check.py check FILE   reads the file eqx::save_safetensors wrote for the test's `Net` and checks
                                    names, dtypes, shapes and values, and that its bytes are exactly what the
                                    reference writer (huggingface/safetensors, tensor.rs `prepare`) produces:
                                    compact JSON, "__metadata__" first, tensors by descending dtype alignment
                                    then by name, data in that order, header padded with spaces to 8 bytes.
Exits nonzero (an AssertionError) on any mismatch.
"""
import json
import struct
import sys

import numpy as np

# The reference's Dtype enum, in its order (its writer puts later entries first).
ORDER = ["BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ",
         "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64", "F64", "I64", "U64"]
NUMPY = {"F64": "<f8", "F32": "<f4", "U32": "<u4", "I32": "<i4", "BOOL": "|b1"}
CODE = {np.dtype(v): k for k, v in NUMPY.items()}

# What the test's Net holds (save_safetensors names it by key path).
EXPECTED = {
    "layers.0.weight": np.array([[0.5, -1, 2], [3.25, -0.125, 1e-3]], np.float32),
    "layers.0.bias": np.array([1.5, -2.5], np.float32),
    "layers.1.weight": np.array([[7, -8]], np.float32),
    "stats.counts": np.array([[-2147483648, 7], [0, 2147483647]], np.int32),
    "stats.mask": np.array([True, False, True]),
    "scale": np.array(0.1, np.float64),
    "ids": np.array([0, 4000000000, 4294967295], np.uint32),
    "empty": np.zeros((0,), np.float32),
    "extra.alpha": np.array([1e-300, -2.5], np.float64),
}
EXPECTED_METADATA = {"format": "pt", "producer": "eqx \u00e9"}


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), f"duplicate keys {keys}"
    return dict(pairs)


def reference_bytes(tensors, metadata):
    """The file huggingface/safetensors' `serialize` writes for {name: array} and metadata."""
    items = sorted(tensors.items(), key=lambda kv: (-ORDER.index(CODE[kv[1].dtype]), kv[0]))
    header, offset, data = {}, 0, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, a in items:
        raw = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": CODE[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        data += raw
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def read(path):
    """(tensors in offset order, metadata), checking the file as the reference reader does."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    assert n <= 100_000_000 and 8 + n <= len(blob), n
    header = json.loads(blob[8:8 + n].decode("utf-8"), object_pairs_hook=no_duplicates)
    metadata = header.pop("__metadata__", None) or {}
    assert all(isinstance(v, str) for v in metadata.values()), metadata
    entries = sorted(header.items(), key=lambda kv: tuple(kv[1]["data_offsets"]))
    buffer, covered, out = blob[8 + n:], 0, []
    for name, e in entries:
        begin, end = e["data_offsets"]
        assert begin == covered and end >= begin, (name, e)
        dt = np.dtype(NUMPY[e["dtype"]])
        count = int(np.prod(e["shape"], dtype=np.int64))
        assert end - begin == count * dt.itemsize, (name, e)
        out.append((name, np.frombuffer(buffer[begin:end], dtype=dt).reshape(e["shape"])))
        covered = end
    assert covered == len(buffer), (covered, len(buffer))
    return out, metadata


def check(path):
    tensors, metadata = read(path)
    names = [name for name, _ in tensors]
    assert sorted(names) == sorted(EXPECTED), names
    for name, a in tensors:
        want = EXPECTED[name]
        assert a.dtype == want.dtype and a.shape == want.shape, (name, a.dtype, a.shape, want.dtype, want.shape)
        assert np.array_equal(a, want), (name, a, want)
    assert metadata == EXPECTED_METADATA, metadata
    with open(path, "rb") as f:
        blob = f.read()
    want = reference_bytes(EXPECTED, EXPECTED_METADATA)
    assert blob == want, f"not the reference writer's bytes:\n{blob[:400]!r}\n{want[:400]!r}"


def write(path):
    arrays = [  # in data order
        ("mask", np.array([True, False, True])),
        ("step", np.array(-7, np.int32)),
        ("encoder.weight", (np.arange(6, dtype=np.float32) * 0.5 - 1).reshape(2, 3)),
        ("empty", np.zeros((0, 4), np.float32)),
        ("ids", np.array([[0, 1], [4000000000, 4294967295]], np.uint32)),
        ("encoder.bias", np.array([1e-300, -2.5, 3.25], np.float64)),
    ]
    header, offset, data = {}, 0, b""
    for name, a in reversed(arrays):  # JSON keys in another order than the data
        header[name] = {"shape": list(a.shape), "dtype": CODE[a.dtype], "data_offsets": None}
    for name, a in arrays:
        raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name]["data_offsets"] = [offset, offset + len(raw)]
        offset += len(raw)
        data += raw
    header["__metadata__"] = {"format": "np", "note": "h\u00e9llo \"q\"\n"}
    text = json.dumps(header).encode("utf-8") + b"   "  # spaces after ':' and ',', trailing padding
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


if __name__ == "__main__":
    {"write": write, "check": check}[sys.argv[1]](sys.argv[2])
