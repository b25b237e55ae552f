"""Reference trajectories for tests/optim/optim_combine_test.cpp (run by hand, not by the tests).

Run:  /usr/bin/python3 tests/optim/fixtures_optim2.py   (Debian's python3-torch + NumPy)

The problem is fixtures_optim.py's: params w [3] and b [2,2] in float64, gradient
g = coef * (p - target), STEPS steps, the parameters after each step written as
tests/optim/fixtures/<case>_w.npy [STEPS,3] and <case>_b.npy [STEPS,2,2].

AdaDelta runs with torch.optim.Adadelta (its weight_decay adds wd * p to the
gradient first, as Optax's adadelta chain does). The others have no torch
counterpart with Optax's exact formula (torch's AMSGrad keeps the maximum of
the raw second moment, Optax of the bias-corrected one), so Optax's formulas
are written out here in NumPy, each leaf separately.
"""
import os

import numpy as np
import torch

from fixtures_optim import B0, STEPS, W0, grad, run_numpy, run_torch, save  # noqa: F401

HERE = os.path.dirname(os.path.abspath(__file__))


def zeros(p):
    return np.zeros_like(p)


def main():
    T = torch.optim
    run_torch("adadelta", lambda p: T.Adadelta(p, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.1))

    # amsgrad(0.1, b2 = 0.99): nu_max = max(nu_max, nu / (1 - b2^t)).
    def amsgrad_step(g, s, p, t):
        m, v, vmax = s
        b1, b2, eps = 0.9, 0.99, 1e-8
        m = (1 - b1) * g + b1 * m
        v = (1 - b2) * g * g + b2 * v
        vmax = np.maximum(vmax, v / (1 - b2 ** t))
        return -0.1 * (m / (1 - b1 ** t)) / (np.sqrt(vmax) + eps), (m, v, vmax)
    run_numpy("amsgrad", amsgrad_step, lambda p: (zeros(p), zeros(p), zeros(p)))

    # yogi(0.1): moments start at 1e-6; nu = nu - (1 - b2) sign(nu - g^2) g^2; eps = 1e-3.
    def yogi_step(g, s, p, t):
        m, v = s
        b1, b2, eps = 0.9, 0.999, 1e-3
        m = (1 - b1) * g + b1 * m
        v = v - (1 - b2) * np.sign(v - g * g) * g * g
        return -0.1 * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps), (m, v)
    run_numpy("yogi", yogi_step, lambda p: (np.full_like(p, 1e-6), np.full_like(p, 1e-6)))

    def trust(u, p, min_norm=0.0, coef=1.0, eps=0.0):
        pn = max(np.sqrt(np.sum(p * p)), min_norm)
        un = max(np.sqrt(np.sum(u * u)), min_norm)
        return u * (1.0 if pn == 0 or un == 0 else coef * pn / (un + eps))

    # lamb(0.1, weight_decay = 0.01): adam (eps 1e-6) + wd p, scaled by ||p|| / ||u||.
    def lamb_step(g, s, p, t):
        m, v = s
        b1, b2, eps = 0.9, 0.999, 1e-6
        m = (1 - b1) * g + b1 * m
        v = (1 - b2) * g * g + b2 * v
        u = (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps) + 0.01 * p
        return -0.1 * trust(u, p), (m, v)
    run_numpy("lamb", lamb_step, lambda p: (zeros(p), zeros(p)))

    # lars(0.1, weight_decay = 0.01): (g + wd p) scaled by 0.001 ||p|| / ||g + wd p||, times -lr,
    # then momentum 0.9 (trace after the learning rate).
    def lars_step(g, tr, p, t):
        u = -0.1 * trust(g + 0.01 * p, p, coef=0.001)
        tr = u + 0.9 * tr
        return tr, tr
    run_numpy("lars", lars_step, zeros)

    # fromage(0.1): m = 1 / sqrt(1 + lr^2); u = -lr m ||p|| / ||g|| g + (m - 1) p (min_norm 1e-6).
    def fromage_step(g, s, p, t):
        lr = 0.1
        m = 1 / np.sqrt(1 + lr * lr)
        return -lr * m * trust(g, p, min_norm=1e-6) + (m - 1) * p, s
    run_numpy("fromage", fromage_step, lambda p: None)

    # sign_sgd(0.05).
    run_numpy("sign_sgd", lambda g, s, p, t: (-0.05 * np.sign(g), s), lambda p: None)

    # novograd(0.1, weight_decay = 0.01): nu a scalar per leaf; the first step initialises.
    def novograd_step(g, s, p, t):
        m, v = s
        b1, b2, eps = 0.9, 0.25, 1e-6
        n2 = np.sum(g * g)
        v = n2 if t == 1 else (1 - b2) * n2 + b2 * v
        add = g / (np.sqrt(v) + eps) + 0.01 * p
        m = add if t == 1 else b1 * m + add
        return -0.1 * m, (m, v)
    run_numpy("novograd", novograd_step, lambda p: (zeros(p), 0.0))

    # chain(ema(0.9), scale(-0.1)): debiased EMA of the gradients.
    def ema_step(g, e, p, t):
        e = 0.1 * g + 0.9 * e
        return -0.1 * e / (1 - 0.9 ** t), e
    run_numpy("ema", ema_step, zeros)

    # chain(centralize(), sgd(0.1)): matrices lose their mean over the axes after the first.
    def centralize_step(g, s, p, t):
        if g.ndim > 1:
            g = g - g.mean(axis=tuple(range(1, g.ndim)), keepdims=True)
        return -0.1 * g, s
    run_numpy("centralize", centralize_step, lambda p: None)

    # chain(clip_by_block_rms(0.5), sgd(0.1)).
    def block_rms_step(g, s, p, t):
        return -0.1 * g / max(1.0, np.sqrt(np.mean(g * g)) / 0.5), s
    run_numpy("clip_by_block_rms", block_rms_step, lambda p: None)

    # adafactor: scale_by_factored_rms (min_dim_size_to_factor = 2, so b [2,2] is factored over
    # rows (axis 1, the later of two equal dims) and columns (axis 0); w [3] keeps the full v),
    # clip_by_block_rms(1), * lr (not negated), * max(rms(p), 1e-3), ema(momentum, no debias),
    # + weight_decay_rate * p, * -1. Decay at step t (from 0): 1 - (t + 1)^-0.8. eps = 1e-30.
    def make_adafactor(lr, momentum, wd):
        def step(g, s, p, t):
            vr, vc, v, m = s
            beta = 1.0 - float(t) ** -0.8
            g2 = g * g + 1e-30
            if g.ndim == 2:
                vr = beta * vr + (1 - beta) * g2.mean(axis=1)
                vc = beta * vc + (1 - beta) * g2.mean(axis=0)
                u = g * ((vr / vr.mean()) ** -0.5)[:, None] * (vc ** -0.5)[None, :]
            else:
                v = beta * v + (1 - beta) * g2
                u = g * v ** -0.5
            u = u / max(1.0, np.sqrt(np.mean(u * u)) / 1.0)
            u = u * lr
            u = u * max(np.sqrt(np.mean(p * p)), 1e-3)
            if momentum is not None:
                m = (1 - momentum) * u + momentum * m
                u = m
            u = u + wd * p
            return -u, (vr, vc, v, m)
        return step
    init = lambda p: (np.zeros(p.shape[0]), np.zeros(p.shape[1]), np.zeros_like(p), np.zeros_like(p)) \
        if p.ndim == 2 else (0.0, 0.0, np.zeros_like(p), np.zeros_like(p))
    run_numpy("adafactor", make_adafactor(1.0, None, 0.0), init)
    run_numpy("adafactor_full", make_adafactor(0.1, 0.9, 0.01), init)

    # sm3(0.1, momentum 0.9): b2 = 1 (accumulators are sums), eps = 1e-8; one accumulator per axis.
    def sm3_step(g, s, p, t):
        mus, nu = s
        if g.ndim < 2:
            prior = mus[0]
        else:
            prior = np.minimum(mus[0][:, None], mus[1][None, :])
        accum = g * g + prior
        up = g * np.where(accum > 0, 1 / np.sqrt(accum + 1e-8), 0.0)
        nu = 0.1 * up + 0.9 * nu
        mus = [accum] if g.ndim < 2 else [accum.max(axis=1), accum.max(axis=0)]
        return -0.1 * nu, (mus, nu)
    run_numpy("sm3", sm3_step, lambda p: ([np.zeros(n) for n in p.shape], np.zeros_like(p)))


if __name__ == "__main__":
    main()
