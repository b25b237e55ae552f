"""References for nn::GRUCell and nn::LSTMCell (one step and a whole sequence).

GRUCell: torch.nn.GRUCell(in, h) has weight_ih [3h, in] and weight_hh [3h, h]
(gate blocks r, z, n, as Equinox) and two biases b_ih, b_hh [3h]. Torch adds
b_hh_n inside r * (W_hn h + b_hh_n), exactly where Equinox adds bias_n, and
the other biases only ever appear summed, so
    Equinox bias   = b_ih + [b_hh_r, b_hh_z, 0]     bias_n = b_hh_n
and the gradients map as grad_bias = grad b_ih, grad_bias_n = grad b_hh[2h:]
(the script asserts grad b_hh[:2h] == grad b_ih[:2h], which this relies on).
LSTMCell: torch.nn.LSTMCell, gate blocks i, f, g, o as Equinox;
    Equinox bias = b_ih + b_hh                      grad_bias = grad b_ih.
Sequences: torch.nn.GRU / torch.nn.LSTM (one layer, batch of one) hold the
same parameters under the names weight_ih_l0, ..., so the same mapping holds.
"""
import numpy as np
import torch

from fixture_lib import np64, rng, save_case, t64


def set_params(mod, r, suffix=""):
    with torch.no_grad():
        for name, p in mod.named_parameters():
            p.copy_(torch.tensor(r.uniform(-0.8, 0.8, tuple(p.shape))))


def gru_params(mod, suffix, h, use_bias):
    out = {"weight_ih": np64(getattr(mod, "weight_ih" + suffix)), "weight_hh": np64(getattr(mod, "weight_hh" + suffix)),
           "grad_weight_ih": np64(getattr(mod, "weight_ih" + suffix).grad),
           "grad_weight_hh": np64(getattr(mod, "weight_hh" + suffix).grad)}
    if use_bias:
        b_ih, b_hh = getattr(mod, "bias_ih" + suffix), getattr(mod, "bias_hh" + suffix)
        bias = np64(b_ih).copy()
        bias[:2 * h] += np64(b_hh)[:2 * h]
        assert np.allclose(np64(b_ih.grad)[:2 * h], np64(b_hh.grad)[:2 * h], rtol=1e-14, atol=1e-14)
        out.update({"bias": bias, "bias_n": np64(b_hh)[2 * h:], "grad_bias": np64(b_ih.grad),
                    "grad_bias_n": np64(b_hh.grad)[2 * h:]})
    return out


def lstm_params(mod, suffix, use_bias):
    out = {"weight_ih": np64(getattr(mod, "weight_ih" + suffix)), "weight_hh": np64(getattr(mod, "weight_hh" + suffix)),
           "grad_weight_ih": np64(getattr(mod, "weight_ih" + suffix).grad),
           "grad_weight_hh": np64(getattr(mod, "weight_hh" + suffix).grad)}
    if use_bias:
        b_ih, b_hh = getattr(mod, "bias_ih" + suffix), getattr(mod, "bias_hh" + suffix)
        assert np.allclose(np64(b_ih.grad), np64(b_hh.grad), rtol=1e-14, atol=1e-14)
        out.update({"bias": np64(b_ih) + np64(b_hh), "grad_bias": np64(b_ih.grad)})
    return out


def gru_cell_case(case, n_in, h, use_bias, seed):
    r = rng(seed)
    cell = torch.nn.GRUCell(n_in, h, bias=use_bias).double()
    set_params(cell, r)
    x, hid = t64(r.normal(size=(n_in,))), t64(r.normal(size=(h,)))
    y = cell(x[None], hid[None])[0]
    ct = r.normal(size=(h,))
    (y * torch.tensor(ct)).sum().backward()
    save_case(case, {"x": np64(x), "h": np64(hid), "y": np64(y), "ct": ct, "grad_x": np64(x.grad),
                     "grad_h": np64(hid.grad), **gru_params(cell, "", h, use_bias)})


def lstm_cell_case(case, n_in, h, use_bias, seed):
    r = rng(seed)
    cell = torch.nn.LSTMCell(n_in, h, bias=use_bias).double()
    set_params(cell, r)
    x, hid, c = t64(r.normal(size=(n_in,))), t64(r.normal(size=(h,))), t64(r.normal(size=(h,)))
    yh, yc = cell(x[None], (hid[None], c[None]))
    ct_h, ct_c = r.normal(size=(h,)), r.normal(size=(h,))
    ((yh[0] * torch.tensor(ct_h)).sum() + (yc[0] * torch.tensor(ct_c)).sum()).backward()
    save_case(case, {"x": np64(x), "h": np64(hid), "c": np64(c), "y_h": np64(yh[0]), "y_c": np64(yc[0]),
                     "ct_h": ct_h, "ct_c": ct_c, "grad_x": np64(x.grad), "grad_h": np64(hid.grad),
                     "grad_c": np64(c.grad), **lstm_params(cell, "", use_bias)})


def gru_seq_case(case, n_in, h, steps, seed):
    """torch.nn.GRU over xs [T, in] from h0: every hidden state hs [T, h];
    loss = sum(hs * ct)."""
    r = rng(seed)
    gru = torch.nn.GRU(n_in, h).double()
    set_params(gru, r)
    xs, h0 = t64(r.normal(size=(steps, n_in))), t64(r.normal(size=(h,)))
    hs, _ = gru(xs[:, None, :], h0[None, None, :])
    hs = hs[:, 0, :]
    ct = r.normal(size=(steps, h))
    (hs * torch.tensor(ct)).sum().backward()
    save_case(case, {"xs": np64(xs), "h0": np64(h0), "hs": np64(hs), "ct": ct, "grad_xs": np64(xs.grad),
                     "grad_h0": np64(h0.grad), **gru_params(gru, "_l0", h, True)})


def lstm_seq_case(case, n_in, h, steps, seed):
    """torch.nn.LSTM over xs [T, in] from (h0, c0): hs [T, h] and the final c;
    loss = sum(hs * ct) + sum(c_T * ct_c)."""
    r = rng(seed)
    lstm = torch.nn.LSTM(n_in, h).double()
    set_params(lstm, r)
    xs, h0, c0 = t64(r.normal(size=(steps, n_in))), t64(r.normal(size=(h,))), t64(r.normal(size=(h,)))
    hs, (_, cT) = lstm(xs[:, None, :], (h0[None, None, :], c0[None, None, :]))
    hs, cT = hs[:, 0, :], cT[0, 0, :]
    ct, ct_c = r.normal(size=(steps, h)), r.normal(size=(h,))
    ((hs * torch.tensor(ct)).sum() + (cT * torch.tensor(ct_c)).sum()).backward()
    save_case(case, {"xs": np64(xs), "h0": np64(h0), "c0": np64(c0), "hs": np64(hs), "c_final": np64(cT),
                     "ct": ct, "ct_c": ct_c, "grad_xs": np64(xs.grad), "grad_h0": np64(h0.grad),
                     "grad_c0": np64(c0.grad), **lstm_params(lstm, "_l0", True)})


if __name__ == "__main__":
    gru_cell_case("gru_cell", 4, 3, True, 10)
    gru_cell_case("gru_cell_nobias", 3, 5, False, 11)
    lstm_cell_case("lstm_cell", 4, 3, True, 12)
    lstm_cell_case("lstm_cell_nobias", 2, 4, False, 13)
    gru_seq_case("gru_seq", 3, 4, 6, 14)
    lstm_seq_case("lstm_seq", 3, 2, 5, 15)
