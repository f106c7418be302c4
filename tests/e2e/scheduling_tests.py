#!/usr/bin/python3
"""Multi-process tests of how the coordinator shares work (docs/coordinator.md, "Stragglers" and
"Several jobs at once"): a replica slowed by SIGSTOP/SIGCONT cycling (alive, heartbeating, at a
quarter of its speed) costs the job little; two jobs that ask for a share of the cluster run at once.

    scheduling_tests.py --bin BUILD/bin --fixtures DIR --workdir DIR --case NAME
    scheduling_tests.py --list
"""

import os
import shutil
import signal
import sys
import threading
import time
from typing import Callable, Dict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_tests import Cluster, coordinator_log, main, submitted_job  # noqa: E402

CASES: Dict[str, Callable] = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


class Throttle(threading.Thread):
    """Stops a process for `stopped` seconds out of every `period`, until stop()."""

    def __init__(self, pid: int, period: float = 0.1, stopped: float = 0.075):
        super().__init__(daemon=True)
        self.pid, self.period, self.stopped = pid, period, stopped
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            os.kill(self.pid, signal.SIGSTOP)
            time.sleep(self.stopped)
            os.kill(self.pid, signal.SIGCONT)
            time.sleep(self.period - self.stopped)
        os.kill(self.pid, signal.SIGCONT)

    def stop(self):
        self.done.set()
        self.join()


def streaming_rate(c: Cluster, job_yaml: str) -> float:
    """submit --wait; the job's samples/s over its streaming phase. The job runs again on the next
    cluster: its earlier outputs go first (a job never replaces outputs unless it says overwrite)."""
    shutil.rmtree(os.path.join(os.path.dirname(job_yaml), "out"), ignore_errors=True)
    c.cli("submit", job_yaml, "--wait", timeout=600)
    (st,) = c.status(max(j["job"] for j in c.status()))
    if st["state"] != "done":
        raise AssertionError(f"job {st['state']}: {st.get('error')}")
    return float(st["samples_per_second"])


@case
def slow_replica_costs_little(c: Cluster):
    """One healthy worker alone, then the same job with a second replica slowed to a quarter of its
    speed by SIGSTOP/SIGCONT cycling: the job is at most 1.3x slower than on the healthy one alone,
    and its outputs are the same."""
    c.serve()
    c.worker(1)
    c.wait_workers(1)
    job_yaml = c.job("cnn", "job", repeat=6000, batch_size=1)  # 30,000 micro-batches
    alone = streaming_rate(c, job_yaml)
    slow = c.worker(2)
    c.wait_workers(2)
    throttle = Throttle(slow.pid)
    throttle.start()
    try:
        both = streaming_rate(c, job_yaml)
    finally:
        throttle.stop()
    (st,) = c.status(max(j["job"] for j in c.status()))
    used = {w for s in st["stages"] for w in s["workers"]}
    print(f"healthy alone: {alone:.0f} samples/s; with a quarter-speed replica: {both:.0f} samples/s "
          f"({alone / both:.2f}x the time), finished on {sorted(used)}")
    log = coordinator_log(c)
    if "w2" not in log.split(f"job {st['job']}: planning", 1)[1].split("running", 1)[0]:
        raise AssertionError("the second job was not planned over the slowed worker")
    if alone / both > 1.3:
        raise AssertionError(f"a quarter-speed replica made the job {alone / both:.2f}x slower (at most 1.3x)")
    c.expect_same_as_local(job_yaml)
    if "dead" in coordinator_log(c):
        raise AssertionError("the throttled worker was declared dead (its heartbeats must keep up)")


@case
def two_jobs_share_the_cluster(c: Cluster):
    """Two jobs that ask for one worker each (`workers: 1`), submitted together on two workers, run
    at the same time on separate workers; both outputs are right; `workers` shows who holds what."""
    c.up(2)
    a = c.job("cnn", "a", repeat=1000, batch_size=1)  # 5,000 micro-batches
    b = c.job("cnn", "b", repeat=1000, batch_size=1)
    for job in (a, b):
        with open(job, "a") as f:
            f.write("workers: 1\n")
    ja, jb = (submitted_job(c.cli("submit", j)) for j in (a, b))
    deadline = time.monotonic() + 300
    both = None
    while both is None:
        sts = {s["job"]: s for s in c.status()}
        if all(sts[j]["state"] == "running" for j in (ja, jb)):
            both = sts
            holders = {w["name"]: w["stages"] for w in c.workers()}
        elif any(sts[j]["state"] in ("done", "failed", "cancelled") for j in (ja, jb)):
            raise AssertionError(f"one job ended before both ran at once: {[sts[j]['state'] for j in (ja, jb)]}")
        if time.monotonic() > deadline:
            raise AssertionError("the two jobs never ran at the same time")
        time.sleep(0.05)
    wa = {w for s in both[ja]["stages"] for w in s["workers"]}
    wb = {w for s in both[jb]["stages"] for w in s["workers"]}
    print(f"job {ja} on {sorted(wa)}, job {jb} on {sorted(wb)} at the same time; workers: {holders}")
    if len(wa) != 1 or len(wb) != 1 or wa & wb:
        raise AssertionError(f"jobs share workers: {wa} / {wb}")
    if sorted(sum(holders.values(), [])) != sorted([f"job {ja} stage 0", f"job {jb} stage 0"]):
        raise AssertionError(f"`workers` shows {holders}")
    for j in (ja, jb):
        st = c.wait_state(j, ("done", "failed", "cancelled"), 600)
        if st["state"] != "done":
            raise AssertionError(f"job {j} {st['state']}: {st.get('error')}")
    c.expect_same_as_local(a)
    c.expect_same_as_local(b)


if __name__ == "__main__":
    sys.exit(main(CASES, __doc__))
