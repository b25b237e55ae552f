"""References for nn::MultiheadAttention and nn::RotaryPositionalEmbedding.

MultiheadAttention, two independent references:
 * torch.nn.MultiheadAttention(embed_dim=query_size, num_heads, kdim=key_size,
   vdim=value_size, bias=..., batch_first=True), a batch of one. Its input
   projections map to Equinox's four Linears as
       query_proj.weight = q_proj_weight  (or in_proj_weight[0:E] when packed)
       key_proj.weight   = k_proj_weight  (or in_proj_weight[E:2E])
       value_proj.weight = v_proj_weight  (or in_proj_weight[2E:3E])
       query/key/value_proj.bias = in_proj_bias[0:E] / [E:2E] / [2E:3E]
       output_proj = out_proj (weight [E, E], bias [E])
   Both split the E projected channels into heads as [seq, heads, E/heads]
   and scale by 1/sqrt(E/heads). Torch's bool attn_mask is True where
   attention is NOT allowed, so torch mask = ~(Equinox mask); a per-head
   mask is torch's [batch*heads, q_seq, kv_seq] with batch 1. Torch can only
   have qk = vo = embed_dim/heads and output size = embed_dim and one bias
   flag for all four projections, so
 * a formula reference (mha_formula below, written from Equinox's maths in
   float64 torch tensors, used only for autograd) covers distinct
   output/qk/vo sizes, per-projection biases and a fully masked query row
   (Equinox sets masked logits to finfo.min, so such a row attends
   uniformly). The script also checks the formula against torch.

RotaryPositionalEmbedding (NumPy-style formula from equinox/nn/_embedding.py):
   freqs = theta ** (-arange(0, d, 2) / d)              [d/2]
   cos, sin = cos/sin(outer(arange(seq), freqs)), tiled twice  -> [seq, d]
   rotate_half(x) = concat(-x[:, d/2:], x[:, :d/2])
   y = x * cos + rotate_half(x) * sin
"""
import numpy as np
import torch

from fixture_lib import np64, rng, save_case, t64


def rope_formula(x, theta):
    seq, d = x.shape
    freqs = theta ** (-np.arange(0.0, d, 2) / d)
    ang = np.outer(np.arange(float(seq)), freqs)
    cos = torch.tensor(np.tile(np.cos(ang), (1, 2)))
    sin = torch.tensor(np.tile(np.sin(ang), (1, 2)))
    rot = torch.cat([-x[:, d // 2:], x[:, :d // 2]], dim=-1)
    return x * cos + rot * sin


def mha_formula(q, k, v, p, heads, mask, rope_theta=None):
    """Equinox's MultiheadAttention, one example. p: dict of weights/biases
    (None for an absent bias); mask: bool [q, kv] or [heads, q, kv] or None."""
    def proj(x, w, b):
        y = x @ w.T
        return y if b is None else y + b
    Q = proj(q, p["query_proj.weight"], p.get("query_proj.bias")).reshape(q.shape[0], heads, -1)
    K = proj(k, p["key_proj.weight"], p.get("key_proj.bias")).reshape(k.shape[0], heads, -1)
    V = proj(v, p["value_proj.weight"], p.get("value_proj.bias")).reshape(v.shape[0], heads, -1)
    if rope_theta is not None:
        Q = torch.stack([rope_formula(Q[:, h, :], rope_theta) for h in range(heads)], dim=1)
        K = torch.stack([rope_formula(K[:, h, :], rope_theta) for h in range(heads)], dim=1)
    logits = torch.einsum("shd,Shd->hsS", Q / np.sqrt(Q.shape[-1]), K)
    if mask is not None:
        m = torch.tensor(np.broadcast_to(mask, logits.shape))
        logits = torch.where(m, logits, torch.tensor(np.finfo(np.float64).min, dtype=torch.float64))
    w = torch.softmax(logits, dim=-1)
    attn = torch.einsum("hsS,Shd->shd", w, V).reshape(q.shape[0], -1)
    return proj(attn, p["output_proj.weight"], p.get("output_proj.bias"))


def random_mask(r, shape):
    m = r.uniform(size=shape) < 0.7
    m[..., 0] = True  # torch gives NaN for a fully masked row; keep one key visible
    return m


def torch_case(case, E, heads, kdim, vdim, q_len, kv_len, bias, mask_rank, seed):
    r = rng(seed)
    mha = torch.nn.MultiheadAttention(E, heads, bias=bias, kdim=kdim, vdim=vdim, batch_first=True).double()
    with torch.no_grad():
        for _, prm in mha.named_parameters():
            prm.copy_(torch.tensor(r.uniform(-0.7, 0.7, tuple(prm.shape))))
    q, k, v = t64(r.normal(size=(q_len, E))), t64(r.normal(size=(kv_len, kdim))), t64(r.normal(size=(kv_len, vdim)))
    mask = random_mask(r, (q_len, kv_len) if mask_rank == 2 else (heads, q_len, kv_len))
    y, _ = mha(q[None], k[None], v[None], attn_mask=torch.tensor(~mask), need_weights=False)
    y = y[0]
    ct = r.normal(size=tuple(y.shape))
    (y * torch.tensor(ct)).sum().backward()
    packed = mha.in_proj_weight is not None
    W = [mha.in_proj_weight[i * E:(i + 1) * E] for i in range(3)] if packed else \
        [mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight]
    gW = [mha.in_proj_weight.grad[i * E:(i + 1) * E] for i in range(3)] if packed else \
         [mha.q_proj_weight.grad, mha.k_proj_weight.grad, mha.v_proj_weight.grad]
    out = {"q": np64(q), "k": np64(k), "v": np64(v), "mask": mask, "y": np64(y), "ct": ct,
           "grad_q": np64(q.grad), "grad_k": np64(k.grad), "grad_v": np64(v.grad),
           "out_weight": np64(mha.out_proj.weight), "grad_out_weight": np64(mha.out_proj.weight.grad)}
    params = {"output_proj.weight": mha.out_proj.weight.detach()}
    for i, name in enumerate("qkv"):
        out[name + "_weight"], out["grad_" + name + "_weight"] = np64(W[i]), np64(gW[i])
        params[{"q": "query", "k": "key", "v": "value"}[name] + "_proj.weight"] = W[i].detach()
        if bias:
            out[name + "_bias"] = np64(mha.in_proj_bias[i * E:(i + 1) * E])
            out["grad_" + name + "_bias"] = np64(mha.in_proj_bias.grad[i * E:(i + 1) * E])
            params[{"q": "query", "k": "key", "v": "value"}[name] + "_proj.bias"] = mha.in_proj_bias[i * E:(i + 1) * E].detach()
    if bias:
        out["out_bias"], out["grad_out_bias"] = np64(mha.out_proj.bias), np64(mha.out_proj.bias.grad)
        params["output_proj.bias"] = mha.out_proj.bias.detach()
    # The mapping is right: Equinox's formula on the mapped weights gives torch's output.
    again = mha_formula(q.detach(), k.detach(), v.detach(), params, heads, mask)
    assert np.allclose(np64(again), np64(y), rtol=1e-13, atol=1e-13)
    save_case(case, out)


def formula_case(case, heads, sizes, q_len, kv_len, biases, seed, rope_theta=None, self_attention=False):
    """sizes: query, key, value, output, qk, vo; biases: which of q, k, v, out have one."""
    r = rng(seed)
    qs, ks, vs, os_, qk, vo = sizes
    shapes = {"q": (heads * qk, qs), "k": (heads * qk, ks), "v": (heads * vo, vs), "out": (os_, heads * vo)}
    names = {"q": "query_proj", "k": "key_proj", "v": "value_proj", "out": "output_proj"}
    leaves, params = {}, {}
    for n, shp in shapes.items():
        leaves[n + "_weight"] = t64(r.uniform(-0.7, 0.7, shp))
        params[names[n] + ".weight"] = leaves[n + "_weight"]
        if n in biases:
            leaves[n + "_bias"] = t64(r.uniform(-0.7, 0.7, shp[:1]))
            params[names[n] + ".bias"] = leaves[n + "_bias"]
    q = t64(r.normal(size=(q_len, qs)))
    if self_attention:
        k = v = q
        mask = None
    else:
        k, v = t64(r.normal(size=(kv_len, ks))), t64(r.normal(size=(kv_len, vs)))
        mask = random_mask(r, (heads, q_len, kv_len))
        mask[1, 0, :] = False  # head 1, query 0 sees nothing: uniform weights, as Equinox
    y = mha_formula(q, k, v, params, heads, mask, rope_theta)
    ct = r.normal(size=tuple(y.shape))
    (y * torch.tensor(ct)).sum().backward()
    out = {"q": np64(q), "y": np64(y), "ct": ct, "grad_q": np64(q.grad)}
    if not self_attention:
        out.update({"k": np64(k), "v": np64(v), "mask": mask, "grad_k": np64(k.grad), "grad_v": np64(v.grad)})
    for n, t in leaves.items():
        out[n], out["grad_" + n] = np64(t), np64(t.grad)
    save_case(case, out)


def rope_case(case, seq, d, theta, seed):
    r = rng(seed)
    x = t64(r.normal(size=(seq, d)))
    y = rope_formula(x, theta)
    ct = r.normal(size=(seq, d))
    (y * torch.tensor(ct)).sum().backward()
    save_case(case, {"x": np64(x), "y": np64(y), "ct": ct, "grad_x": np64(x.grad)})


if __name__ == "__main__":
    torch_case("mha_torch", 6, 2, 5, 4, 4, 5, True, 2, 20)
    torch_case("mha_torch_mask3", 8, 4, 8, 8, 3, 5, False, 3, 21)
    formula_case("mha_formula", 3, (5, 4, 6, 7, 2, 3), 4, 6, {"q", "out"}, 22)
    formula_case("mha_rope", 2, (8, 8, 8, 8, 4, 4), 5, 5, set(), 23, rope_theta=10000.0, self_attention=True)
    rope_case("rope", 5, 6, 10000.0, 24)
    rope_case("rope_theta", 3, 4, 100.0, 25)
