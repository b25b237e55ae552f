"""Shared helpers for the eqx::nn reference generators (run by hand, not by the tests).

Each tests/nn/fixtures_<family>.py builds PyTorch modules (Debian's python3-torch)
or writes the maths out in NumPy, in float64, and saves every input, parameter,
output and gradient as a small .npy file under tests/nn/fixtures/<case>/. The
C++ tests read them with eqx's own loader (tests/nn/fixtures.hpp), so the test
suite needs no PyTorch.

Run:  /usr/bin/python3 tests/nn/fixtures_<family>.py
Convention per case: inputs `x...`, parameters under their Equinox field names
(`weight`, `bias`, ...), the forward output `y`, a fixed cotangent `ct`, and the
gradients of sum(y * ct) as `grad_<name>` (`grad_x` for the input).
"""
import os
import shutil

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "fixtures")


def rng(seed):
    return np.random.default_rng(seed)


def save_case(case, arrays):
    """Writes {name: array} as tests/nn/fixtures/<case>/<name>.npy (replacing the case)."""
    d = os.path.join(ROOT, case)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    for name, a in arrays.items():
        a = np.asarray(a)
        if a.dtype == np.float32:
            a = a.astype(np.float64)
        if a.dtype == np.int64:
            a = a.astype(np.int32)
        np.save(os.path.join(d, name + ".npy"), np.require(a, requirements="C"))  # keeps 0-d arrays 0-d
    print(f"wrote {case}: {', '.join(sorted(arrays))}")


def t64(a):
    """A float64 torch tensor that requires grad."""
    import torch
    return torch.tensor(np.asarray(a, dtype=np.float64), dtype=torch.float64, requires_grad=True)


def np64(t):
    return t.detach().cpu().numpy().astype(np.float64)
