#!/usr/bin/python3
"""Distributed-path benchmarks (issue 4), each printing a table; see bench/README.md.

    /usr/bin/python3 bench/cluster_bench.py --build BUILD [--only overhead|ledger|restart|soak|resnet18]

overhead  coordinator overhead per micro-batch: a 2,000-micro-batch job of the seed model (one sample
          per micro-batch, microseconds of compute) through `serve` + one worker, once with one
          micro-batch in flight (the round trip coordinator -> worker -> coordinator) and once with the
          default window; the overhead is wall time per micro-batch minus the stage's measured compute.
ledger    the same seed job (5,000 micro-batches, 4 in flight) with and without a state_dir: the
          job ledger's cost per micro-batch.
restart   a coordinator SIGKILLed at micro-batch ~2,000 of 20,000 and started again on its state_dir:
          seconds until the job streams again and until it is done.
soak      a 2,000-micro-batch job of the resnet18 fixture on OpenCL: coordinator and worker resident
          memory after the first 50 micro-batches and at the end (must stay within 10%).
resnet18  torchvision resnet18, batch 8 at 224x224 (bench/make_bench_models.py), --samples images:
          `run --workers 2` (each worker one core) against `run --workers 0` (two cores), and the
          plan's predicted stage times against the measured ones.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
from cluster_tests import Cluster  # noqa: E402


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


class Args:
    def __init__(self, build: str, fixtures: str, workdir: str):
        self.bin = os.path.join(build, "bin")
        self.fixtures = fixtures
        self.workdir = workdir


def fixture_job(c: Cluster, model: str, samples: int) -> str:
    """A job of `samples` one-sample micro-batches of a conformance fixture's inputs, repeated."""
    folder = os.path.join(c.dir, model + "job")
    os.makedirs(folder, exist_ok=True)
    src = os.path.join(c.fixtures, model)
    with open(os.path.join(c.fixtures, "manifest.json")) as f:
        count = len(json.load(f)["models"][model]["inputs"])
    for i in range(count):
        arr = np.load(os.path.join(src, f"input_{i}.npy"))
        reps = (samples + len(arr) - 1) // len(arr)
        np.save(os.path.join(folder, f"input_{i}.npy"), np.concatenate([arr] * reps)[:samples])
    inputs = ", ".join(f"input_{i}.npy" for i in range(count))
    with open(os.path.join(folder, "job.yaml"), "w") as f:
        f.write(f"model: '{os.path.join(src, 'model.pt')}'\ninputs: [{inputs}]\noutput: out\nbatch_size: 1\n")
    return os.path.join(folder, "job.yaml")


def run_fixture_job(args, name: str, model: str, backend: str, max_in_flight: int, micro_batches: int,
                    sample_memory: bool, **serve_keys):
    c = Cluster(args, name)
    c.verbose = False
    try:
        server = c.serve(max_in_flight=max_in_flight, **serve_keys)
        worker = c.worker(1, backend=backend)
        c.wait_workers(1)
        job_yaml = fixture_job(c, model, micro_batches)
        out = c.cli("submit", job_yaml)
        job = int(out.stdout.split("job")[1].split()[0])
        early = None
        late_run = None
        while True:
            (st,) = c.status(job)
            if sample_memory and early is None and st["micro_batches_done"] >= 50:
                early = (rss_mb(server.pid), rss_mb(worker.pid), st["micro_batches_done"])
            if sample_memory and late_run is None and st["micro_batches_done"] >= micro_batches - 100:
                late_run = (rss_mb(server.pid), rss_mb(worker.pid), st["micro_batches_done"])
            if st["state"] in ("done", "failed", "cancelled"):
                break
            time.sleep(0.01)
        late = (rss_mb(server.pid), rss_mb(worker.pid))
        if st["state"] != "done":
            raise RuntimeError(f"job {st['state']}: {st.get('error')}")
        compute = sum(s["measured_seconds"] for s in st["stages"])
        return st, compute, early, (late_run, late)
    finally:
        c.stop()


def bench_overhead(args):
    print("## coordinator overhead per micro-batch (seed model, 1 sample per micro-batch, reference backend)\n")
    print(f"{'in flight':>10} {'micro-batches':>14} {'wall s':>8} {'per mb us':>10} {'compute us':>11} {'overhead us':>12}")
    for window in (1, 4):
        st, compute, _, _ = run_fixture_job(args, f"overhead{window}", "seed", "reference", window, 2000, False)
        per = st["elapsed_seconds"] / st["micro_batches_done"] * 1e6
        print(f"{window:>10} {st['micro_batches_done']:>14} {st['elapsed_seconds']:>8.2f} {per:>10.1f} "
              f"{compute * 1e6:>11.1f} {per - compute * 1e6:>12.1f}")
    print()


def bench_ledger(args):
    print("## the job ledger's cost per micro-batch (seed model, 1 sample per micro-batch, 4 in flight, reference)\n")
    print(f"{'ledger':>8} {'micro-batches':>14} {'wall s':>8} {'per mb us':>10}")
    per = {}
    for run in range(2):
        for on in (False, True):
            keys = {"state_dir": f"'{os.path.join(args.workdir, f'ledger-state-{run}')}'"} if on else {}
            st, _, _, _ = run_fixture_job(args, f"ledger{int(on)}", "seed", "reference", 4, 5000, False, **keys)
            us = st["elapsed_seconds"] / st["micro_batches_done"] * 1e6
            per.setdefault(on, []).append(us)
            print(f"{'on' if on else 'off':>8} {st['micro_batches_done']:>14} {st['elapsed_seconds']:>8.2f} {us:>10.1f}")
    off, on = min(per[False]), min(per[True])
    print(f"\nledger cost per micro-batch (best of 2 each): {on - off:.1f} us "
          f"(group commits: fdatasync of the outputs, then one SQLite transaction, every 64 results or 100 ms)\n")


def bench_restart(args):
    """A coordinator SIGKILLed mid-job and started again on its state_dir: time until the job streams
    again and until it is done, and how much was taken over from the ledger."""
    import re
    import signal
    c = Cluster(args, "restart")
    c.verbose = False
    state = os.path.join(c.dir, "state")
    try:
        c.up(1, state_dir=f"'{state}'")
        job_yaml = fixture_job(c, "cnn", 20000)
        job = int(c.cli("submit", job_yaml).stdout.split("job")[1].split()[0])
        while c.status(job)[0]["micro_batches_done"] < 2000:
            time.sleep(0.05)
        time.sleep(0.3)
        os.kill(c.server.pid, signal.SIGKILL)
        c.server.wait()
        t0 = time.monotonic()
        c.serve(state_dir=f"'{state}'")
        streaming = None
        while True:
            try:
                (st,) = c.status(job)
            except AssertionError:
                time.sleep(0.02)
                continue
            if streaming is None and st["state"] == "running":
                streaming = time.monotonic() - t0
            if st["state"] in ("done", "failed", "cancelled"):
                break
            time.sleep(0.02)
        done = time.monotonic() - t0
        with open(c.logs[c.server.pid]) as f:
            m = re.search(r"resuming from the ledger: (\d+) of (\d+)", f.read())
        print("## recovery after a coordinator restart (cnn fixture, 20,000 one-sample micro-batches, 1 worker)\n")
        print(f"job {st['state']}; resumed {m.group(1) if m else '?'} of {m.group(2) if m else '?'} written micro-batches")
        print(f"restart -> streaming again: {streaming:.2f} s (the worker notices, says hello and registers again, "
              f"the stage is re-assigned from its weight cache); restart -> done: {done:.2f} s\n")
    finally:
        c.stop()


def bench_soak(args):
    print("## resident memory over a 2,000-micro-batch job (resnet18 fixture, 3x40x40, one sample per micro-batch, OpenCL)\n")
    st, _, early, (late_run, late) = run_fixture_job(args, "soak", "resnet18", "opencl", 4, 2000, True)
    print(f"{st['micro_batches_done']} micro-batches in {st['elapsed_seconds']:.1f} s\n")
    a_label, b_label = f"after {early[2]} mb", f"after {late_run[2]} mb"
    print(f"{'MiB':>12} {a_label:>14} {b_label:>16} {'change':>8} {'job finished':>14}")
    for name, i in (("coordinator", 0), ("worker", 1)):
        a, b = early[i], late_run[i]
        print(f"{name:>12} {a:>14.1f} {b:>16.1f} {100 * (b - a) / a:>7.1f}% {late[i]:>14.1f}")
    print()


def bench_resnet18(args, build: str, samples: int):
    models = os.path.join(build, "bench-models")
    subprocess.run(["/usr/bin/python3", os.path.join(HERE, "make_bench_models.py"), models], check=True)
    c = Cluster(args, "resnet18")
    c.verbose = False
    try:
        x = np.load(os.path.join(models, "resnet18.input.npy"))
        reps = (samples + len(x) - 1) // len(x)
        np.save(os.path.join(c.dir, "x.npy"), np.concatenate([x] * reps)[:samples])
        results = {}
        for workers in ("0", "2"):
            job = os.path.join(c.dir, f"job{workers}.yaml")
            with open(job, "w") as f:
                f.write(f"model: '{os.path.join(models, 'resnet18.pt')}'\ninputs: [x.npy]\n"
                        f"output: out{workers}\nbatch_size: 8\n")
            t0 = time.monotonic()
            proc = c.cli("run", job, "--workers", workers, timeout=1800)
            results[workers] = (time.monotonic() - t0, proc.stdout)
        print(f"## resnet18, batch 8, 224x224, {samples} samples ({(samples + 7) // 8} micro-batches)\n")
        import re
        m = re.search(r"run ([0-9.]+) s", results["0"][1])
        local = samples / float(m.group(1)) if m else float("nan")
        m = re.search(r"then ([0-9.]+) samples/s\)", results["2"][1])
        dist = float(m.group(1)) if m else float("nan")
        print(f"{'':>12} {'samples/s':>10} {'wall incl. start-up':>20}")
        print(f"{'--workers 0':>12} {local:>10.1f} {results['0'][0]:>19.1f}s")
        print(f"{'--workers 2':>12} {dist:>10.1f} {results['2'][0]:>19.1f}s")
        print(f"\ndistributed / in-process throughput: {dist / local:.2f} (cost {100 * (1 - dist / local):.1f}%)\n")
        print("--workers 2 summary:")
        for line in results["2"][1].splitlines():
            print("    " + line)
        a = np.load(os.path.join(c.dir, "out0", "output_0.npy"))
        b = np.load(os.path.join(c.dir, "out2", "output_0.npy"))
        err = float(np.linalg.norm(a - b)) / float(np.linalg.norm(a))
        print(f"\noutputs --workers 2 vs 0: relative L2 {err:.2e}")
    finally:
        c.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default="build")
    parser.add_argument("--only", choices=["overhead", "ledger", "restart", "soak", "resnet18"])
    parser.add_argument("--samples", type=int, default=512, help="resnet18: images in the job")
    opts = parser.parse_args()
    build = os.path.abspath(opts.build)
    fixtures = os.path.join(build, "fixtures", "torch113")
    if not os.path.exists(os.path.join(fixtures, "manifest.json")):
        print(f"error: {fixtures} has no fixtures: run ctest -R e2e.fixtures.torch113 first", file=sys.stderr)
        return 1
    os.environ.setdefault("CONVOY_CACHE_DIR", os.path.join(build, "convoy-cache"))
    args = Args(build, fixtures, os.path.join(build, "cluster-bench"))
    print(f"load average at start: {os.getloadavg()[0]:.2f}\n")
    if opts.only in (None, "overhead"):
        bench_overhead(args)
    if opts.only in (None, "ledger"):
        bench_ledger(args)
    if opts.only in (None, "restart"):
        bench_restart(args)
    if opts.only in (None, "soak"):
        bench_soak(args)
    if opts.only in (None, "resnet18"):
        bench_resnet18(args, build, opts.samples)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
