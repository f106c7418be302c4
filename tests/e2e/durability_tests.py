#!/usr/bin/python3
"""Multi-process tests of the coordinator's job ledger (docs/coordinator.md, "The ledger"): a
coordinator SIGKILLed mid-job and restarted with the same config resumes the job without recomputing
what was written, outputs bit-identical to `run --workers 0`; finished jobs and job ids survive a
restart; a state_dir serves one coordinator at a time.

    durability_tests.py --bin BUILD/bin --fixtures DIR --workdir DIR --case NAME
    durability_tests.py --list
"""

import glob
import os
import re
import signal
import subprocess
import sys
import time
from typing import Callable, Dict

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_tests import Cluster, coordinator_log, main, submitted_job, wait_progress  # noqa: E402

CASES: Dict[str, Callable] = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def expect_bit_identical(c: Cluster, job_yaml: str):
    """The outputs equal `run --workers 0` of the same job byte for byte."""
    folder = os.path.dirname(job_yaml)
    c.expect_same_as_local(job_yaml)
    for path in sorted(glob.glob(os.path.join(folder, "out", "*.npy"))):
        a, b = np.load(path), np.load(os.path.join(folder, "out_local", os.path.basename(path)))
        if not np.array_equal(a, b):
            raise AssertionError(f"{os.path.basename(path)} is not bit-identical to --workers 0")


@case
def coordinator_sigkill_resumes(c: Cluster):
    """The shipped configs; `submit --wait` of a 10,000-micro-batch job; the coordinator SIGKILLed
    mid-job and started again with the same config: the waiting client reattaches, the job finishes
    by itself computing only what was not written, outputs = --workers 0 bit for bit, no partial file
    is left, the job is listed as done and the next job gets the next id."""
    env = c.shipped_up(2)
    c.wait_workers(2)
    job_yaml = c.job("cnn", "long", repeat=2000, batch_size=1)  # 10,000 micro-batches
    wait_log = os.path.join(c.dir, "submit-wait.log")
    with open(wait_log, "w") as log:
        waiter = subprocess.Popen([os.path.join(c.bin, "convoy-coordinator"), "submit", job_yaml, "--wait"],
                                  stdout=log, stderr=subprocess.STDOUT, cwd=c.dir, env={**os.environ, **env})
    c.procs.append(waiter)
    c.logs[waiter.pid] = wait_log
    deadline = time.monotonic() + 300
    while True:  # the job id appears once submitted; then wait for real progress
        sts = c.status() if c.server.poll() is None else []
        if sts and sts[-1]["state"] == "running" and sts[-1]["micro_batches_done"] >= 200:
            job = sts[-1]["job"]
            break
        if time.monotonic() > deadline:
            raise AssertionError("the job made no progress")
        time.sleep(0.1)
    time.sleep(0.3)  # past a ledger group commit (every 100 ms)
    os.kill(c.server.pid, signal.SIGKILL)
    c.server.wait(timeout=10)
    print(f"killed the coordinator at micro-batch ~{sts[-1]['micro_batches_done']} of 10000", flush=True)
    partial = glob.glob(os.path.join(os.path.dirname(job_yaml), "out", "*.partial"))
    if not partial:
        raise AssertionError("no partial output file after the kill (was the job already done?)")

    first_log = c.logs[c.server.pid]
    c.shipped_serve(env, "coordinator-restarted")  # same config, same state_dir
    rc = waiter.wait(timeout=600)
    with open(wait_log, errors="replace") as f:
        waited = f.read()
    print(waited[-2000:])
    if rc != 0:
        raise AssertionError(f"submit --wait exited {rc} across the restart")
    if "reattached" not in waited:
        raise AssertionError("submit --wait did not say it reattached")
    (st,) = c.status(job)
    if st["state"] != "done" or st["micro_batches_done"] != 10000:
        raise AssertionError(f"job {job} after the restart: {st['state']} {st['micro_batches_done']}/10000")
    log = coordinator_log(c)
    m = re.search(r"resuming from the ledger: (\d+) of 10000", log)
    d = re.search(r"(\d+) micro-batches computed by this coordinator, (\d+) written before a restart", log)
    if not m or not d:
        raise AssertionError("the restarted coordinator did not resume from the ledger")
    resumed, computed = int(m.group(1)), int(d.group(1))
    print(f"resumed {resumed} written micro-batches, computed {computed} after the restart")
    if resumed < 100 or resumed + computed != 10000 or int(d.group(2)) != resumed:
        raise AssertionError(f"resumed {resumed} + computed {computed} != 10000")
    with open(first_log, errors="replace") as f:
        if f"job {job} submitted" not in f.read():
            raise AssertionError("the first coordinator's log does not show the submission")
    left = glob.glob(os.path.join(os.path.dirname(job_yaml), "out", "*.partial")) + \
        glob.glob(os.path.join(os.path.dirname(job_yaml), "out", "*.tmp.*"))
    if left:
        raise AssertionError(f"left behind: {left}")
    expect_bit_identical(c, job_yaml)
    c.wait_workers(2)
    nxt = submitted_job(c.cli("submit", c.job("seed", "next"), "--wait", timeout=300))
    if nxt != job + 1:
        raise AssertionError(f"the next job got id {nxt}, expected {job + 1} (ids must never repeat)")
    c.expect_pytorch(os.path.join(c.dir, "next", "job.yaml"), "seed")


@case
def restart_keeps_finished_jobs(c: Cluster):
    """A job finished before a graceful restart (SIGTERM) is listed after it with its state and
    counts; a job queued when the coordinator stopped runs after the restart."""
    state = os.path.join(c.dir, "state")
    c.up(1, state_dir=f"'{state}'")
    first = submitted_job(c.cli("submit", c.job("seed", "first"), "--wait", timeout=300))
    c.server.send_signal(signal.SIGTERM)
    if c.server.wait(timeout=30) != 0:
        raise AssertionError("the coordinator did not exit 0 on SIGTERM")
    c.serve(state_dir=f"'{state}'")
    (st,) = c.status(first)
    if st["state"] != "done" or st["samples_done"] != st["samples_total"] or st["samples_total"] == 0:
        raise AssertionError(f"job {first} after the restart: {st}")
    c.wait_workers(1)
    second = submitted_job(c.cli("submit", c.job("seed", "second"), "--wait", timeout=300))
    if second != first + 1:
        raise AssertionError(f"job ids repeat: {first} then {second}")


@case
def state_dir_is_locked(c: Cluster):
    """A second coordinator on the same state_dir exits at once with one line naming the folder; the
    first keeps serving."""
    state = os.path.join(c.dir, "state")
    c.serve(state_dir=f"'{state}'")
    c.status()  # it answers
    first = c.server
    cfg = os.path.join(c.dir, "cluster2.yaml")
    with open(cfg, "w") as f:
        f.write(f"listen: 'tcp://127.0.0.1:{c.port + 1 if c.port < 65535 else c.port - 1}'\nhttp_listen: ''\n"
                f"state_dir: '{state}'\n")
    proc = subprocess.run([os.path.join(c.bin, "convoy-coordinator"), "serve", "--config", cfg],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
    print(proc.stdout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("error")]
    if proc.returncode == 0 or len(lines) != 1 or state not in lines[0] or "in use" not in lines[0]:
        raise AssertionError(f"second coordinator: exit {proc.returncode}, {proc.stdout!r}")
    if first.poll() is not None:
        raise AssertionError("the first coordinator died")
    c.status()


if __name__ == "__main__":
    sys.exit(main(CASES, __doc__))
