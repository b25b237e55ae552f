"""References for nn::Linear (and nn::MLP, which is Linear layers and activations).

Linear: torch.nn.Linear(in, out) has weight [out, in] and bias [out], exactly
Equinox's layout, so the weights map one to one.
"""
import numpy as np
import torch

from fixture_lib import np64, rng, save_case, t64


def linear_case(case, n_in, n_out, use_bias, seed):
    r = rng(seed)
    lin = torch.nn.Linear(n_in, n_out, bias=use_bias).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(r.uniform(-1, 1, (n_out, n_in))))
        if use_bias:
            lin.bias.copy_(torch.tensor(r.uniform(-1, 1, (n_out,))))
    x = t64(r.normal(size=(n_in,)))
    y = lin(x)
    ct = r.normal(size=tuple(y.shape))
    (y * torch.tensor(ct)).sum().backward()
    out = {"x": np64(x), "weight": np64(lin.weight), "y": np64(y), "ct": ct,
           "grad_x": np64(x.grad), "grad_weight": np64(lin.weight.grad)}
    if use_bias:
        out["bias"] = np64(lin.bias)
        out["grad_bias"] = np64(lin.bias.grad)
    save_case(case, out)


if __name__ == "__main__":
    linear_case("linear", 5, 3, True, 0)
    linear_case("linear_nobias", 4, 6, False, 1)
