"""Reference trajectories for tests/optim/optim_test.cpp (run by hand, not by the tests).

Run:  /usr/bin/python3 tests/optim/fixtures_optim.py   (Debian's python3-torch + NumPy)

Every case optimises the same two-leaf problem in float64 for STEPS steps:
params w [3] and b [2,2], gradient g = coef * (p - target) (the gradient of
0.5 * sum(coef * (p - target)^2)), and writes the parameters after each step
as tests/optim/fixtures/<case>_w.npy [STEPS,3] and <case>_b.npy [STEPS,2,2].

Optimisers PyTorch shares with Optax are run with torch.optim, with the
hyperparameters mapped to Optax's conventions (see each case); where torch's
algorithm differs (Optax's rmsprop eps inside the square root, Optax's NAdam,
Lion, AdaBelief) Optax's formula is written out in NumPy here.
"""
import os

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures")
STEPS = 8

W0 = np.array([1.0, -2.0, 0.5])
B0 = np.array([[0.3, -0.7], [1.5, -0.1]])
COEF = {"w": np.array([1.0, 2.0, 3.0]), "b": np.array([[0.5, 1.5], [2.5, 1.0]])}
TARGET = {"w": np.array([0.5, 0.5, 0.5]), "b": np.array([[-1.0, 1.0], [0.0, 2.0]])}


def grad(name, p):
    return COEF[name] * (p - TARGET[name])


def save(case, traj):
    for name in ("w", "b"):
        np.save(os.path.join(OUT, f"{case}_{name}.npy"), np.stack(traj[name]).astype(np.float64))
    print("wrote", case)


def run_torch(case, make):
    w = torch.tensor(W0, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(B0, dtype=torch.float64, requires_grad=True)
    opt = make([w, b])
    traj = {"w": [], "b": []}
    for _ in range(STEPS):
        opt.zero_grad()
        w.grad = torch.tensor(grad("w", w.detach().numpy()))
        b.grad = torch.tensor(grad("b", b.detach().numpy()))
        opt.step()
        traj["w"].append(w.detach().numpy().copy())
        traj["b"].append(b.detach().numpy().copy())
    save(case, traj)


def run_numpy(case, step_fn, init_fn):
    """step_fn(g, state, p, t) -> (update, state); t counts from 1."""
    params = {"w": W0.copy(), "b": B0.copy()}
    states = {k: init_fn(v) for k, v in params.items()}
    traj = {"w": [], "b": []}
    for t in range(1, STEPS + 1):
        for k in ("w", "b"):
            u, states[k] = step_fn(grad(k, params[k]), states[k], params[k], t)
            params[k] = params[k] + u
            traj[k].append(params[k].copy())
    save(case, traj)


def main():
    os.makedirs(OUT, exist_ok=True)
    T = torch.optim
    # sgd(lr) / sgd(lr, momentum, nesterov): torch's buffer starts at g, as Optax's trace starts at 0 + g.
    run_torch("sgd", lambda p: T.SGD(p, lr=0.1))
    run_torch("sgd_momentum", lambda p: T.SGD(p, lr=0.1, momentum=0.9))
    run_torch("sgd_nesterov", lambda p: T.SGD(p, lr=0.1, momentum=0.9, nesterov=True))
    # adam: same formula; torch divides by sqrt(v)/sqrt(bc2) + eps, Optax by sqrt(v/bc2) + eps (equal).
    run_torch("adam", lambda p: T.Adam(p, lr=0.1, betas=(0.8, 0.95), eps=1e-8))
    # adamw: torch multiplies p by (1 - lr * wd) before the Adam step, which is Optax's
    # -lr * (adam + wd * p).
    run_torch("adamw", lambda p: T.AdamW(p, lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05))
    # rmsprop with torch's eps placement (Optax eps_in_sqrt=false), centered, momentum 0.9;
    # torch's alpha is Optax's decay. torch's momentum buffer accumulates g/denom and steps by lr*buf,
    # which is Optax's trace applied after scale_by_learning_rate.
    run_torch("rmsprop_torch", lambda p: T.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-8, centered=True, momentum=0.9))
    # adagrad: torch adds eps outside the sqrt, Optax inside; with eps = 0 both are g / sqrt(sum g^2).
    run_torch("adagrad", lambda p: T.Adagrad(p, lr=0.1, initial_accumulator_value=0.1, eps=0.0))
    # adamax: torch's exp_inf = max(b2 * exp_inf, |g| + eps) and step lr / bc1 * m / exp_inf, as Optax.
    run_torch("adamax", lambda p: T.Adamax(p, lr=0.1, betas=(0.9, 0.999), eps=1e-8))
    # radam with b2 = 0.9 so the rectified branch starts at step 6 (rho_t > 5). torch adds eps to
    # sqrt(v) before dividing by sqrt(bc2); the difference is below 1e-8 here.
    run_torch("radam", lambda p: T.RAdam(p, lr=0.1, betas=(0.9, 0.9), eps=1e-8))

    # Optax's rmsprop defaults: nu = 0.9 nu + 0.1 g^2, update -lr * g / sqrt(nu + 1e-8).
    def rms_step(g, nu, p, t):
        nu = 0.9 * nu + 0.1 * g * g
        return -0.01 * g / np.sqrt(nu + 1e-8), nu
    run_numpy("rmsprop", rms_step, lambda p: np.zeros_like(p))

    # Optax's nadam (scale_by_adam with nesterov): b1 = 0.9, b2 = 0.999, eps = 1e-8, lr = 0.1.
    def nadam_step(g, s, p, t):
        m, v = s
        b1, b2, eps = 0.9, 0.999, 1e-8
        m = (1 - b1) * g + b1 * m
        v = (1 - b2) * g * g + b2 * v
        m_hat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1 ** t)
        v_hat = v / (1 - b2 ** t)
        return -0.1 * m_hat / (np.sqrt(v_hat) + eps), (m, v)
    run_numpy("nadam", nadam_step, lambda p: (np.zeros_like(p), np.zeros_like(p)))

    # Optax's lion: b1 = 0.9, b2 = 0.99, weight_decay = 0.01, lr = 0.05.
    def lion_step(g, m, p, t):
        u = np.sign(0.1 * g + 0.9 * m) + 0.01 * p
        return -0.05 * u, 0.01 * g + 0.99 * m
    run_numpy("lion", lion_step, lambda p: np.zeros_like(p))

    # Optax's adabelief: b1 = 0.9, b2 = 0.999, eps = eps_root = 1e-16, lr = 0.1.
    def belief_step(g, s, p, t):
        m, v = s
        m = 0.1 * g + 0.9 * m
        v = 0.001 * (g - m) ** 2 + 0.999 * v + 1e-16
        m_hat = m / (1 - 0.9 ** t)
        v_hat = v / (1 - 0.999 ** t)
        return -0.1 * m_hat / (np.sqrt(v_hat) + 1e-16), (m, v)
    run_numpy("adabelief", belief_step, lambda p: (np.zeros_like(p), np.zeros_like(p)))


if __name__ == "__main__":
    main()
