"""Equinox-layout .eqx files, written by NumPy alone, for tests/nn/eqx_files_test.cpp.

An .eqx file (equinox.tree_serialise_leaves) is one np.save record per leaf of
the model, in JAX's flatten order, with no header (reference: equinox.md §2).
This script writes such files for three models by hand, leaf by leaf, exactly
as Equinox would for the same modules, so the C++ test can check that eqx
loads them into its own layers and writes the same bytes back:

  mlp.eqx        eqx.nn.MLP(in_size=4, out_size=3, width_size=5, depth=2)
                 layers[i].weight, layers[i].bias for i = 0, 1, 2
                 (activation / final_activation are functions: not written;
                 the sizes and use_bias flags are static: not written).
  cnn.eqx        CNN(conv=Conv2d(1, 2, 3), norm=BatchNorm(2, "batch"),
                     pool=MaxPool2d(2), linear=Linear(18, 3))
                 conv.weight [2,1,3,3], conv.bias [2,1,1],
                 norm.weight [2], norm.bias [2],
                 norm.inference (|b1: a dynamic Python bool),
                 norm's StateIndexes write nothing (after make_with_state their
                 `init` is a field-less sentinel Module; `marker` is static),
                 norm.axis_name (a string: skipped),
                 pool.init (<f8 -inf: MaxPool's dynamic Python float;
                 pool.operation is a function: skipped),
                 linear.weight [3,18], linear.bias [3].
  cnn_state.eqx  the model's nn.State: its values in insertion order (the
                 order make_with_state met the StateIndexes): BatchNorm's
                 ema_first_time_index (bool[]), then ema_state_index
                 (running mean f32[2], running var f32[2]).
  mha.eqx        eqx.nn.MultiheadAttention(num_heads=2, query_size=4,
                 use_query_bias=True, use_output_bias=True, dropout_p=0.1,
                 inference=True): query_proj.weight, query_proj.bias,
                 key_proj.weight, value_proj.weight (their biases are None:
                 nothing written), output_proj.weight, output_proj.bias,
                 dropout.p (<f8), dropout.inference (|b1).

Beside them: the inputs and the outputs computed here by the layers'
formulas written out in NumPy (float64 from the float32 parameters), the
CNN's BatchNorm in inference mode with the saved running statistics.

Run:  /usr/bin/python3 tests/nn/fixtures_eqx_files.py
"""
import os

import numpy as np

from fixture_lib import rng, save_case

CASE = "eqx_files"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", CASE)


def write_eqx(name, leaves):
    """One np.save record per leaf, as tree_serialise_leaves does (jnp.save is np.save)."""
    with open(os.path.join(OUT, name), "wb") as f:
        for leaf in leaves:
            if leaf is None:  # None / functions / strings: nothing written
                continue
            np.save(f, leaf)


def f32(r, *shape, scale=1.0):
    return (r.uniform(-1, 1, size=shape) * scale).astype(np.float32)


def relu(x):
    return np.maximum(x, 0)


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def main():
    r = rng(2026)
    arrays = {}

    # --- (a) MLP(4 -> 3, width 5, depth 2), relu hidden, identity final ---
    sizes = [(4, 5), (5, 5), (5, 3)]
    mlp = [(f32(r, o, i, scale=0.5), f32(r, o, scale=0.5)) for i, o in sizes]
    mlp_x = f32(r, 3, 4, scale=2.0)  # three examples
    h = mlp_x.astype(np.float64)
    for k, (w, b) in enumerate(mlp):
        h = h @ w.astype(np.float64).T + b
        if k + 1 < len(mlp):
            h = relu(h)
    arrays["mlp_x"], arrays["mlp_y"] = mlp_x, h

    # --- (b) Conv2d(1, 2, 3) -> BatchNorm(2) -> MaxPool2d(2) (stride 1, Equinox's default) -> Linear(18, 3) ---
    conv_w, conv_b = f32(r, 2, 1, 3, 3, scale=0.4), f32(r, 2, 1, 1, scale=0.4)
    bn_w = (1 + f32(r, 2, scale=0.3)).astype(np.float32)
    bn_b = f32(r, 2, scale=0.3)
    bn_inference = False  # saved from training, as Equinox models usually are
    running_mean = f32(r, 2, scale=0.5)
    running_var = (0.5 + r.uniform(0, 1, size=2)).astype(np.float32)
    lin_w, lin_b = f32(r, 3, 18, scale=0.3), f32(r, 3, scale=0.3)
    cnn_x = f32(r, 3, 1, 6, 6, scale=1.5)  # three examples [C=1, H=6, W=6]

    x = cnn_x.astype(np.float64)
    cw, cb = conv_w.astype(np.float64), conv_b.astype(np.float64)
    conv = np.zeros((3, 2, 4, 4))
    for i in range(4):
        for j in range(4):
            patch = x[:, :, i:i + 3, j:j + 3]  # [B, 1, 3, 3]
            conv[:, :, i, j] = np.einsum("bchw,ochw->bo", patch, cw)
    conv += cb[None]
    eps = 1e-5
    norm = (conv - running_mean.astype(np.float64)[None, :, None, None]) / np.sqrt(
        running_var.astype(np.float64)[None, :, None, None] + eps)
    norm = norm * bn_w.astype(np.float64)[None, :, None, None] + bn_b.astype(np.float64)[None, :, None, None]
    pooled = np.zeros((3, 2, 3, 3))
    for i in range(3):
        for j in range(3):
            pooled[:, :, i, j] = norm[:, :, i:i + 2, j:j + 2].max(axis=(2, 3))
    cnn_y = pooled.reshape(3, 18) @ lin_w.astype(np.float64).T + lin_b
    arrays["cnn_x"], arrays["cnn_y"] = cnn_x, cnn_y
    arrays["cnn_running_mean"], arrays["cnn_running_var"] = running_mean, running_var

    # --- (c) MultiheadAttention(2 heads, query_size 4): qk = vo = 2 ---
    wq, bq = f32(r, 4, 4), f32(r, 4, scale=0.3)
    wk, wv = f32(r, 4, 4), f32(r, 4, 4)
    wo, bo = f32(r, 4, 4), f32(r, 4, scale=0.3)
    dropout_p, dropout_inference = 0.1, True
    q_in, kv_in = f32(r, 5, 4, scale=1.5), f32(r, 6, 4, scale=1.5)
    d = lambda a: a.astype(np.float64)
    qh = (d(q_in) @ d(wq).T + d(bq)).reshape(5, 2, 2)
    kh = (d(kv_in) @ d(wk).T).reshape(6, 2, 2)
    vh = (d(kv_in) @ d(wv).T).reshape(6, 2, 2)
    logits = np.einsum("shd,Shd->hsS", qh / np.sqrt(2.0), kh)
    attn = np.einsum("hsS,Shd->shd", softmax(logits), vh).reshape(5, 4)
    mha_y = attn @ d(wo).T + d(bo)
    arrays["mha_query"], arrays["mha_kv"], arrays["mha_y"] = q_in, kv_in, mha_y

    save_case(CASE, arrays)  # recreates the folder, so the .eqx files come after it

    write_eqx("mlp.eqx", [a for w, b in mlp for a in (w, b)])
    write_eqx("cnn.eqx", [conv_w, conv_b, bn_w, bn_b, bn_inference, None,  # axis_name "batch": skipped
                          -np.inf,  # MaxPool2d's init: a Python float -> <f8
                          lin_w, lin_b])
    write_eqx("cnn_state.eqx", [np.array(False), running_mean, running_var])
    write_eqx("mha.eqx", [wq, bq, None, wk, None, wv, None, wo, bo, dropout_p, dropout_inference])
    # Python scalars: np.save(f, -inf) writes <f8 (), np.save(f, True) |b1 (): what jnp.save does with them.
    print("wrote mlp.eqx, cnn.eqx, cnn_state.eqx, mha.eqx")


if __name__ == "__main__":
    main()
