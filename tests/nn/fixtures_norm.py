"""References for nn::LayerNorm, GroupNorm, RMSNorm, WeightNorm and Embedding.

LayerNorm: torch.nn.LayerNorm(shape, elementwise_affine) on an x of exactly
  `shape`; its weight/bias have shape `shape`, Equinox's layout. The
  weight-only case is torch.nn.functional.layer_norm(x, shape, weight, None).
GroupNorm: torch.nn.GroupNorm(groups, C, affine) on x[None] (torch wants a
  batch axis); weight/bias [C] as in Equinox.
RMSNorm: torch 1.13 has none; the formula y = x / sqrt(mean(x^2) + eps) * w + b
  and its gradients written out by hand in NumPy (checked here against
  torch autograd of the same formula).
WeightNorm: torch.nn.utils.weight_norm(module, dim) on torch.nn.Linear and
  torch.nn.Conv2d: weight_v is the layer's weight (Equinox's v), weight_g
  is `g` (dim=None gives a 0-d g in torch, saved with Equinox's kept dims).
  g is set to values other than ||v|| so that it is tested as a parameter.
Embedding: torch.nn.Embedding(num, size): weight [num, size] as in Equinox,
  looked up at a list of indices with a repeat (gradients accumulate).
"""
import numpy as np
import torch

from fixture_lib import np64, rng, save_case, t64


def backward(y, r):
    ct = r.normal(size=tuple(y.shape))
    (y * torch.tensor(ct)).sum().backward()
    return ct


def layernorm_case(case, shape, use_weight, use_bias, seed):
    r = rng(seed)
    x = t64(r.normal(1.5, 2.0, size=shape))
    w = t64(r.uniform(0.5, 1.5, size=shape)) if use_weight else None
    b = t64(r.normal(size=shape)) if use_bias else None
    y = torch.nn.functional.layer_norm(x, shape, w, b, eps=1e-5)
    ct = backward(y, r)
    out = {"x": np64(x), "y": np64(y), "ct": ct, "grad_x": np64(x.grad)}
    if use_weight:
        out.update(weight=np64(w), grad_weight=np64(w.grad))
    if use_bias:
        out.update(bias=np64(b), grad_bias=np64(b.grad))
    # The module form agrees with the functional one (affine cases).
    if use_weight and use_bias:
        m = torch.nn.LayerNorm(shape, eps=1e-5, elementwise_affine=True).double()
        with torch.no_grad():
            m.weight.copy_(w)
            m.bias.copy_(b)
        assert np.allclose(np64(m(x)), out["y"], rtol=1e-14, atol=1e-14)
    save_case(case, out)


def groupnorm_case(case, groups, shape, affine, seed):
    r = rng(seed)
    c = shape[0]
    m = torch.nn.GroupNorm(groups, c, eps=1e-5, affine=affine).double()
    if affine:
        with torch.no_grad():
            m.weight.copy_(torch.tensor(r.uniform(0.5, 1.5, size=(c,))))
            m.bias.copy_(torch.tensor(r.normal(size=(c,))))
    x = t64(r.normal(-1.0, 3.0, size=shape))
    y = m(x[None])[0]
    ct = backward(y, r)
    out = {"x": np64(x), "y": np64(y), "ct": ct, "grad_x": np64(x.grad)}
    if affine:
        out.update(weight=np64(m.weight), bias=np64(m.bias), grad_weight=np64(m.weight.grad),
                   grad_bias=np64(m.bias.grad))
    save_case(case, out)


def rmsnorm_case(case, shape, affine, seed, eps=1e-5):
    r = rng(seed)
    x = r.normal(0.5, 2.0, size=shape)
    w = r.uniform(0.5, 1.5, size=shape) if affine else np.ones(shape)
    b = r.normal(size=shape) if affine else np.zeros(shape)
    n = x.size
    inv = 1.0 / np.sqrt(np.mean(x * x) + eps)
    y = x * inv * w + b
    ct = r.normal(size=shape)
    # d/dx of sum(ct * (x * inv * w + b)), inv = (mean(x^2) + eps)^(-1/2):
    # ct*w*inv + x * sum(ct*w*x) * d(inv)/d(mean) * 2/n, d(inv)/d(mean) = -inv^3/2.
    grad_x = ct * w * inv - x * np.sum(ct * w * x) * inv ** 3 / n
    grad_w = ct * x * inv
    grad_b = ct
    # Cross-check against torch autograd of the same formula.
    tx, tw, tb = t64(x), t64(w), t64(b)
    ty = tx * torch.rsqrt((tx * tx).mean() + eps) * tw + tb
    (ty * torch.tensor(ct)).sum().backward()
    for mine, theirs in [(y, ty), (grad_x, tx.grad), (grad_w, tw.grad), (grad_b, tb.grad)]:
        assert np.allclose(mine, np64(theirs), rtol=1e-12, atol=1e-12)
    out = {"x": x, "y": y, "ct": ct, "grad_x": grad_x}
    if affine:
        out.update(weight=w, bias=b, grad_weight=grad_w, grad_bias=grad_b)
    save_case(case, out)


def weightnorm_case(case, module, x_shape, dim, seed):
    r = rng(seed)
    module = module.double()
    with torch.no_grad():
        module.weight.copy_(torch.tensor(r.uniform(-1, 1, size=tuple(module.weight.shape))))
        module.bias.copy_(torch.tensor(r.uniform(-1, 1, size=tuple(module.bias.shape))))
    v0 = np64(module.weight)
    wn = torch.nn.utils.weight_norm(module, name="weight", dim=dim)
    g_init = np64(wn.weight_g)  # torch initialises g = ||v|| (norm over all dims but `dim`)
    with torch.no_grad():
        wn.weight_g.mul_(torch.tensor(r.uniform(0.5, 2.0, size=tuple(wn.weight_g.shape))))
    x = t64(r.normal(size=x_shape))
    y = wn(x[None])[0] if len(x_shape) > 1 else wn(x)
    ct = backward(y, r)
    keep = (1,) * v0.ndim  # Equinox keeps the reduced dims: g is [out, 1, ...] or [1, ..., 1]
    g_shape = keep if dim is None else (v0.shape[0],) + keep[1:]
    assert np.allclose(np64(wn.weight_v), v0)
    save_case(case, {"x": np64(x), "weight": v0, "bias": np64(wn.bias), "g_init": g_init.reshape(g_shape),
                     "g": np64(wn.weight_g).reshape(g_shape), "y": np64(y), "ct": ct, "grad_x": np64(x.grad),
                     "grad_weight": np64(wn.weight_v.grad), "grad_g": np64(wn.weight_g.grad).reshape(g_shape),
                     "grad_bias": np64(wn.bias.grad)})


def embedding_case(case, num, size, indices, seed):
    r = rng(seed)
    emb = torch.nn.Embedding(num, size).double()
    with torch.no_grad():
        emb.weight.copy_(torch.tensor(r.normal(size=(num, size))))
    idx = torch.tensor(indices, dtype=torch.int64)
    y = emb(idx)
    ct = backward(y, r)
    save_case(case, {"weight": np64(emb.weight), "indices": np.asarray(indices, dtype=np.int32), "y": np64(y),
                     "ct": ct, "grad_weight": np64(emb.weight.grad)})


if __name__ == "__main__":
    torch.manual_seed(0)
    layernorm_case("layernorm", (3, 4), True, True, 0)
    layernorm_case("layernorm_noaffine", (5,), False, False, 1)
    layernorm_case("layernorm_nobias", (6,), True, False, 2)
    groupnorm_case("groupnorm", 2, (4, 3, 2), True, 3)
    groupnorm_case("groupnorm_noaffine", 3, (3, 5), False, 4)
    rmsnorm_case("rmsnorm", (2, 3), True, 5)
    rmsnorm_case("rmsnorm_noaffine", (4,), False, 6)
    weightnorm_case("weightnorm_linear", torch.nn.Linear(5, 3), (5,), 0, 7)
    weightnorm_case("weightnorm_linear_all", torch.nn.Linear(4, 2), (4,), None, 8)
    weightnorm_case("weightnorm_conv", torch.nn.Conv2d(2, 3, (2, 3)), (2, 4, 5), 0, 9)
    embedding_case("embedding", 6, 4, [1, 4, 1, 5, 0], 10)
