"""References for nn::Conv*, nn::ConvTranspose* and the pooling layers (run by hand).

Conv: torch.nn.Conv1d/2d/3d, whose weight [C_out, C_in/groups, *k] is Equinox's
layout one to one; the bias [C_out] is saved reshaped to Equinox's [C_out, 1, ...].
Symmetric int padding uses the module's own `padding`/`padding_mode`
('zeros'/'reflect'/'replicate'/'circular', the same as jnp.pad's
constant/reflect/edge/wrap); asymmetric pairs and SAME/SAME_LOWER (computed here
from lax's rule) pad explicitly with torch.nn.functional.pad, then a VALID conv.
Pads wider than the input (which torch refuses for reflect/circular) take their
indices from numpy.pad of an index array (NumPy's definition of the modes).

ConvTranspose: Equinox's ConvTranspose with weight W is the transpose (the
vector-Jacobian product with respect to the input) of the forward conv with the
same stride, dilation, groups and padding whose weight is W with its spatial axes
flipped and its two channel axes swapped within each group. With symmetric int
padding that forward conv's transpose is torch.nn.ConvTranspose{1,2,3}d with
that (flipped, swapped) weight, `padding` = p and `output_padding` = a. Every
other case (asymmetric pairs, SAME/SAME_LOWER, CIRCULAR) is computed as
torch.autograd.grad of the forward conv (F.pad with the mode, then F.convNd)
w.r.t. its input, with create_graph so that the gradients of the result come
from a second backward pass. For SAME the forward input has size L*stride, and
its padding is lax's SAME rule for the size L*stride - output_padding (Equinox:
"output_padding reduces the calculated input shape").

Pools: torch.nn.MaxPool/AvgPool{1,2,3}d (count_include_pad=True, ceil_mode) where
their result is Equinox's; asymmetric padding and AvgPool's use_ceil (Equinox
adds `stride` to the right padding and still divides by prod(kernel)) pad with
F.pad (-inf for max, 0 for avg) and pool with no padding. Adaptive pools are
written out in NumPy from Equinox's bin rule (the first dim % target bins are
one element longer), gradients included, and checked against torch's adaptive
pools where the two rules agree (dims divisible by the target).
"""
import itertools
import math

import numpy as np
import torch
import torch.nn.functional as F

from fixture_lib import np64, rng, save_case, t64

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CONV_MOD = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}
CONVT_MOD = {1: torch.nn.ConvTranspose1d, 2: torch.nn.ConvTranspose2d, 3: torch.nn.ConvTranspose3d}
TORCH_MODE = {"ZEROS": "constant", "REFLECT": "reflect", "REPLICATE": "replicate", "CIRCULAR": "circular"}
NUMPY_MODE = {"REFLECT": "reflect", "REPLICATE": "edge", "CIRCULAR": "wrap"}


def tup(v, n):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


def same_pads(sizes, k, s, d, lower):
    """lax's SAME / SAME_LOWER padding for input sizes."""
    out = []
    for n, kk, ss, dd in zip(sizes, k, s, d):
        total = max((math.ceil(n / ss) - 1) * ss + dd * (kk - 1) + 1 - n, 0)
        small = total // 2
        out.append((total - small, small) if lower else (small, total - small))
    return out


def pad_pairs(padding, n):
    if isinstance(padding, int):
        return [(padding, padding)] * n
    if all(isinstance(p, int) for p in padding):
        return [(p, p) for p in padding]
    return [tuple(p) for p in padding]


def torch_pad(x, pairs, mode, value=0.0):
    """F.pad of a batched tensor with per-spatial-dim (lo, hi) pairs."""
    flat = [v for p in reversed(pairs) for v in p]
    if mode == "constant":
        return F.pad(x, flat, mode="constant", value=value)
    return F.pad(x, flat, mode=mode)


def numpy_index_pad(x, pairs, mode):
    """Pads x [1, C, *sp] along each spatial axis by indexing with numpy.pad(arange(n), mode)."""
    for i, (lo, hi) in enumerate(pairs):
        idx = np.pad(np.arange(x.shape[i + 2]), (lo, hi), mode=NUMPY_MODE[mode])
        x = torch.index_select(x, i + 2, torch.tensor(idx))
    return x


def finish(case, x, weight, bias, y, nsd, seed):
    r = rng(seed + 1000)
    ct = r.normal(size=tuple(y.shape[1:]))
    (y[0] * torch.tensor(ct)).sum().backward()
    out = {"x": np64(x), "weight": np64(weight), "y": np64(y[0]), "ct": ct,
           "grad_x": np64(x.grad), "grad_weight": np64(weight.grad)}
    if bias is not None:
        shape = (-1,) + (1,) * nsd
        out["bias"] = np64(bias).reshape(shape)
        out["grad_bias"] = np64(bias.grad).reshape(shape)
    save_case(case, out)


def conv_case(case, nsd, cin, cout, k, spatial, seed, stride=1, padding=0, dilation=1, groups=1,
              use_bias=True, mode="ZEROS", wide=False):
    r = rng(seed)
    k, s, d = tup(k, nsd), tup(stride, nsd), tup(dilation, nsd)
    w = t64(r.uniform(-1, 1, (cout, cin // groups) + k))
    b = t64(r.uniform(-1, 1, (cout,))) if use_bias else None
    x = t64(r.normal(size=(cin,) + tuple(spatial)))
    if isinstance(padding, str):
        pairs = same_pads(spatial, k, s, d, padding == "SAME_LOWER")
    else:
        pairs = pad_pairs(padding, nsd)
    symmetric = all(lo == hi for lo, hi in pairs) and not isinstance(padding, str)
    if symmetric and not wide:  # the torch module itself
        m = CONV_MOD[nsd](cin, cout, k, stride=s, padding=tuple(lo for lo, _ in pairs), dilation=d,
                          groups=groups, bias=use_bias, padding_mode=TORCH_MODE[mode].replace("constant", "zeros"))
        m = m.double()
        with torch.no_grad():
            m.weight.copy_(w)
            if use_bias:
                m.bias.copy_(b)
        finish(case, x, m.weight, m.bias if use_bias else None, m(x[None]), nsd, seed)
        return
    xb = x[None]
    xp = numpy_index_pad(xb, pairs, mode) if wide else torch_pad(xb, pairs, TORCH_MODE[mode])
    y = CONV[nsd](xp, w, b, stride=s, dilation=d, groups=groups)
    finish(case, x, w, b, y, nsd, seed)


def group_swap_flip(w, groups, nsd):
    """[C_out, C_in/g, *k] -> [C_in, C_out/g, *k] with the spatial axes flipped (torch's ConvTranspose layout)."""
    cout, cin_g = w.shape[:2]
    k = tuple(w.shape[2:])
    v = w.reshape((groups, cout // groups, cin_g) + k).transpose(1, 2).reshape((groups * cin_g, cout // groups) + k)
    return v.flip(tuple(range(2, 2 + nsd)))


def convt_case(case, nsd, cin, cout, k, spatial, seed, stride=1, padding=0, output_padding=0, dilation=1,
               groups=1, use_bias=True, mode="ZEROS"):
    r = rng(seed)
    k, s, d, a = tup(k, nsd), tup(stride, nsd), tup(dilation, nsd), tup(output_padding, nsd)
    w = t64(r.uniform(-1, 1, (cout, cin // groups) + k))
    b = t64(r.uniform(-1, 1, (cout,))) if use_bias else None
    x = t64(r.normal(size=(cin,) + tuple(spatial)))
    L = tuple(spatial)
    if isinstance(padding, str):
        n_fwd = [l * ss for l, ss in zip(L, s)]
        pairs = same_pads([n - aa for n, aa in zip(n_fwd, a)], k, s, d, padding == "SAME_LOWER")
    else:
        pairs = pad_pairs(padding, nsd)
        n_fwd = [(l - 1) * ss + dd * (kk - 1) + 1 - lo - hi + aa
                 for l, ss, dd, kk, (lo, hi), aa in zip(L, s, d, k, pairs, a)]
    wt = group_swap_flip(w, groups, nsd)
    if all(lo == hi for lo, hi in pairs) and not isinstance(padding, str) and mode == "ZEROS":
        # torch.nn.functional.conv_transpose{1,2,3}d (torch.nn.ConvTranspose's op) with the flipped, swapped weight
        y = getattr(F, f"conv_transpose{nsd}d")(x[None], wt, None, stride=s, padding=tuple(lo for lo, _ in pairs),
                                                 output_padding=a, groups=groups, dilation=d)
    else:
        # the vector-Jacobian product of the forward conv w.r.t. its input
        z = torch.zeros((1, cout) + tuple(n_fwd), requires_grad=True)
        fwd = CONV[nsd](torch_pad(z, pairs, TORCH_MODE[mode]), wt, stride=s, dilation=d, groups=groups)
        assert tuple(fwd.shape[2:]) == L, (fwd.shape, L)
        (y,) = torch.autograd.grad(fwd, z, grad_outputs=x[None], create_graph=True)
    if use_bias:
        y = y + b.reshape((1, -1) + (1,) * nsd)
    finish(case, x, w, b, y, nsd, seed)


def check_convt_mapping():
    """The two ConvTranspose references agree: torch's conv_transpose == the VJP of the forward conv."""
    r = rng(99)
    w = torch.tensor(r.normal(size=(6, 2, 3, 2)))
    x = torch.tensor(r.normal(size=(1, 4, 4, 3)))
    wt = group_swap_flip(w, 2, 2)
    a = F.conv_transpose2d(x, wt, stride=(2, 3), padding=(1, 0), output_padding=(1, 2), groups=2, dilation=(2, 1))
    z = torch.zeros((1, 6) + tuple(a.shape[2:]), requires_grad=True)
    (b,) = torch.autograd.grad(F.conv2d(F.pad(z, (0, 0, 1, 1)), wt, stride=(2, 3), dilation=(2, 1), groups=2), z,
                               grad_outputs=x)
    assert float((a - b).abs().max()) < 1e-12


POOL = {("max", 1): torch.nn.MaxPool1d, ("max", 2): torch.nn.MaxPool2d, ("max", 3): torch.nn.MaxPool3d,
        ("avg", 1): torch.nn.AvgPool1d, ("avg", 2): torch.nn.AvgPool2d, ("avg", 3): torch.nn.AvgPool3d}


def pool_case(case, kind, nsd, k, spatial, seed, stride=1, padding=0, use_ceil=False, channels=2):
    r = rng(seed)
    k, s = tup(k, nsd), tup(stride, nsd)
    pairs = pad_pairs(padding, nsd)
    x = t64(r.normal(size=(channels,) + tuple(spatial)))
    if use_ceil:  # Equinox: `stride` more on the right where the windows do not fit evenly
        pairs = [(lo, hi + ss if (n + lo + hi - kk) % ss else hi) for n, (lo, hi), kk, ss in zip(spatial, pairs, k, s)]
    padded = torch_pad(x[None], pairs, "constant", -math.inf if kind == "max" else 0.0)
    y = POOL[(kind, nsd)](k, s)(padded)  # no padding: every window is full, AvgPool divides by prod(k)
    symmetric = all(lo == hi for lo, hi in pad_pairs(padding, nsd))
    if symmetric and (kind == "max" or not use_ceil):  # the torch module with its own padding gives the same
        p = tuple(lo for lo, _ in pad_pairs(padding, nsd))
        opts = {"count_include_pad": True} if kind == "avg" else {}
        y2 = POOL[(kind, nsd)](k, s, p, ceil_mode=use_ceil, **opts)(x[None])
        assert y2.shape == y.shape and float((y2 - y).abs().max()) < 1e-12, case
        y = y2
    ct = r.normal(size=tuple(y.shape[1:]))
    (y[0] * torch.tensor(ct)).sum().backward()
    save_case(case, {"x": np64(x), "y": np64(y[0]), "ct": ct, "grad_x": np64(x.grad)})


def adaptive_bins(n, t):
    """Equinox's bins of an axis of size n into t: the first n % t are one element longer."""
    q, rem = divmod(n, t)
    sizes = [q + 1] * rem + [q] * (t - rem)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return [(int(a), int(a + b)) for a, b in zip(starts, sizes)]


def adaptive_case(case, kind, target, spatial, seed, channels=2):
    r = rng(seed)
    nsd = len(spatial)
    t = tup(target, nsd)
    x = r.normal(size=(channels,) + tuple(spatial))
    bins = [adaptive_bins(n, tt) for n, tt in zip(spatial, t)]
    y = np.zeros((channels,) + t)
    ct = r.normal(size=y.shape)
    gx = np.zeros_like(x)
    for c in range(channels):
        for out in itertools.product(*[range(tt) for tt in t]):
            sl = (c,) + tuple(slice(*bins[i][o]) for i, o in enumerate(out))
            block = x[sl]
            if kind == "avg":
                y[(c,) + out] = block.mean()
                gx[sl] += ct[(c,) + out] / block.size
            else:
                y[(c,) + out] = block.max()
                g = np.zeros(block.size)
                g[np.argmax(block)] = ct[(c,) + out]
                gx[sl] += g.reshape(block.shape)
    if all(n % tt == 0 for n, tt in zip(spatial, t)):  # equal bins: torch's adaptive pools agree
        mod = {"avg": [None, torch.nn.AdaptiveAvgPool1d, torch.nn.AdaptiveAvgPool2d, torch.nn.AdaptiveAvgPool3d],
               "max": [None, torch.nn.AdaptiveMaxPool1d, torch.nn.AdaptiveMaxPool2d, torch.nn.AdaptiveMaxPool3d]}
        xt = t64(x)
        yt = mod[kind][nsd](t)(xt[None])[0]
        (yt * torch.tensor(ct)).sum().backward()
        assert np.abs(np64(yt) - y).max() < 1e-12 and np.abs(np64(xt.grad) - gx).max() < 1e-12, case
    save_case(case, {"x": x, "y": y, "ct": ct, "grad_x": gx})


if __name__ == "__main__":
    torch.set_default_dtype(torch.float64)
    # --- Conv ---
    conv_case("conv1d_stride_pad", 1, 3, 4, 3, (9,), 10, stride=2, padding=1)
    conv_case("conv2d_groups_pairs", 2, 4, 6, (3, 2), (7, 6), 11, stride=(1, 2), padding=((1, 2), (0, 1)),
              dilation=(2, 1), groups=2)
    conv_case("conv2d_same", 2, 2, 3, (4, 3), (7, 6), 12, stride=(2, 1), padding="SAME")
    conv_case("conv2d_same_lower", 2, 2, 3, (4, 3), (7, 6), 12, stride=(2, 1), padding="SAME_LOWER")
    conv_case("conv2d_valid_nobias", 2, 3, 2, 2, (4, 5), 13, use_bias=False)
    conv_case("conv3d_perdim", 3, 2, 3, 2, (4, 3, 5), 14, padding=(1, 0, 1), dilation=(1, 2, 1))
    conv_case("conv2d_reflect", 2, 2, 3, 3, (5, 4), 15, padding=2, mode="REFLECT")
    conv_case("conv2d_replicate", 2, 2, 3, 3, (5, 4), 16, padding=(1, 2), stride=2, mode="REPLICATE")
    conv_case("conv1d_circular_same", 1, 2, 2, 4, (6,), 17, padding="SAME", mode="CIRCULAR")
    conv_case("conv2d_reflect_wide", 2, 1, 2, 2, (3, 2), 18, padding=((4, 3), (2, 5)), mode="REFLECT", wide=True)
    conv_case("conv1d_circular_wide", 1, 2, 1, 3, (3,), 19, padding=((7, 4),), mode="CIRCULAR", wide=True)
    conv_case("conv1d_replicate_lower", 1, 2, 2, 4, (5,), 20, padding="SAME_LOWER", mode="REPLICATE")
    # --- ConvTranspose ---
    convt_case("convt1d_torch", 1, 4, 2, 3, (5,), 30, stride=2, padding=1, output_padding=1)
    convt_case("convt2d_groups_pairs", 2, 4, 6, (3, 2), (4, 3), 31, stride=(2, 3), padding=((2, 0), (1, 1)),
               output_padding=(1, 0), dilation=(1, 2), groups=2)
    convt_case("convt2d_same", 2, 2, 3, 4, (3, 4), 32, stride=2, padding="SAME")
    convt_case("convt1d_same_lower_outpad", 1, 2, 2, 4, (5,), 33, stride=2, padding="SAME_LOWER", output_padding=1)
    convt_case("convt1d_same_wide_stride", 1, 2, 2, 2, (4,), 34, stride=3, padding="SAME")
    convt_case("convt3d_nobias", 3, 2, 2, 2, (2, 3, 2), 35, stride=(2, 1, 2), use_bias=False, groups=2)
    convt_case("convt2d_torch_dilated", 2, 3, 2, 3, (4, 3), 36, stride=(1, 2), padding=(2, 1), dilation=2,
               output_padding=(0, 1))
    convt_case("convt1d_circular", 1, 2, 3, 4, (5,), 37, stride=2, padding="SAME", mode="CIRCULAR")
    convt_case("convt2d_circular_lower", 2, 2, 2, (4, 3), (4, 3), 38, stride=(3, 2), padding="SAME_LOWER",
               mode="CIRCULAR")
    check_convt_mapping()
    # --- Pools ---
    pool_case("maxpool2d", "max", 2, 3, (7, 6), 50, stride=2, padding=1)
    pool_case("maxpool2d_ceil", "max", 2, (3, 2), (8, 7), 51, stride=(2, 2), padding=(1, 0), use_ceil=True)
    pool_case("maxpool1d_pairs", "max", 1, 3, (9,), 52, stride=2, padding=((3, 1),))
    pool_case("maxpool3d", "max", 3, 2, (4, 5, 3), 53, stride=(2, 1, 1), padding=(1, 0, 1))
    pool_case("avgpool2d", "avg", 2, 3, (7, 6), 54, stride=2, padding=1)
    pool_case("avgpool2d_ceil", "avg", 2, (3, 2), (8, 7), 55, stride=(2, 2), padding=(1, 0), use_ceil=True)
    pool_case("avgpool1d", "avg", 1, 4, (10,), 56, stride=3)
    pool_case("avgpool3d_pairs", "avg", 3, 2, (3, 4, 3), 57, padding=((2, 0), (0, 1), (1, 1)))
    adaptive_case("adaptive_avg2d", "avg", (3, 2), (8, 5), 60)
    adaptive_case("adaptive_max2d", "max", (3, 2), (8, 5), 61)
    adaptive_case("adaptive_avg1d_even", "avg", 3, (9,), 62)
    adaptive_case("adaptive_max3d", "max", (2, 3, 1), (5, 6, 3), 63)
    adaptive_case("adaptive_avg3d", "avg", 2, (3, 4, 5), 64)
