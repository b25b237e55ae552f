"""References for nn::MLP: a torch.nn.Sequential of torch.nn.Linear layers with
an activation module after each hidden layer and the final activation after
the last, the layer Equinox's MLP computes.

Weight mapping: MLP.layers[i].weight / .bias = the i-th torch.nn.Linear's
weight [out, in] / bias [out], saved as weight<i> / bias<i> (and their
gradients as grad_weight<i> / grad_bias<i>) for the loss sum(y * ct).

Run: /usr/bin/python3 tests/nn/fixtures_mlp.py
"""
import numpy as np
import torch

from fixture_lib import np64, rng, save_case, t64


class XTanhX(torch.nn.Module):
    """The custom activation of the C++ test: x * tanh(x)."""

    def forward(self, x):
        return x * torch.tanh(x)


def mlp_case(case, n_in, n_out, width, depth, act, final_act, use_bias, use_final_bias, seed):
    r = rng(seed)
    sizes = [n_in] + [width] * depth + [n_out]
    mods, linears = [], []
    for i in range(depth + 1):
        last = i == depth
        lin = torch.nn.Linear(sizes[i], sizes[i + 1], bias=use_final_bias if last else use_bias).double()
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(r.uniform(-1, 1, lin.weight.shape)))
            if lin.bias is not None:
                lin.bias.copy_(torch.tensor(r.uniform(-1, 1, lin.bias.shape)))
        linears.append(lin)
        mods += [lin, final_act() if last else act()]
    net = torch.nn.Sequential(*mods)
    x = t64(r.normal(size=(n_in,)))
    y = net(x)
    ct = r.normal(size=tuple(y.shape))
    (y * torch.tensor(ct)).sum().backward()
    out = {"x": np64(x), "y": np64(y), "ct": ct, "grad_x": np64(x.grad)}
    for i, lin in enumerate(linears):
        out[f"weight{i}"], out[f"grad_weight{i}"] = np64(lin.weight), np64(lin.weight.grad)
        if lin.bias is not None:
            out[f"bias{i}"], out[f"grad_bias{i}"] = np64(lin.bias), np64(lin.bias.grad)
    save_case(case, out)


if __name__ == "__main__":
    # relu / identity, with biases: Equinox's defaults.
    mlp_case("mlp", 3, 2, 5, 2, torch.nn.ReLU, torch.nn.Identity, True, True, 20)
    # depth 0: one Linear, then the final activation.
    mlp_case("mlp_depth0", 4, 3, 7, 0, torch.nn.ReLU, torch.nn.Sigmoid, True, True, 21)
    # nn::gelu (tanh approximation), hidden layers without bias.
    mlp_case("mlp_gelu", 3, 4, 6, 1, lambda: torch.nn.GELU(approximate="tanh"), torch.nn.Identity, False, True, 22)
    # a custom activation x * tanh(x), log_sigmoid at the end, no final bias.
    mlp_case("mlp_custom", 2, 3, 4, 3, XTanhX, torch.nn.LogSigmoid, True, False, 23)
