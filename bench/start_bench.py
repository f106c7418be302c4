#!/usr/bin/python3
"""Cold vs warm start of resnet18 through the real CLI path. Started by bench/run_start_bench.sh (see
bench/README.md).

    /usr/bin/python3 bench/start_bench.py --build BUILD_DIR --models MODELS_DIR [--warm-runs N]

Writes a job (resnet18.pt, one micro-batch of 8 samples 3x224x224) and runs
`BUILD_DIR/bin/convoy-coordinator run JOB.yaml --workers 0`, timing from just before the process is
started to the moment it prints "micro-batch 1: ... done" on stderr (the first output is computed and
handed to the writer) and to its exit (output_0.npy renamed into place). Cold: an empty
CONVOY_CACHE_DIR and an empty POCL_CACHE_DIR (PoCL's own cache of compiled kernels), so every OpenCL
program, CLBlast kernel and GEMM choice is made from scratch. Warm: the same folders as the cold run
left them. The CPU time (user + sys of the process and its threads) is printed too: on a machine
shared with other work it shows what a quiet machine's wall clock would be near. The archive and inputs are in the page cache in both (they were just written or read).
"""
import argparse
import os
import resource
import shutil
import subprocess
import tempfile
import time

import numpy as np


def run_once(coordinator, job, cache, pocl_cache):
    env = dict(os.environ, CONVOY_CACHE_DIR=cache, POCL_CACHE_DIR=pocl_cache)
    env.pop("CONVOY_OPENCL_PROFILE", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen([coordinator, "run", job, "--workers", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    first = None
    for line in proc.stderr:
        if first is None and line.startswith("micro-batch 1:"):
            first = time.perf_counter() - t0
    out = proc.stdout.read()
    rc = proc.wait()
    total = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if rc != 0 or first is None:
        raise SystemExit(f"convoy-coordinator failed (exit {rc}): {out}")
    return first, total, cpu, out.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--models", required=True)
    ap.add_argument("--warm-runs", type=int, default=3)
    args = ap.parse_args()
    coordinator = os.path.abspath(os.path.join(args.build, "bin", "convoy-coordinator"))
    work = tempfile.mkdtemp(prefix="convoy-start-bench-")
    x = np.load(os.path.join(args.models, "resnet18.input.npy"))
    np.save(os.path.join(work, "x.npy"), x)
    expected_batch = x.shape[0]
    job = os.path.join(work, "job.yaml")
    with open(job, "w") as f:
        f.write(f"model: {os.path.abspath(os.path.join(args.models, 'resnet18.pt'))}\n"
                f"inputs: [x.npy]\noutput: out\nbatch_size: {expected_batch}\n")
    cache, pocl_cache = os.path.join(work, "convoy-cache"), os.path.join(work, "pocl-cache")
    os.makedirs(cache)
    os.makedirs(pocl_cache)

    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    rows = [("cold (both caches empty)",) + run_once(coordinator, job, cache, pocl_cache)]
    print(f"cold: {rows[0][1]:.2f} s to first output, {rows[0][3]:.2f} CPU-s; {rows[0][4]}", flush=True)
    warm = [run_once(coordinator, job, cache, pocl_cache) for _ in range(args.warm_runs)]
    for i, w in enumerate(warm):
        print(f"warm {i + 1}: {w[0]:.2f} s to first output, {w[2]:.2f} CPU-s; {w[3]}", flush=True)
    warm.sort()
    rows.append((f"warm (median of {len(warm)})",) + warm[len(warm) // 2])
    print()
    print("| resnet18, batch 8, 224² | to first output | to exit (output written) | CPU time (user + sys) |")
    print("| --- | ---: | ---: | ---: |")
    for label, first, total, cpu, _ in rows:
        print(f"| {label} | {first:.2f} s | {total:.2f} s | {cpu:.2f} s |")
    print(f"\nload average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
