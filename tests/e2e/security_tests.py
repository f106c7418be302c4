#!/usr/bin/env python3
"""Multi-process security cases (docs/security.md): keys that are not allow-listed get nothing,
paths are confined to allowed_roots, and one client cannot cancel or read another's job.

Run by ctest, one case per test: security_tests.py --bin DIR --fixtures DIR --workdir DIR --case NAME.
"""
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_tests import Cluster, coordinator_log, main, submitted_job  # noqa: E402

CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def keygen(c: Cluster, folder: str, role: str, admit_as: str = "") -> str:
    """A new key pair in FOLDER (client.key / worker.key), the coordinator's public key beside it, and,
    with ADMIT_AS, its public half in the coordinator's allow-list under that name."""
    tool = "convoy-worker" if role == "worker" else "convoy-coordinator"
    argv = [os.path.join(c.bin, tool), "keygen", "--out", folder]
    if role != "worker":
        argv += ["--role", role]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    shutil.copy(os.path.join(c.keys, "coordinator.key"), os.path.join(folder, "coordinator.key"))
    if admit_as:
        name = "worker.key" if role == "worker" else "client.key"
        shutil.copy(os.path.join(folder, name), os.path.join(c.keys, "authorized", admit_as + ".key"))
    return folder


def expect_refused(proc: subprocess.CompletedProcess, what: str, text: str):
    if proc.returncode == 0:
        raise AssertionError(f"{what} succeeded")
    if text not in proc.stderr:
        raise AssertionError(f"{what}: expected '{text}' in: {proc.stderr.strip()}")


@case
def unlisted_keys_get_nothing(c: Cluster):
    """A worker whose key is not allow-listed never registers and is sent nothing; a client whose key
    is not allow-listed cannot submit, status or cancel, nor can a plain-text one; the cluster runs a
    real job meanwhile."""
    c.up(1)
    stranger = keygen(c, os.path.join(c.dir, "stranger"), "worker")
    intruder = c.worker(9, keys=f"'{stranger}'")
    outsider = keygen(c, os.path.join(c.dir, "outsider"), "client")
    job_yaml = c.job("seed", "real")
    for argv in (("submit", job_yaml), ("status",), ("cancel", "1")):
        expect_refused(c.cli(*argv, "--keys", outsider, check=False), f"{argv[0]} with an unlisted key",
                       "refused this client's key")
        expect_refused(c.cli(*argv, "--insecure", check=False), f"{argv[0]} in plain text", "")
    c.cli("submit", job_yaml, "--wait", timeout=300)
    c.expect_pytorch(job_yaml, "seed")
    names = [w["name"] for w in c.workers()]
    if names != ["w1"]:
        raise AssertionError(f"registered workers: {names}")
    if intruder.poll() is not None:
        raise AssertionError("the unlisted worker exited instead of retrying")
    with open(c.logs[intruder.pid], errors="replace") as f:
        text = f.read()
    if "registered" in text or "ready" in text:
        raise AssertionError("the unlisted worker registered or built a stage:\n" + text)
    log = coordinator_log(c)
    if "refused a connection" not in log or "not in the allow-list" not in log:
        raise AssertionError("the coordinator did not log the refused keys")


@case
def paths_are_confined(c: Cluster):
    """Outputs, models and inputs outside allowed_roots (directly, through .., through a symlink) are
    refused with the same message whether or not the file exists; existing outputs are not replaced
    unless the job says overwrite: true."""
    c.up(1)
    job_yaml = c.job("seed", "confined")
    folder = os.path.dirname(job_yaml)
    with open(job_yaml) as f:
        base = f.read()
    os.symlink("/etc/passwd", os.path.join(folder, "linked.npy"))
    cases = {
        "outside.yaml": base.replace("output: out", "output: /tmp/convoy-pwned"),
        "dotdot.yaml": base.replace("output: out", "output: " + "../" * 12 + "tmp/convoy-pwned2"),
        "symlink.yaml": base.replace("inputs: [", "inputs: ['linked.npy', "),
        "missing.yaml": base.replace("output: out", "output: /etc/convoy-no-such-folder/out"),
    }
    for name, text in cases.items():
        path = os.path.join(folder, name)
        with open(path, "w") as f:
            f.write(text)
        expect_refused(c.cli("submit", path, check=False), name, "is outside the allowed roots")
    if os.path.exists("/tmp/convoy-pwned") or os.path.exists("/tmp/convoy-pwned2"):
        raise AssertionError("a refused job wrote outside the allowed roots")
    c.cli("submit", job_yaml, "--wait", timeout=300)
    expect_refused(c.cli("submit", job_yaml, check=False), "a second run over the outputs", "overwrite: true")
    with open(job_yaml, "a") as f:
        f.write("overwrite: true\n")
    c.cli("submit", job_yaml, "--wait", timeout=300)
    c.expect_pytorch(job_yaml, "seed")


@case
def jobs_belong_to_their_owner(c: Cluster):
    """Two client keys: the second cannot cancel the first's job and sees it redacted; the owner and
    the admin key can."""
    c.up(1)
    alice = keygen(c, os.path.join(c.dir, "alice"), "client", admit_as="alice")
    bob = keygen(c, os.path.join(c.dir, "bob"), "client", admit_as="bob")
    job_yaml = c.job("cnn", "long", repeat=400, batch_size=1)
    job = submitted_job(c.cli("submit", job_yaml, "--keys", alice))
    expect_refused(c.cli("cancel", str(job), "--keys", bob, check=False), "bob cancelling alice's job",
                   "belongs to another client")
    seen = c.cli("status", "--json", "--keys", bob).stdout
    if "long" in seen or job_yaml in seen or c.dir in seen:
        raise AssertionError("bob sees alice's job name or paths: " + seen)
    own = c.cli("status", str(job), "--json", "--keys", alice).stdout
    if "job.yaml" not in own:
        raise AssertionError("alice does not see her own job: " + own)
    c.cli("cancel", str(job), "--keys", alice)
    job2 = submitted_job(c.cli("submit", c.job("seed", "second"), "--keys", alice))
    c.cli("cancel", str(job2))  # the local admin key
    for j in (job, job2):
        (st,) = c.status(j)
        if st["state"] != "cancelled":
            raise AssertionError(f"job {j} is {st['state']}")


if __name__ == "__main__":
    sys.exit(main(CASES, __doc__))
