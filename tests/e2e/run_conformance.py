#!/usr/bin/python3
"""Runs one conformance fixture through the Convoy CLI and compares the outputs with PyTorch's.

    run_conformance.py --coordinator BIN --fixtures DIR --model NAME --workdir DIR
                       [--backend reference] [--workers 0] [--timeout 600]

DIR/manifest.json and DIR/NAME/ come from tests/fixtures/make_fixtures.py. The fixture folder is only
read: WORKDIR/NAME/ is emptied (a stale output can never pass) and gets a job.yaml whose model and
input paths are relative to that folder (`../../…/DIR/NAME/model.pt`) and whose output is `out`, then
    BIN run WORKDIR/NAME/job.yaml --workers 0 --backend reference
runs from WORKDIR (not the job's folder, so paths resolved against the working directory fail), must
exit 0, and its outputs must match DIR/NAME/expected_<i>.npy (compare_outputs.py's rules, with the
manifest's tolerance). With --workers N >= 1 (a local cluster) the outputs must also be bit-identical
to those of `run --workers 0` with the same backend.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_outputs import compare_dirs  # noqa: E402


def yaml_quote(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


def describe_exit(rc: int) -> str:
    if rc < 0:
        try:
            return f"killed by signal {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit code {rc}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--coordinator", required=True)
    parser.add_argument("--fixtures", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--backend", default="reference")
    parser.add_argument("--workers", default="0")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()

    fixtures = os.path.abspath(args.fixtures)
    fixture_dir = os.path.join(fixtures, args.model)
    try:
        with open(os.path.join(fixtures, "manifest.json")) as f:
            manifest = json.load(f)
        entry = manifest["models"][args.model]
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: fixture {args.model} missing from {fixtures}/manifest.json ({exc!r}); "
              f"run tests/fixtures/make_fixtures.py", file=sys.stderr)
        return 1
    tolerance = float(manifest.get("tolerance", {}).get("float_rel_l2", 1e-4))

    workdir = os.path.join(os.path.abspath(args.workdir), args.model)
    out_dir = os.path.join(workdir, "out")
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    job = os.path.join(workdir, "job.yaml")
    def rel(name: str) -> str:
        return yaml_quote(os.path.relpath(os.path.join(fixture_dir, name), workdir))

    inputs = ", ".join(rel(i["file"]) for i in entry["inputs"])
    with open(job, "w") as f:
        f.write(f"model: {rel('model.pt')}\n"
                f"inputs: [{inputs}]\n"
                f"output: out\n"
                f"batch_size: {entry['batch_size']}\n")

    cmd = [args.coordinator, "run", job, "--workers", args.workers, "--backend", args.backend]
    print(f"{manifest.get('label', '?')} {args.model} (torch {manifest.get('torch')}, {entry['export']}): "
          f"{entry.get('covers', '')}")
    print("inputs: " + ", ".join(f"{i['dtype']}{i['shape']}" for i in entry["inputs"]) +
          f"; batch_size {entry['batch_size']} -> {entry['micro_batches']} micro-batches")
    print("$ " + " ".join(cmd), flush=True)
    begin = time.monotonic()
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=args.timeout, errors="replace",
                              cwd=os.path.dirname(workdir))
    except subprocess.TimeoutExpired:
        print(f"error: {args.model}: convoy-coordinator did not finish in {args.timeout:.0f} s", file=sys.stderr)
        return 1
    elapsed = time.monotonic() - begin
    if proc.stdout.strip():
        print(proc.stdout.rstrip())
    if proc.stderr.strip():
        print(proc.stderr.rstrip(), file=sys.stderr)
    if proc.returncode != 0:
        print(f"error: {args.model}: convoy-coordinator run failed ({describe_exit(proc.returncode)})",
              file=sys.stderr)
        return 1
    print(f"convoy run took {elapsed:.2f} s (PyTorch forward on the same slices: "
          f"{entry.get('forward_seconds', float('nan')):.3f} s, ~{entry.get('approx_gflop', 0):.3f} GFLOP)")

    try:
        problem = compare_dirs(out_dir, fixture_dir, tolerance)
    except ValueError as exc:
        problem = str(exc)
    if problem:
        print(f"error: {args.model}: {problem}", file=sys.stderr)
        return 1
    print(f"{args.model}: all {len(entry['outputs'])} outputs match PyTorch")
    if args.workers != "0":
        return same_as_in_process(args, job, workdir, out_dir)
    return 0


def same_as_in_process(args, job: str, workdir: str, out_dir: str) -> int:
    """The distributed run must give exactly what `run --workers 0` gives with the same backend."""
    import numpy as np
    local_job = os.path.join(workdir, "job_local.yaml")
    with open(job) as f:
        text = f.read().replace("output: out\n", "output: out_local\n")
    with open(local_job, "w") as f:
        f.write(text)
    cmd = [args.coordinator, "run", local_job, "--workers", "0", "--backend", args.backend]
    print("$ " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=args.timeout, errors="replace", cwd=os.path.dirname(workdir))
    if proc.returncode != 0:
        print(proc.stderr.rstrip(), file=sys.stderr)
        print(f"error: {args.model}: run --workers 0 failed ({describe_exit(proc.returncode)})", file=sys.stderr)
        return 1
    names = sorted(n for n in os.listdir(out_dir) if n.endswith(".npy"))
    for name in names:
        a = np.load(os.path.join(out_dir, name))
        b = np.load(os.path.join(workdir, "out_local", name))
        if a.dtype != b.dtype or a.shape != b.shape or not np.array_equal(a, b, equal_nan=True):
            diff = ""
            if a.shape == b.shape and np.issubdtype(a.dtype, np.floating):
                err = float(np.linalg.norm((a - b).astype(np.float64))) / max(
                    float(np.linalg.norm(b.astype(np.float64))), 1e-30)
                diff = f": relative L2 {err:.2e}"
            print(f"error: {args.model}: {name} with --workers {args.workers} differs from --workers 0{diff}",
                  file=sys.stderr)
            return 1
    print(f"{args.model}: --workers {args.workers} outputs are bit-identical to --workers 0")
    return 0


if __name__ == "__main__":
    sys.exit(main())
