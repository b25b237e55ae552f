"""References for eqx::nn's activations (jax.nn's set) and nn::PReLU.

Values and gradients in float64. Each function `f` is applied to one input x
[3, 5] (values away from every kink: 0, +-1, 6), and its gradient is that of
sum(f(x) * ct):
  - torch.nn.functional where torch uses jax.nn's definition (relu, relu6,
    sigmoid, gelu with approximate='tanh' and exact, silu, logsigmoid,
    leaky_relu, elu, celu, selu, hardtanh, logsumexp, softmax, log_softmax),
    gradients by torch autograd;
  - softplus from NumPy's logaddexp(x, 0) (torch's softplus switches to x
    above a threshold), its gradient ct * sigmoid(x) written out;
  - standardize as jax.nn.standardize's formula (x - mean) / sqrt(mean(x^2) -
    mean^2 + eps) in torch ops, gradient by autograd.
PReLU: torch.nn.PReLU(num_parameters=1) whose weight [1] is Equinox's scalar
`negative_slope`.

Run: /usr/bin/python3 tests/nn/fixtures_activations.py
"""
import numpy as np
import torch
import torch.nn.functional as F

from fixture_lib import np64, rng, save_case, t64


def standardize(x, dim, eps=1e-5):
    mu = x.mean(dim, keepdim=True)
    var = (x * x).mean(dim, keepdim=True) - mu * mu
    return (x - mu) / torch.sqrt(var + eps)


TORCH = {
    "relu": F.relu,
    "relu6": F.relu6,
    "sigmoid": torch.sigmoid,
    "gelu": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_exact": F.gelu,
    "silu": F.silu,
    "log_sigmoid": F.logsigmoid,
    "leaky_relu": F.leaky_relu,  # slope 0.01
    "leaky_relu_02": lambda x: F.leaky_relu(x, 0.2),
    "elu": F.elu,
    "elu_05": lambda x: F.elu(x, 0.5),
    "celu": F.celu,
    "celu_2": lambda x: F.celu(x, 2.0),
    "selu": F.selu,
    "hard_tanh": F.hardtanh,
    "identity": lambda x: x,
    "softmax": lambda x: F.softmax(x, dim=-1),
    "softmax_0": lambda x: F.softmax(x, dim=0),
    "log_softmax": lambda x: F.log_softmax(x, dim=-1),
    "standardize": lambda x: standardize(x, -1),
    "standardize_01": lambda x: standardize(x, (0, 1), 1e-6),
}
# Functions whose output shape differs from the input's: one file per output.
REDUCTIONS = {
    "logsumexp": lambda x: torch.logsumexp(x, dim=(0, 1)),
    "logsumexp_0": lambda x: torch.logsumexp(x, dim=0),
    "logsumexp_1_keep": lambda x: torch.logsumexp(x, dim=1, keepdim=True),
}


def away_from_kinks(r, shape):
    x = r.normal(scale=3.0, size=shape)
    for k in (0.0, 1.0, -1.0, 6.0):
        x = np.where(np.abs(x - k) < 0.05, x + 0.2, x)
    return x


def activations_case():
    r = rng(10)
    x_np = away_from_kinks(r, (3, 5))
    x_np[0, 0] = 7.5  # above relu6's 6
    # Same-shape functions share one cotangent; their outputs and gradients
    # are stacked in the order of TORCH, then softplus: y [N, 3, 5], grad [N, 3, 5].
    ct = r.normal(size=x_np.shape)
    ys, grads = [], []
    for f in TORCH.values():
        x = t64(x_np)
        y = f(x)
        (y * torch.tensor(ct)).sum().backward()
        ys.append(np64(y))
        grads.append(np64(x.grad))
    # softplus: NumPy's logaddexp; d/dx log(1 + e^x) = sigmoid(x).
    ys.append(np.logaddexp(x_np, 0.0))
    grads.append(ct / (1.0 + np.exp(-x_np)))
    # log_sigmoid checked independently too: -logaddexp(-x, 0).
    assert np.allclose(ys[list(TORCH).index("log_sigmoid")], -np.logaddexp(-x_np, 0.0), rtol=1e-14, atol=1e-14)
    out = {"x": x_np, "ct": ct, "y": np.stack(ys), "grad": np.stack(grads)}
    for name, f in REDUCTIONS.items():
        x = t64(x_np)
        y = f(x)
        c = r.normal(size=tuple(y.shape))
        (y * torch.tensor(c)).sum().backward()
        out["y_" + name], out["ct_" + name], out["grad_" + name] = np64(y), c, np64(x.grad)
    print("order:", ", ".join(list(TORCH) + ["softplus"]))
    save_case("activations", out)


def prelu_case():
    r = rng(11)
    m = torch.nn.PReLU(num_parameters=1, init=0.25).double()
    with torch.no_grad():
        m.weight.fill_(0.3)
    x = t64(away_from_kinks(r, (7,)))
    y = m(x)
    ct = r.normal(size=tuple(y.shape))
    (y * torch.tensor(ct)).sum().backward()
    save_case("prelu", {"x": np64(x), "negative_slope": np64(m.weight).reshape(()), "y": np64(y), "ct": ct,
                        "grad_x": np64(x.grad), "grad_negative_slope": np64(m.weight.grad).reshape(())})


if __name__ == "__main__":
    activations_case()
    prelu_case()
