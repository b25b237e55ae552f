#!/usr/bin/env python3
"""eqx beside the peers: one markdown table and gnuplot charts from one run.

usage: table.py RAW.jsonl [RAW2.jsonl ...] --out DIR [--readme README.md]

Reads the JSON lines the peers (../shared/peers) and eqx_workloads print,
takes the median of the per-run medians when given several files, and
writes DIR/compare.md (printed too), DIR/compare.png (µs per step, log
scale, 1 thread) and, when the run has sweep rows, DIR/sweep.png. With
--readme, the tables also replace the part of that file between the lines
<!-- compare:begin --> and <!-- compare:end -->.
"""
import json
import os
import shutil
import subprocess
import sys

WORKLOADS = ["W1", "W2", "W3", "W4", "W5", "W6"]
NAMES = {"W1": "W1 tiny MLP train", "W2": "W2 MNIST MLP train (Adam)", "W3": "W3 MNIST CNN train (Adam)",
         "W4": "W4 GRU scan train", "W5": "W5 100 elementwise ops", "W6": "W6 MLP inference"}
COLUMNS = [("eqx-jit", "eqx jit"), ("eqx-eager", "eqx eager"), ("P4-eigen-floor", "Eigen floor (P4)"),
           ("P4b-eigen+openblas", "Eigen+OpenBLAS (P4b)"), ("P2-libtorch", "libtorch"),
           ("P3-torchscript", "TorchScript"), ("P1-torch-eager", "PyTorch eager")]
# The jitted row of W5 is the fused chain.
JIT = {"W5": "eqx-jit-fused"}
CHART = [("eqx-jit", "eqx jit"), ("P4-eigen-floor", "Eigen floor"), ("P2-libtorch", "libtorch"),
         ("P1-torch-eager", "PyTorch eager")]


def load(paths):
    rows = []
    for path in paths:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    try:
                        rows.append(dict(json.loads(line), _file=path))
                    except json.JSONDecodeError:
                        pass
    return rows


def median(values):
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def times(rows):
    """(workload, peer, threads) -> median over files of median_us (base peer names only)."""
    cells = {}
    for r in rows:
        if r.get("kind") == "time" and "/" not in r["peer"]:
            cells.setdefault((r["workload"], r["peer"], r["threads"]), []).append(r["median_us"])
    return {k: median(v) for k, v in cells.items()}


def fmt_us(us):
    if us is None:
        return "–"
    if us >= 1000:
        return f"{us:,.0f}"
    if us >= 10:
        return f"{us:.1f}"
    return f"{us:.3f}"


def fmt_ratio(r):
    return "–" if r is None else f"{r:.2f}x"


def render(rows):
    t = times(rows)
    threads = sorted({k[2] for k in t})
    machine = next((r for r in rows if r.get("kind") == "machine"), None)
    info = next((r for r in rows if r.get("kind") == "info" and r.get("peer") == "eqx"), None)
    out = []
    if machine:
        out.append(f"Machine: {machine.get('cpu', '?')}, {machine.get('nproc', '?')} CPUs, {machine.get('date', '')}.")
    if info:
        out.append(f"eqx: kernels for {info['isa']} (CPU {info['cpu']}), GEMM {info['gemm']}.")
    checks = [r for r in rows if r.get("kind") == "check" and r.get("peer", "").startswith("eqx")]
    failed = [f"{r['workload']} {r['peer']}" for r in checks if not r.get("ok")]
    if checks:
        out.append(f"eqx training/value checks: {len(checks) - len(failed)} of {len(checks)} passed" +
                   (f" (failed: {', '.join(failed)})" if failed else "") + ".")
    for th in threads:
        out.append("")
        out.append(f"### {th} thread{'s' if th > 1 else ''}: median µs per step")
        out.append("")
        head = ["workload"] + [name for _, name in COLUMNS] + ["eqx / floor", "libtorch / eqx", "PyTorch / eqx"]
        out.append("| " + " | ".join(head) + " |")
        out.append("|---|" + "---:|" * (len(head) - 1))
        for w in WORKLOADS:
            def get(peer):
                return t.get((w, JIT.get(w, peer) if peer == "eqx-jit" else peer, th))
            jit, floor = get("eqx-jit"), get("P4-eigen-floor")
            lt, pt = get("P2-libtorch"), get("P1-torch-eager")
            cells = [NAMES[w]] + [fmt_us(get(p)) for p, _ in COLUMNS]
            cells += [fmt_ratio(jit / floor if jit and floor else None),
                      fmt_ratio(lt / jit if jit and lt else None),
                      fmt_ratio(pt / jit if jit and pt else None)]
            out.append("| " + " | ".join(cells) + " |")
    gemm = {}
    for r in rows:
        if r.get("kind") == "gemm":
            gemm.setdefault((r["lib"], r["threads"]), []).append(2.0 * r["n"] ** 3 / r["median_us"] / 1e3)
    if gemm:
        out.append("")
        out.append("SGEMM peak (best of n = 512, 1024): " + ", ".join(
            f"{lib} {th} thr {max(v):.0f} GFLOP/s" for (lib, th), v in sorted(gemm.items())))
    sweep = [r for r in rows if r.get("kind") == "sweep"]
    if sweep:
        out.append("")
        out.append("### MLP training step sweep (eqx jit, Adam): GFLOP/s of its GEMMs")
        out.append("")
        out.append("| threads | width | batch | µs per step | GFLOP/s | % of SGEMM peak |")
        out.append("|---:|---:|---:|---:|---:|---:|")
        for r in sweep:
            peak = max([max(v) for (lib, th), v in gemm.items() if th == r["threads"]] or [0])
            pct = f"{100 * r['gflops'] / peak:.0f}%" if peak else "–"
            out.append(f"| {r['threads']} | {r['width']} | {r['batch']} | {fmt_us(r['median_us'])} | "
                       f"{r['gflops']:.1f} | {pct} |")
    return "\n".join(out) + "\n", t, threads, sweep, gemm


def chart(t, threads, out_dir):
    th = threads[0]
    data = os.path.join(out_dir, "compare.dat")
    with open(data, "w") as f:
        f.write("workload " + " ".join(f'"{name}"' for _, name in CHART) + "\n")
        for w in WORKLOADS:
            vals = []
            for peer, _ in CHART:
                v = t.get((w, JIT.get(w, peer) if peer == "eqx-jit" else peer, th))
                vals.append(f"{v:.6g}" if v else "NaN")
            f.write(w + " " + " ".join(vals) + "\n")
    script = f"""set terminal pngcairo size 1000,520 font ",11"
set output "{os.path.join(out_dir, 'compare.png')}"
set title "Median µs per step, {th} thread (lower is better)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set logscale y
set yrange [0.1:*]
set ylabel "µs per step (log scale)"
set key top left
set grid ytics
plot for [i=2:{len(CHART) + 1}] "{data}" using i:xtic(1) title columnheader(i)
"""
    return script


def sweep_chart(sweep, gemm, out_dir):
    data = os.path.join(out_dir, "sweep.dat")
    with open(data, "w") as f:
        for th in sorted({r["threads"] for r in sweep}):
            f.write(f"# threads {th}: width (batch 128)\n")
            for r in sorted((r for r in sweep if r["threads"] == th and r["batch"] == 128), key=lambda r: r["width"]):
                f.write(f"{r['width']} {r['gflops']:.4g}\n")
            f.write("\n\n")
            f.write(f"# threads {th}: batch (width 512)\n")
            for r in sorted((r for r in sweep if r["threads"] == th and r["width"] == 512), key=lambda r: r["batch"]):
                f.write(f"{r['batch']} {r['gflops']:.4g}\n")
            f.write("\n\n")
    peak = max([max(v) for v in gemm.values()] or [0])
    ths = sorted({r["threads"] for r in sweep})
    plots = []
    for i, th in enumerate(ths):
        plots.append(f'"{data}" index {2 * i} using 1:2 with linespoints title "width, batch 128, {th} thr"')
        plots.append(f'"{data}" index {2 * i + 1} using 1:2 with linespoints title "batch, width 512, {th} thr"')
    if peak:
        plots.append(f"{peak:.1f} with lines dashtype 2 title \"best SGEMM peak ({peak:.0f} GFLOP/s)\"")
    return f"""set terminal pngcairo size 900,500 font ",11"
set output "{os.path.join(out_dir, 'sweep.png')}"
set title "eqx jitted MLP training step (784-w-w-10, Adam): GFLOP/s"
set logscale x 2
set xlabel "width or batch"
set ylabel "GFLOP/s"
set key bottom right
set grid
plot {", ".join(plots)}
"""


def main(argv):
    if "--out" not in argv:
        print(__doc__, file=sys.stderr)
        return 2
    readme = None
    if "--readme" in argv:
        j = argv.index("--readme")
        readme = argv[j + 1]
        argv = argv[:j] + argv[j + 2:]
    i = argv.index("--out")
    out_dir = argv[i + 1]
    paths = argv[:i] + argv[i + 2:]
    os.makedirs(out_dir, exist_ok=True)
    text, t, threads, sweep, gemm = render(load(paths))
    with open(os.path.join(out_dir, "compare.md"), "w") as f:
        f.write(text)
    print(text)
    if readme:
        with open(readme) as f:
            doc = f.read()
        begin, end = "<!-- compare:begin -->", "<!-- compare:end -->"
        if begin not in doc or end not in doc:
            print(f"table.py: {readme} has no {begin} ... {end} block to replace", file=sys.stderr)
            return 1
        head, rest = doc.split(begin, 1)
        _, tail = rest.split(end, 1)
        with open(readme, "w") as f:
            f.write(head + begin + "\n" + text + end + tail)
        print(f"updated {readme}")
    if not threads:
        return 0
    scripts = [chart(t, threads, out_dir)]
    if sweep:
        scripts.append(sweep_chart(sweep, gemm, out_dir))
    if shutil.which("gnuplot") is None:
        print("gnuplot not found (apt-get install gnuplot-nox): charts not drawn; data in " + out_dir)
        return 0
    for s in scripts:
        subprocess.run(["gnuplot"], input=s.encode(), check=True)
    print("charts: " + ", ".join(os.path.join(out_dir, n) for n in ["compare.png"] + (["sweep.png"] if sweep else [])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
