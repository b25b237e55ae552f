"""References for nn::BatchNorm and nn::SpectralNorm (Equinox's semantics).

BatchNorm: Equinox's two modes written out in NumPy (float64), as in
equinox/nn/_batch_norm.py: per channel, mean over the batch and the other
axes, biased variance around it; "ema" mode normalises by
(1-m)*batch + m*running (batch alone the first time) and stores that;
"batch" mode normalises by the batch statistics in training, keeps
hidden = m*hidden + (1-m)*batch (starting at zeros / ones) and a counter,
and in inference uses hidden / (1 - m**counter). The training-mode output of
"batch" mode and its gradients are also checked against torch.nn.BatchNorm1d
(training, affine), which normalises by the same biased batch statistics.

SpectralNorm: one power iteration on W (no gradient), sigma = u' W v', and
the wrapped Linear run with W / sigma, in torch with autograd; the initial
(u, v) are given, so the C++ test sets them in the state first.
"""
import numpy as np
import torch

from fixture_lib import np64, rng, save_case, t64


def stats(x):
    axes = (0,) + tuple(range(2, x.ndim))
    mean = x.mean(axis=axes)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    var = ((x - mean.reshape(shape)) ** 2).mean(axis=axes)
    return mean, np.maximum(var, 0.0)


def normalise(x, mean, var, w, b, eps):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * w.reshape(shape) + b.reshape(shape)


def batch_norm_case(case, mode, seed, momentum=0.9, eps=1e-5):
    r = rng(seed)
    n, c, length = 4, 3, 5
    w = r.uniform(0.5, 1.5, c)
    b = r.uniform(-0.5, 0.5, c)
    xs = [r.normal(size=(n, c, length)) * r.uniform(0.5, 2.0) + r.uniform(-1, 1) for _ in range(3)]
    x_inf = r.normal(size=(n, c, length))
    out = {"weight": w, "bias": b, "x_inference": x_inf}
    if mode == "ema":
        first, mean_run, var_run = True, np.zeros(c), np.zeros(c)
        for i, x in enumerate(xs):
            bm, bv = stats(x)
            if first:
                mean, var = bm, bv
            else:
                mean = (1 - momentum) * bm + momentum * mean_run
                var = (1 - momentum) * bv + momentum * var_run
            first, mean_run, var_run = False, mean, var
            out[f"x{i}"] = x
            out[f"y{i}"] = normalise(x, mean, var, w, b, eps)
        out["running_mean"], out["running_var"] = mean_run, var_run
        out["y_inference"] = normalise(x_inf, mean_run, var_run, w, b, eps)
    else:
        counter, hidden_mean, hidden_var = 0, np.zeros(c), np.ones(c)
        for i, x in enumerate(xs):
            mean, var = stats(x)
            counter += 1
            hidden_mean = hidden_mean * momentum + mean * (1 - momentum)
            hidden_var = hidden_var * momentum + var * (1 - momentum)
            out[f"x{i}"] = x
            out[f"y{i}"] = normalise(x, mean, var, w, b, eps)
        scale = 1 - momentum ** counter
        out["hidden_mean"], out["hidden_var"] = hidden_mean, hidden_var
        out["y_inference"] = normalise(x_inf, hidden_mean / scale, hidden_var / scale, w, b, eps)
        # Training output and gradients from torch (same biased batch statistics).
        bn = torch.nn.BatchNorm1d(c, eps=eps, affine=True).double().train()
        with torch.no_grad():
            bn.weight.copy_(torch.tensor(w))
            bn.bias.copy_(torch.tensor(b))
        x = t64(xs[0])
        y = bn(x)
        ct = r.normal(size=tuple(y.shape))
        (y * torch.tensor(ct)).sum().backward()
        assert np.allclose(np64(y), out["y0"], rtol=1e-12, atol=1e-12)
        out["ct"] = ct
        out["grad_x"] = np64(x.grad)
        out["grad_weight"] = np64(bn.weight.grad)
        out["grad_bias"] = np64(bn.bias.grad)
    save_case(case, out)


def spectral_norm_case(case, seed, eps=1e-12):
    r = rng(seed)
    n_in, n_out = 4, 3
    lin = torch.nn.Linear(n_in, n_out).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(r.uniform(-1, 1, (n_out, n_in))))
        lin.bias.copy_(torch.tensor(r.uniform(-1, 1, (n_out,))))
    u0 = r.normal(size=n_out)
    v0 = r.normal(size=n_in)
    with torch.no_grad():
        wt = lin.weight.detach()
        u = wt @ torch.tensor(v0)
        u = u / torch.clamp(torch.sqrt((u * u).sum()), min=eps)
        v = wt.T @ u
        v = v / torch.clamp(torch.sqrt((v * v).sum()), min=eps)
    x = t64(r.normal(size=n_in))
    sigma = torch.einsum("i,ij,j->", u, lin.weight, v)
    y = torch.nn.functional.linear(x, lin.weight / sigma, lin.bias)
    ct = r.normal(size=n_out)
    (y * torch.tensor(ct)).sum().backward()
    save_case(case, {"weight": np64(lin.weight), "bias": np64(lin.bias), "u0": u0, "v0": v0,
                     "u1": u.numpy(), "v1": v.numpy(), "x": np64(x), "y": np64(y), "ct": ct,
                     "grad_x": np64(x.grad), "grad_weight": np64(lin.weight.grad), "grad_bias": np64(lin.bias.grad),
                     "top_singular_value": np.linalg.svd(np64(lin.weight), compute_uv=False)[:1]})


if __name__ == "__main__":
    batch_norm_case("batch_norm_ema", "ema", 10)
    batch_norm_case("batch_norm_batch", "batch", 11)
    spectral_norm_case("spectral_norm", 12)
