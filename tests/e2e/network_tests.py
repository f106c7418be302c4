#!/usr/bin/python3
"""Cluster tests across network namespaces (root only; CI runs as root): a worker in a namespace of
its own, joined to the coordinator's by a veth pair on a private test subnet that the test creates
and removes (10.213.0.0/16, never any other address).

- a worker whose advertised data endpoint cannot be reached (a loopback address) makes the job
  re-plan or fail within progress_timeout_s with a message naming that endpoint, instead of hanging;
- with advertise_host set, the same namespaces run the job end to end as a two-stage pipeline.

    network_tests.py --bin BUILD/bin --fixtures DIR --workdir DIR --case NAME
    network_tests.py --list
"""

import os
import shutil
import re
import subprocess
import sys
import time
from typing import Callable, Dict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_tests import Cluster, coordinator_log, main, submitted_job  # noqa: E402

CASES: Dict[str, Callable] = {}
SKIP = 77  # ctest's SKIP_RETURN_CODE for these cases


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=check)


class Namespace:
    """A network namespace joined to this one by a veth pair on a /30 of 10.213.0.0/16."""

    def __init__(self):
        idx = os.getpid() % 16384
        self.name = f"convoy-t{os.getpid()}"
        self.host_if, self.ns_if = f"cvh{idx}", f"cvn{idx}"
        base = (idx & 63) * 4
        self.host_ip = f"10.213.{idx >> 6}.{base + 1}"
        self.ns_ip = f"10.213.{idx >> 6}.{base + 2}"

    def __enter__(self):
        self.remove()
        sh("ip", "netns", "add", self.name)
        try:
            sh("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
            sh("ip", "link", "set", self.ns_if, "netns", self.name)
            sh("ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
            sh("ip", "link", "set", self.host_if, "up")
            for cmd in (["ip", "addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if],
                        ["ip", "link", "set", self.ns_if, "up"], ["ip", "link", "set", "lo", "up"]):
                sh("ip", "netns", "exec", self.name, *cmd)
        except subprocess.CalledProcessError as e:
            self.remove()
            raise AssertionError(f"cannot set up the test namespace: {e.stdout}")
        print(f"namespace {self.name}: {self.ns_ip} <-> {self.host_ip} ({self.host_if})", flush=True)
        return self

    def remove(self):
        sh("ip", "netns", "del", self.name, check=False)
        sh("ip", "link", "del", self.host_if, check=False)

    def __exit__(self, *exc):
        self.remove()
        if self.name in sh("ip", "netns", "list", check=False).stdout:
            raise AssertionError(f"namespace {self.name} is still there")


def cluster_across(c: Cluster, ns: Namespace, progress_timeout: float, **w2_keys):
    """The coordinator (listening on the veth address) and worker w1 here, worker w2 in `ns`."""
    c.endpoint = f"tcp://{ns.host_ip}:{c.port}"
    c.serve(max_replicas=1, progress_timeout_s=progress_timeout)
    c.worker(1)
    # w2 is "another host": its own key pair, deployed as docs/security.md says (its public key into
    # the coordinator's authorized/, the coordinator's public key into w2's keys folder).
    w2_dir = os.path.join(c.dir, "w2-keys")
    subprocess.run([os.path.join(c.bin, "convoy-worker"), "keygen", "--out", w2_dir], check=True)
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(c.keys, "coordinator.key")):
        if time.monotonic() > deadline:
            raise AssertionError("the coordinator wrote no keys")
        time.sleep(0.1)
    shutil.copy(os.path.join(w2_dir, "worker.key"), os.path.join(c.keys, "authorized", "node2.key"))
    shutil.copy(os.path.join(c.keys, "coordinator.key"), os.path.join(w2_dir, "coordinator.key"))
    cfg = os.path.join(c.dir, "worker2.yaml")
    settings = {"coordinator": f"'{c.endpoint}'", "name": "w2", "threads": 1, "keys": f"'{w2_dir}'", **w2_keys}
    with open(cfg, "w") as f:
        f.writelines(f"{k}: {v}\n" for k, v in settings.items())
    c.start(["ip", "netns", "exec", ns.name, os.path.join(c.bin, "convoy-worker"), "--config", cfg], "worker2")
    return {w["name"]: w for w in c.wait_workers(2)}


def needs_root():
    if os.geteuid() != 0 or not os.path.exists("/usr/sbin/ip") and not os.path.exists("/sbin/ip"):
        print("skipped: network namespaces need root and iproute2 (CI runs as root)")
        sys.exit(SKIP)


@case
def unreachable_endpoint_replans(c: Cluster):
    """w2 in its own namespace advertises its default loopback data endpoint: the job does not hang;
    within progress_timeout_s it re-plans around (or fails naming) that endpoint, and w2 warned at
    start-up."""
    needs_root()
    timeout = 30
    with Namespace() as ns:
        workers = cluster_across(c, ns, timeout)
        w2_endpoint = workers["w2"]["data_endpoint"]
        if not w2_endpoint.startswith("tcp://127.0.0.1:"):
            raise AssertionError(f"w2 advertises {w2_endpoint}")
        job_yaml = c.job("resnet18", "across")
        begin = time.monotonic()
        job = submitted_job(c.cli("submit", job_yaml))
        st = c.wait_state(job, ("done", "failed", "cancelled"), 300)
        took = time.monotonic() - begin
        log = coordinator_log(c)
        named = [ln for ln in log.splitlines() if "reach" in ln and "127.0.0.1:" in ln]
        print("\n".join(named[:4]))
        if not any(w2_endpoint in ln for ln in named) and w2_endpoint not in (st.get("error") or ""):
            raise AssertionError(f"no message names w2's unreachable endpoint {w2_endpoint}")
        first = min(i for i, ln in enumerate(log.splitlines()) if "reach" in ln and "127.0.0.1:" in ln)
        print(f"job {st['state']} in {took:.1f} s (progress_timeout_s {timeout})")
        if st["state"] == "done":
            c.expect_pytorch(job_yaml, "resnet18")
        elif "127.0.0.1:" not in (st.get("error") or ""):
            raise AssertionError(f"failed without naming the endpoint: {st.get('error')}")
        if first is None or took > timeout + 120:
            raise AssertionError(f"took {took:.0f} s")
        with open(c.logs[[p for p, path in c.logs.items() if path.endswith("worker2.log")][0]]) as f:
            if "advertises the loopback data endpoint" not in f.read():
                raise AssertionError("w2 did not warn about its loopback endpoint at start-up")


@case
def advertise_host_runs_across(c: Cluster):
    """The same namespaces with w2 binding 0.0.0.0 and advertise_host set to its veth address: the
    job runs end to end as a pipeline over both workers, outputs = PyTorch's."""
    needs_root()
    with Namespace() as ns:
        workers = cluster_across(c, ns, 30, data_bind="'tcp://0.0.0.0:*'", advertise_host=ns.ns_ip)
        if not workers["w2"]["data_endpoint"].startswith(f"tcp://{ns.ns_ip}:"):
            raise AssertionError(f"w2 advertises {workers['w2']['data_endpoint']}")
        job_yaml = c.job("resnet18", "across")
        c.cli("submit", job_yaml, "--wait", timeout=600)
        c.expect_pytorch(job_yaml, "resnet18")
        (st,) = c.status(max(j["job"] for j in c.status()))
        used = {w for s in st["stages"] for w in s["workers"]}
        if len(st["stages"]) < 2 or used != {"w1", "w2"}:
            raise AssertionError(f"ran as {st['stages']}")
        if "reach" in coordinator_log(c):
            raise AssertionError("an endpoint was reported unreachable")


if __name__ == "__main__":
    sys.exit(main(CASES, __doc__))
