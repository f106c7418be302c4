#!/usr/bin/python3
"""Model throughput: Convoy's OpenCL executor vs PyTorch on the same TorchScript archives and inputs,
interleaved in one run. Started by bench/run_model_bench.sh (see bench/README.md).

    /usr/bin/python3 bench/model_bench.py --build BUILD_DIR --models MODELS_DIR [--rounds R]
        [--round-seconds S] [--only NAME ...] [--torch2 PYTHON]

Engines are long-lived processes speaking one line protocol: `convoy-bench-models --serve` and
bench/torch_worker.py under Debian's python3 (torch 1.13) and, when available, a torch 2.x python
(--torch2, else $CONVOY_BENCH_TORCH2, else /tmp/torch2-venv/bin/python if it exists). PyTorch gets
torch.set_num_threads(the OpenCL device's compute units). Per model: every engine loads and warms up,
Convoy's first output is checked against PyTorch 1.13's (relative L2; above --max-rel-l2 the run
fails), then R rounds each time every engine for about S seconds of batches, one engine after the other
(the order alternates between rounds), so machine load falls on all alike. A cell is batch size /
median seconds per batch over all rounds.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = [("resnet18", 8), ("mobilenet_v2", 8), ("vit_b_16", 2), ("gpt", 8)]


class Engine:
    def __init__(self, label, argv, env=None):
        self.label = label
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                                     bufsize=1)

    def ask(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        lines = []
        while True:
            reply = self.proc.stdout.readline()
            if not reply:
                raise SystemExit(f"{self.label}: exited while answering '{line}'")
            reply = reply.rstrip("\n")
            if reply.startswith("error:"):
                raise SystemExit(f"{self.label}: {line.split()[0]}: {reply}")
            if reply.startswith("ok"):
                return reply[2:].strip(), lines
            lines.append(reply)

    def close(self):
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        self.proc.wait()


def fields(reply):
    return dict(kv.split("=", 1) for kv in reply.split())


def rel_l2(a, b):
    a = a.astype(np.float64).ravel()
    b = b.astype(np.float64).ravel()
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def loadavg():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--models", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--round-seconds", type=float, default=2.0)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--torch2", default=None)
    ap.add_argument("--device", default="")
    ap.add_argument("--max-rel-l2", type=float, default=1e-3)
    args = ap.parse_args()

    torch2 = args.torch2 or os.environ.get("CONVOY_BENCH_TORCH2")
    if torch2 is None and os.path.exists("/tmp/torch2-venv/bin/python"):
        torch2 = "/tmp/torch2-venv/bin/python"
    print(f"load average at start: {loadavg()}", flush=True)

    convoy_argv = [os.path.join(args.build, "bin", "convoy-bench-models"), "--serve"]
    if args.device:
        convoy_argv += ["--device", args.device]
    convoy = Engine("convoy", convoy_argv)
    engines = [convoy]
    threads = None
    workdir = tempfile.mkdtemp(prefix="convoy-model-bench-")
    rows = []
    try:
        for name, batch in MODELS:
            if args.only and name not in args.only:
                continue
            pt = os.path.join(args.models, f"{name}.pt")
            inp = os.path.join(args.models, f"{name}.input.npy")
            info = fields(convoy.ask(f"load {name} {pt} {inp}")[0])
            if threads is None:
                threads = int(info["compute_units"])
                engines.append(Engine("torch 1.13", ["/usr/bin/python3", os.path.join(HERE, "torch_worker.py"),
                                                      "--threads", str(threads)]))
                if torch2:
                    engines.append(Engine("torch 2.x", [torch2, os.path.join(HERE, "torch_worker.py"),
                                                         "--threads", str(threads)]))
            infos = {convoy.label: info}
            for e in engines[1:]:
                infos[e.label] = fields(e.ask(f"load {name} {pt} {inp}")[0])
            # Correctness first: a fast wrong answer must not make the table.
            outs = {}
            for e in engines:
                path = os.path.join(workdir, f"{name}.{e.label.replace(' ', '_')}.npy")
                e.ask(f"save {name} {path}")
                outs[e.label] = np.load(path)
            ref = outs["torch 1.13"]
            if not np.isfinite(ref).all() or float(np.abs(ref).max()) == 0.0:
                raise SystemExit(f"{name}: PyTorch's output is all zeros or not finite: nothing to compare")
            errs = {label: rel_l2(o, ref) for label, o in outs.items() if label != "torch 1.13"}
            if outs["convoy"].shape != ref.shape or errs["convoy"] > args.max_rel_l2:
                raise SystemExit(f"{name}: Convoy's output {outs['convoy'].shape} differs from PyTorch 1.13's "
                                 f"{ref.shape}: relative L2 {errs['convoy']:.3g} > {args.max_rel_l2}")
            warm = float(info["warm_s"])
            n = max(1, round(args.round_seconds / warm))
            times = {e.label: [] for e in engines}
            for r in range(args.rounds):
                order = engines if r % 2 == 0 else list(reversed(engines))
                for e in order:
                    times[e.label] += [float(t) for t in e.ask(f"time {name} {n}")[0].split()]
            for e in engines:
                e.ask(f"drop {name}")
            sps = {label: batch / float(np.median(t)) for label, t in times.items()}
            rows.append((name, batch, sps, errs, infos, len(times["convoy"])))
            print(f"{name}: {len(times['convoy'])} batches per engine in {args.rounds} rounds; "
                  + ", ".join(f"{label} {v:.2f} samples/s" for label, v in sps.items())
                  + f"; Convoy plan {float(info['plan_s']):.1f} s; rel. L2 vs torch 1.13: "
                  + ", ".join(f"{label} {v:.1e}" for label, v in errs.items()), flush=True)
    finally:
        for e in engines:
            e.close()

    have2 = any("torch 2.x" in r[2] for r in rows)
    v1 = next(iter(rows))[4]["torch 1.13"]["version"] if rows else "1.13"
    v2 = rows[0][4]["torch 2.x"]["version"] if have2 else ""
    print()
    print(f"threads: Convoy = OpenCL device with {threads} compute units; PyTorch set_num_threads({threads})")
    head = f"| model | batch | Convoy samples/s | PyTorch {v1} samples/s | Convoy / PyTorch {v1}"
    sep = "| --- | ---: | ---: | ---: | ---:"
    if have2:
        head += f" | PyTorch {v2} samples/s | Convoy / PyTorch {v2}"
        sep += " | ---: | ---:"
    head += " | rel. L2 vs PyTorch 1.13 |"
    sep += " | ---: |"
    print(head)
    print(sep)
    for name, batch, sps, errs, _, _ in rows:
        c, t1 = sps["convoy"], sps["torch 1.13"]
        line = f"| {name} | {batch} | {c:.2f} | {t1:.2f} | {c / t1:.2f}×"
        if have2:
            t2 = sps["torch 2.x"]
            line += f" | {t2:.2f} | {c / t2:.2f}×"
        line += f" | {errs['convoy']:.1e} |"
        print(line)
    print(f"\nload average at end: {loadavg()}")


if __name__ == "__main__":
    main()
