#!/usr/bin/python3
"""Multi-process tests of the distributed service: real `convoy-coordinator serve` and `convoy-worker`
processes on loopback, driven through the CLI, with outputs checked against PyTorch's and against the
in-process `run --workers 0` of the same job.

    cluster_tests.py --bin BUILD/bin --fixtures DIR --workdir DIR --case NAME
    cluster_tests.py --list

Every case uses its own free port and folder; every process it starts is killed when it ends, pass or
fail. CONVOY_CACHE_DIR (set by ctest to the build's cache) keeps PoCL's compiled kernels between cases.
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Callable, Dict, List, Optional

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_outputs import compare_dirs  # noqa: E402

CASES: Dict[str, Callable] = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """Processes started by one case; stop() kills whatever is left."""

    def __init__(self, args, name: str):
        self.bin = os.path.abspath(args.bin)
        self.fixtures = os.path.abspath(args.fixtures)
        self.dir = os.path.join(os.path.abspath(args.workdir), name)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.port = free_port()
        self.endpoint = f"tcp://127.0.0.1:{self.port}"
        self.procs: List[subprocess.Popen] = []
        self.logs: Dict[int, str] = {}
        self.server: Optional[subprocess.Popen] = None
        self.verbose = True  # echo every CLI command and its output
        # The coordinator writes its key pair, a local worker's and an admin client's here on first
        # start (docs/security.md); workers and the CLI of this case read them from the same folder.
        self.keys = os.path.join(self.dir, "keys")
        self.cli_env: Dict[str, str] = {}  # HOME of the shipped-config cases

    # -- processes ---------------------------------------------------------------------------------
    def start(self, argv: List[str], log_name: str, env: Optional[Dict[str, str]] = None) -> subprocess.Popen:
        log_path = os.path.join(self.dir, log_name + ".log")
        log = open(log_path, "w")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir,
                                start_new_session=True, env={**os.environ, **(env or {})})
        log.close()
        self.procs.append(proc)
        self.logs[proc.pid] = log_path
        if self.verbose:
            print(f"started {log_name} (pid {proc.pid}): {' '.join(argv)}", flush=True)
        return proc

    def serve(self, **keys) -> subprocess.Popen:
        cfg = os.path.join(self.dir, "cluster.yaml")
        # A free port of its own for /metrics: cases run in parallel, the default 7701 would collide.
        settings = {"listen": f"'{self.endpoint}'", "heartbeat_ms": 100,
                    "http_listen": f"'127.0.0.1:{free_port()}'", "keys_dir": f"'{self.keys}'",
                    "allowed_roots": f"['{self.dir}', '{self.fixtures}']"}
        settings.update(keys)
        with open(cfg, "w") as f:
            f.writelines(f"{k}: {v}\n" for k, v in settings.items())
        self.server = self.start([os.path.join(self.bin, "convoy-coordinator"), "serve", "--config", cfg],
                                 "coordinator")
        self.wait_keys()
        return self.server

    def wait_keys(self, timeout: float = 30):
        """The coordinator writes its keys on first start; the CLI of this case needs them."""
        deadline = time.monotonic() + timeout
        while not os.path.exists(os.path.join(self.keys, "coordinator.key")):
            if time.monotonic() > deadline:
                raise AssertionError(f"the coordinator wrote no keys into {self.keys}")
            self.check_alive()
            time.sleep(0.05)

    def worker(self, index: int, env: Optional[Dict[str, str]] = None, **keys) -> subprocess.Popen:
        cfg = os.path.join(self.dir, f"worker{index}.yaml")
        settings = {"coordinator": f"'{self.endpoint}'", "name": f"w{index}", "threads": 1,
                    "keys": f"'{self.keys}'"}
        settings.update(keys)
        with open(cfg, "w") as f:
            f.writelines(f"{k}: {v}\n" for k, v in settings.items())
        return self.start([os.path.join(self.bin, "convoy-worker"), "--config", cfg], f"worker{index}", env)

    def up(self, workers: int, **keys) -> Dict[str, subprocess.Popen]:
        """serve(**keys) and workers w1..wN, once all N have registered; returns them by name."""
        self.serve(**keys)
        procs = {f"w{i}": self.worker(i) for i in range(1, workers + 1)}
        self.wait_workers(workers)
        return procs

    def cli(self, *argv: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [os.path.join(self.bin, "convoy-coordinator"), *argv]
        if self.endpoint and argv[0] in ("submit", "status", "cancel", "workers") or (argv[0] == "plan" and "--workers" not in argv):
            cmd += ["--coordinator", self.endpoint]
            if "--keys" not in argv and "--insecure" not in argv:
                cmd += ["--keys", self.keys]
        if self.verbose:
            print("$ " + " ".join(cmd), flush=True)
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=timeout, cwd=self.dir, errors="replace",
                              env={**os.environ, **self.cli_env})
        if self.verbose and proc.stdout.strip():
            print(proc.stdout.rstrip())
        if (self.verbose or proc.returncode != 0) and proc.stderr.strip():
            print(proc.stderr.rstrip())
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(argv[:2])} exited {proc.returncode}")
        return proc

    def wait_workers(self, count: int, timeout: float = 60) -> List[dict]:
        deadline = time.monotonic() + timeout
        while True:
            workers = self.workers()
            if len(workers) >= count:
                return workers
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(workers)} of {count} workers registered in {timeout:.0f} s")
            self.check_alive()
            time.sleep(0.2)

    def workers(self) -> List[dict]:
        proc = self.cli("workers", "--json", check=False, timeout=30)
        if proc.returncode != 0:
            return []
        return json.loads(proc.stdout)["workers"]

    def status(self, job: Optional[int] = None) -> List[dict]:
        argv = ["status"] + ([str(job)] if job is not None else []) + ["--json"]
        return json.loads(self.cli(*argv, timeout=30).stdout)["jobs"]

    def wait_state(self, job: int, states, timeout: float = 300) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            (st,) = self.status(job)
            if st["state"] in states:
                return st
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job} still {st['state']} after {timeout:.0f} s")
            self.check_alive()
            time.sleep(0.2)

    def check_alive(self):
        if self.server is not None and self.server.poll() is not None:
            raise AssertionError(f"the coordinator died ({self.server.returncode})")

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def dump_logs(self):
        for pid, path in self.logs.items():
            with open(path, errors="replace") as f:
                text = f.read()
            print(f"----- {os.path.basename(path)} (pid {pid}) -----\n{text[-6000:]}")

    # -- the shipped configs ---------------------------------------------------------------------
    CONFIGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "configs")

    def wait_shipped_ports(self):
        """configs/cluster.yaml's ports 7700 and 7701 free (ctest runs the cases that use them under
        one RESOURCE_LOCK). SO_REUSEADDR as ZeroMQ and the HTTP server set it: connections of an
        earlier run in TIME_WAIT do not block the port, a listener does."""
        for port, key in ((7700, "listen"), (7701, "http_listen")):
            deadline = time.monotonic() + 15
            while True:
                with socket.socket() as s:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    try:
                        s.bind(("127.0.0.1", port))
                        break
                    except OSError:
                        if time.monotonic() > deadline:
                            raise AssertionError(f"port {port} (configs/cluster.yaml's {key}) is in use on this machine")
                time.sleep(0.5)

    def shipped_serve(self, env: Dict[str, str], log_name: str = "coordinator") -> subprocess.Popen:
        self.wait_shipped_ports()
        self.endpoint = ""  # the CLI's default, like the configs'
        self.server = self.start([os.path.join(self.bin, "convoy-coordinator"), "serve", "--config",
                                  os.path.join(self.CONFIGS, "cluster.yaml")], log_name, env)
        return self.server

    def shipped_up(self, workers: int) -> Dict[str, str]:
        """The coordinator and WORKERS workers on configs/cluster.yaml and configs/worker.yaml as
        shipped, with HOME in this case's folder (the shipped state_dir is under ~). Returns that env."""
        env = {"HOME": os.path.join(self.dir, "home")}
        os.makedirs(env["HOME"], exist_ok=True)
        self.cli_env = env
        self.shipped_serve(env)
        for i in range(1, workers + 1):
            self.start([os.path.join(self.bin, "convoy-worker"), "--config",
                        os.path.join(self.CONFIGS, "worker.yaml")], f"worker{i}", env)
        return env

    # -- jobs --------------------------------------------------------------------------------------
    def job(self, model: str, name: str, repeat: int = 1, batch_size: Optional[int] = None) -> str:
        """Writes NAME/job.yaml for a fixture, its inputs repeated `repeat` times along dim 0, with
        paths relative to the job file (the CLI resolves them on the submitting side)."""
        with open(os.path.join(self.fixtures, "manifest.json")) as f:
            entry = json.load(f)["models"][model]
        folder = os.path.join(self.dir, name)
        os.makedirs(folder, exist_ok=True)
        inputs = []
        for i, spec in enumerate(entry["inputs"]):
            src = os.path.join(self.fixtures, model, spec["file"])
            if repeat == 1:
                inputs.append(os.path.relpath(src, folder))
            else:
                arr = np.load(src)
                np.save(os.path.join(folder, f"input_{i}.npy"), np.concatenate([arr] * repeat))
                inputs.append(f"input_{i}.npy")
        with open(os.path.join(folder, "job.yaml"), "w") as f:
            f.write(f"model: '{os.path.relpath(os.path.join(self.fixtures, model, 'model.pt'), folder)}'\n")
            f.write("inputs: [" + ", ".join(f"'{p}'" for p in inputs) + "]\n")
            f.write("output: out\n")
            f.write(f"batch_size: {batch_size or entry['batch_size']}\n")
        return os.path.join(folder, "job.yaml")

    def curve_socket(self, ctx, kind, name: str, server: str):
        """A pyzmq socket that speaks CURVE as key NAME of this case's keys folder ("client",
        "worker", "coordinator") to a server whose public key is the certificate SERVER."""
        import zmq
        s = ctx.socket(kind)
        public, secret = load_cert(os.path.join(self.keys, name + ".key_secret"))
        s.curve_publickey, s.curve_secretkey = public, secret
        s.curve_serverkey = load_cert(server)[0] if os.path.exists(server) else server.encode()
        return s

    def submit_wait_and_compare(self, model: str, name: str, timeout: float = 300):
        """`submit --wait` of the fixture job NAME for `model`; its outputs must equal PyTorch's."""
        job = self.job(model, name)
        self.cli("submit", job, "--wait", timeout=timeout)
        self.expect_pytorch(job, model)

    def expect_pytorch(self, job_yaml: str, model: str):
        with open(os.path.join(self.fixtures, "manifest.json")) as f:
            tol = float(json.load(f).get("tolerance", {}).get("float_rel_l2", 1e-4))
        problem = compare_dirs(os.path.join(os.path.dirname(job_yaml), "out"),
                               os.path.join(self.fixtures, model), tol)
        if problem:
            raise AssertionError(f"{model}: {problem}")
        print(f"{model}: outputs match PyTorch")

    def expect_same_as_local(self, job_yaml: str, backend: str = "opencl"):
        """Runs the same job in-process (`run --workers 0`) and requires equal outputs."""
        folder = os.path.dirname(job_yaml)
        local = os.path.join(folder, "local.yaml")
        with open(job_yaml) as f:
            text = f.read().replace("output: out", "output: out_local")
        with open(local, "w") as f:
            f.write(text)
        self.cli("run", local, "--workers", "0", "--backend", backend, timeout=600)
        names = sorted(n for n in os.listdir(os.path.join(folder, "out")) if n.endswith(".npy"))
        if not names:
            raise AssertionError("no outputs")
        for n in names:
            a = np.load(os.path.join(folder, "out", n))
            b = np.load(os.path.join(folder, "out_local", n))
            if a.shape != b.shape or a.dtype != b.dtype:
                raise AssertionError(f"{n}: {a.dtype}{list(a.shape)} vs local {b.dtype}{list(b.shape)}")
            if np.issubdtype(a.dtype, np.floating):
                err = float(np.linalg.norm((a - b).astype(np.float64))) / max(float(np.linalg.norm(b.astype(np.float64))), 1e-30)
                print(f"{n}: relative L2 vs --workers 0: {err:.2e} ({'identical' if np.array_equal(a, b) else 'not bit-identical'})")
                if err > 1e-4:
                    raise AssertionError(f"{n}: distributed output differs from --workers 0 ({err:.2e})")
            elif not np.array_equal(a, b):
                raise AssertionError(f"{n}: distributed output differs from --workers 0")


def load_cert(path: str):
    """(public, secret) Z85 keys of a ZeroMQ certificate file (secret is None for a public one)."""
    keys = {}
    with open(path) as f:
        for line in f:
            name, _, value = line.strip().partition("=")
            if name.strip() in ("public-key", "secret-key"):
                keys[name.strip()] = value.strip().strip('"').encode()
    return keys["public-key"], keys.get("secret-key")


def submitted_job(proc: subprocess.CompletedProcess) -> int:
    m = re.search(r"job (\d+)", proc.stdout)
    if not m:
        raise AssertionError(f"no job id in: {proc.stdout!r}")
    return int(m.group(1))


# -- cases -----------------------------------------------------------------------------------------

@case
def daemons_submit_wait(c: Cluster):
    """serve + two workers started separately, `submit --wait` of pipelines (max_replicas 1: a stage
    per worker, activations worker to worker), outputs = PyTorch's = --workers 0."""
    c.up(2, max_replicas=1)
    for model in ("resnet18", "gpt"):
        job = c.job(model, model)
        plan = c.cli("plan", job, timeout=120).stdout
        if "predicted throughput" not in plan:
            raise AssertionError("plan printed no prediction")
        proc = c.cli("submit", job, "--wait", timeout=600)
        if "predicted" not in proc.stdout:
            raise AssertionError("submit --wait did not report predicted vs measured stage times")
        (st,) = c.status(max(j["job"] for j in c.status()))
        if len(st["stages"]) < 2:
            raise AssertionError(f"{model} ran as {len(st['stages'])} stage(s), expected a pipeline")
        c.expect_pytorch(job, model)
        c.expect_same_as_local(job)


@case
def two_jobs_at_once(c: Cluster):
    """Two jobs submitted back to back both finish, in submission order, with correct outputs."""
    c.up(2)
    a = c.job("cnn", "a", repeat=8)
    b = c.job("seed", "b")
    ja = submitted_job(c.cli("submit", a))
    jb = submitted_job(c.cli("submit", b))
    sa = c.wait_state(ja, ("done", "failed", "cancelled"), 600)
    sb = c.wait_state(jb, ("done", "failed", "cancelled"), 600)
    if sa["state"] != "done" or sb["state"] != "done":
        raise AssertionError(f"states {sa['state']}, {sb['state']}")
    c.expect_same_as_local(a)
    c.expect_pytorch(b, "seed")


@case
def cancel_mid_job(c: Cluster):
    """A cancelled job stops part-way, reports cancelled, and the cluster runs the next job."""
    c.up(1)
    long_job = c.job("cnn", "long", repeat=400, batch_size=1)  # 2,000 micro-batches
    job = submitted_job(c.cli("submit", long_job))
    deadline = time.monotonic() + 300
    while True:
        (st,) = c.status(job)
        if st["samples_done"] > 0:
            break
        if time.monotonic() > deadline:
            raise AssertionError("no progress before cancelling")
        time.sleep(0.1)
    c.cli("cancel", str(job))
    st = c.wait_state(job, ("cancelled",), 60)
    if not 0 < st["samples_done"] < st["samples_total"]:
        raise AssertionError(f"cancelled job did {st['samples_done']} of {st['samples_total']} samples")
    c.submit_wait_and_compare("seed", "after")


@case
def worker_joins_mid_job(c: Cluster):
    """A worker that registers while a job runs is listed and used by the next job; nothing is lost."""
    c.up(1)
    job_yaml = c.job("cnn", "first", repeat=60, batch_size=1)
    job = submitted_job(c.cli("submit", job_yaml))
    c.wait_state(job, ("running", "done"), 300)
    c.worker(2)
    c.wait_workers(2)
    st = c.wait_state(job, ("done", "failed", "cancelled"), 600)
    if st["state"] != "done":
        raise AssertionError(f"job {st['state']}: {st.get('error')}")
    c.expect_same_as_local(job_yaml)
    c.submit_wait_and_compare("resnet18", "second", timeout=600)


@case
def garbage_messages(c: Cluster):
    """Garbage on the control and data sockets is dropped; the daemons keep serving a real job."""
    import zmq
    c.serve()
    c.worker(1)
    workers = c.wait_workers(1)
    ctx = zmq.Context()
    rng = random.Random(1)
    coordinator_key = os.path.join(c.keys, "coordinator.key")
    worker_key = workers[0]["key"] if "key" in workers[0] else None
    try:
        # Authenticated peers (the admin client's key on the control socket, the coordinator's own key
        # on the worker's data socket) reach the handlers; plain text never gets past the handshake.
        sockets = [c.curve_socket(ctx, zmq.DEALER, "client", coordinator_key)]
        if worker_key:
            sockets.append(c.curve_socket(ctx, zmq.DEALER, "coordinator", worker_key))
        sockets += [ctx.socket(zmq.DEALER), ctx.socket(zmq.DEALER)]
        endpoints = [c.endpoint, workers[0]["data_endpoint"]] if worker_key else [c.endpoint]
        endpoints += [c.endpoint, workers[0]["data_endpoint"]]
        for s, endpoint in zip(sockets, endpoints):
            s.setsockopt(zmq.LINGER, 2000)  # deliver everything before close
            s.connect(endpoint)
            s.send(b"")                                   # empty frame
            s.send(bytes(rng.randrange(256) for _ in range(13)))   # not whole words
            s.send(bytes(rng.randrange(256) for _ in range(64)))   # random words
            s.send_multipart([bytes(8), bytes(1 << 20)])  # an empty struct with a 1 MiB frame
            s.close()
    finally:
        ctx.term()
    time.sleep(0.5)
    c.check_alive()
    c.submit_wait_and_compare("seed", "after_garbage")
    with open(c.logs[c.server.pid], errors="replace") as f:
        if "dropped" not in f.read():
            raise AssertionError("the coordinator did not log the dropped messages")


def http_get(url: str):
    """(status, content type, body) of GET url; HTTP errors are answers too."""
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def raw_http(port: int, data: bytes) -> bytes:
    """Sends `data` on a fresh connection, half-closes, returns what comes back before the close."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:  # already hung up on (a flood)
            return b""
        reply = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return reply
            reply += chunk


def parse_metrics(text: str) -> Dict[str, float]:
    """Prometheus text → {'name{labels}': value}; every family must have # HELP and # TYPE."""
    values, helped, typed = {}, set(), set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
        elif line.startswith("# TYPE "):
            typed.add(line.split()[2])
        elif line:
            key, value = line.rsplit(" ", 1)
            family = key.split("{")[0]
            if family not in helped or family not in typed:
                raise AssertionError(f"metric {family} has no # HELP / # TYPE line before it")
            values[key] = float(value)
    return values


@case
def http_metrics(c: Cluster):
    """The coordinator's /healthz and /metrics (Prometheus text) after a job; 404, 405, garbage and a
    huge header over raw sockets; a silent connection; the daemon still serves a job afterwards."""
    port = free_port()
    c.up(2, http_listen=f"'127.0.0.1:{port}'")
    base = f"http://127.0.0.1:{port}"
    with open(c.logs[c.server.pid], errors="replace") as f:
        if f"info: metrics on {base}/metrics" not in f.read():
            raise AssertionError("the coordinator did not log its metrics address")
    job = c.job("seed", "first")
    c.cli("submit", job, "--wait", timeout=300)
    (st,) = c.status(max(j["job"] for j in c.status()))

    status, ctype, body = http_get(base + "/healthz")
    if (status, body) != (200, "ok\n"):
        raise AssertionError(f"/healthz: {status} {body!r}")
    status, ctype, body = http_get(base + "/metrics")
    print(body)
    if status != 200 or not ctype.startswith("text/plain; version=0.0.4"):
        raise AssertionError(f"/metrics: {status} {ctype!r}")
    m = parse_metrics(body)
    expect = {"convoy_workers": 2, 'convoy_jobs{state="done"}': 1, 'convoy_jobs{state="queued"}': 0,
              'convoy_jobs{state="running"}': 0, 'convoy_jobs{state="failed"}': 0,
              "convoy_samples_done_total": st["samples_total"],
              "convoy_micro_batches_done_total": st["micro_batches_total"],
              "convoy_micro_batches_in_flight": 0, "convoy_replays_total": 0}
    for key, want in expect.items():
        if m.get(key) != want:
            raise AssertionError(f"/metrics: {key} is {m.get(key)}, expected {want}")
    for w in ("w1", "w2"):
        if not 0 <= m.get(f'convoy_worker_last_heartbeat_seconds{{worker="{w}"}}', -1) < 5:
            raise AssertionError(f"/metrics: no sensible heartbeat age for {w}")
        if m.get(f'convoy_worker_rss_bytes{{worker="{w}"}}', 0) <= 0:
            raise AssertionError(f"/metrics: no RSS for {w}")
    if not any(k.startswith("convoy_messages_dropped_total{reason=") for k in m):
        raise AssertionError("/metrics: no convoy_messages_dropped_total{reason=...}")

    if http_get(base + "/nope")[0] != 404:
        raise AssertionError("/nope is not 404")
    req = urllib.request.Request(base + "/metrics", data=b"x", method="POST")
    try:
        urllib.request.urlopen(req, timeout=10)
        raise AssertionError("POST /metrics succeeded")
    except urllib.error.HTTPError as e:
        if e.code != 405:
            raise AssertionError(f"POST /metrics answered {e.code}, expected 405")
    silent = socket.create_connection(("127.0.0.1", port), timeout=10)  # says nothing, held open
    rng = random.Random(2)
    for data, want in ((bytes(rng.randrange(256) for _ in range(300)) + b"\r\n\r\n", b"HTTP/1.1 400"),
                       (b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 10000 + b"\r\n\r\n", b"HTTP/1.1 431"),
                       (b"GET /metrics HTTP/1.1\r\nX: " + b"a" * (1 << 20) + b"\r\n\r\n", b""),  # a flood
                       (b"GET /healthz HTTP/1.1\r\nHost", b"")):
        try:
            reply = raw_http(port, data)
        except OSError:  # hung up on before the whole flood was taken
            reply = b""
        if want and not reply.startswith(want):
            raise AssertionError(f"raw request answered {reply[:40]!r}, expected {want!r}")
    c.check_alive()
    if http_get(base + "/healthz")[0] != 200:  # served while the silent connection is open
        raise AssertionError("/healthz failed after garbage")

    c.submit_wait_and_compare("seed", "after_http")
    m = parse_metrics(http_get(base + "/metrics")[2])
    if m.get('convoy_jobs{state="done"}') != 2 or m.get("convoy_samples_done_total") != 2 * st["samples_total"]:
        raise AssertionError(f"/metrics after a second job: {m}")
    silent.close()


@case
def shipped_configs(c: Cluster):
    """configs/cluster.yaml and configs/worker.yaml as shipped (port 7700), two workers, and
    `submit JOB.yaml --wait` with no other flag."""
    c.shipped_up(2)
    c.wait_workers(2)
    c.submit_wait_and_compare("resnet18", "shipped", timeout=600)
    with urllib.request.urlopen("http://127.0.0.1:7701/healthz", timeout=10) as r:
        if r.status != 200:
            raise AssertionError(f"/healthz on the shipped port 7701 answered {r.status}")


@case
def worker_sigterm_drains(c: Cluster):
    """SIGTERM: the worker deregisters and exits 0; the coordinator lists it no more."""
    w = c.up(1)["w1"]
    w.send_signal(signal.SIGTERM)
    rc = w.wait(timeout=60)
    if rc != 0:
        raise AssertionError(f"worker exited {rc} on SIGTERM")
    deadline = time.monotonic() + 10
    while c.workers():
        if time.monotonic() > deadline:
            raise AssertionError("worker still listed after it deregistered")
        time.sleep(0.2)


def wait_progress(c: Cluster, job: int, timeout: float = 300) -> dict:
    """The job's status once it is running and has written at least one sample."""
    deadline = time.monotonic() + timeout
    while True:
        (st,) = c.status(job)
        if st["state"] == "running" and 0 < st["samples_done"] < st["samples_total"]:
            return st
        if st["state"] in ("done", "failed", "cancelled"):
            raise AssertionError(f"job {job} {st['state']} before the worker could be stopped (make it longer)")
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job}: no progress in {timeout:.0f} s")
        c.check_alive()
        time.sleep(0.05)


def last_stage_holder(st: dict) -> str:
    """A worker holding the job's last stage (the one that returns results)."""
    return st["stages"][-1]["workers"][-1]


def coordinator_log(c: Cluster) -> str:
    with open(c.logs[c.server.pid], errors="replace") as f:
        return f.read()


def long_job_losing_a_stage(c: Cluster, name: str):
    """Two workers and a 5,000-micro-batch job NAME; once it makes progress, the worker holding its last
    stage (to be stopped by the caller). Returns (job file, job id, that worker's name, its process)."""
    procs = c.up(2)
    job_yaml = c.job("cnn", name, repeat=1000, batch_size=1)  # 5,000 micro-batches
    job = submitted_job(c.cli("submit", job_yaml))
    victim = last_stage_holder(wait_progress(c, job))
    return job_yaml, job, victim, procs[victim]


def expect_replayed(c: Cluster, job: int, job_yaml: str, lost: str, how: str):
    st = c.wait_state(job, ("done", "failed", "cancelled"), 600)
    if st["state"] != "done":
        raise AssertionError(f"job {job} {st['state']} after {lost} was {how}: {st.get('error')}")
    if st["samples_done"] != st["samples_total"]:
        raise AssertionError(f"done with {st['samples_done']} of {st['samples_total']} samples")
    log = coordinator_log(c)
    replay = re.search(rf"info: job {job}: worker {lost} lost \(([^)]*)[^\n]*replaying (\d+) micro-batch\(es\) "
                       rf"on a new plan \(pipeline 1\) over 1 worker\(s\)", log)
    if not replay:
        raise AssertionError(f"the coordinator log shows no replay after {lost} was {how}")
    print(f"coordinator: {replay.group(0)}")
    if how not in replay.group(1):
        raise AssertionError(f"the loss of {lost} is logged as {replay.group(1)!r}, expected {how!r}")
    if f"job {job} failed" in log:
        raise AssertionError("the coordinator failed the job")
    c.expect_same_as_local(job_yaml)


@case
def worker_killed_mid_job(c: Cluster):
    """SIGKILL of a worker holding a stage mid-job: the coordinator declares it dead (missed
    heartbeats), re-plans over the survivor, replays the outstanding micro-batches; the job is done with
    outputs = --workers 0."""
    job_yaml, job, victim, proc = long_job_losing_a_stage(c, "killed")
    proc.kill()
    proc.wait(timeout=10)
    print(f"killed {victim} (SIGKILL)", flush=True)
    expect_replayed(c, job, job_yaml, victim, "missed 3 heartbeats")


@case
def worker_sigterm_mid_job(c: Cluster):
    """SIGTERM of a worker holding a stage mid-job: it drains and deregisters (exit 0); the coordinator
    re-plans over the survivor and replays what was outstanding; the job is done, outputs = --workers 0."""
    job_yaml, job, victim, proc = long_job_losing_a_stage(c, "terminated")
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=60)
    if rc != 0:
        raise AssertionError(f"{victim} exited {rc} on SIGTERM")
    print(f"stopped {victim} (SIGTERM)", flush=True)
    expect_replayed(c, job, job_yaml, victim, "deregistered")


@case
def last_worker_killed_waits(c: Cluster):
    """SIGKILL of the only worker mid-job: the job waits in `planning` (up to stage_ready_timeout_s)
    until a worker registers, then resumes and is done with outputs = --workers 0."""
    first = c.up(1, stage_ready_timeout_s=120)["w1"]
    job_yaml = c.job("cnn", "orphaned", repeat=600, batch_size=1)
    job = submitted_job(c.cli("submit", job_yaml))
    done_before = wait_progress(c, job)["samples_done"]
    first.kill()
    first.wait(timeout=10)
    deadline = time.monotonic() + 30
    while True:
        (st,) = c.status(job)
        if st["state"] == "planning" and "waiting up to" in coordinator_log(c):
            break
        if st["state"] != "running" or time.monotonic() > deadline:
            raise AssertionError(f"job {job} is {st['state']} ({st.get('error')}), expected planning")
        time.sleep(0.1)
    if st["samples_done"] < done_before:
        raise AssertionError(f"samples_done went back from {done_before} to {st['samples_done']}")
    c.worker(2)
    st = c.wait_state(job, ("done", "failed", "cancelled"), 600)
    if st["state"] != "done":
        raise AssertionError(f"job {job} {st['state']}: {st.get('error')}")
    if not re.search(rf"info: job {job}: running again on pipeline 1", coordinator_log(c)):
        raise AssertionError("the coordinator log shows no resumed pipeline")
    c.expect_same_as_local(job_yaml)


@case
def fusion_in_blocks_on_daemons(c: Cluster):
    """Scripted models with fusable chains inside loop and branch bodies (the fusion passes once
    left a dangling walk there and segfaulted the worker): daemons started by hand, a stage per
    worker, on OpenCL and on the reference backend; outputs = PyTorch's = --workers 0."""
    c.serve(max_replicas=1)
    c.worker(1)
    c.worker(2)
    c.worker(3, backend="reference")
    c.worker(4, backend="reference")
    c.wait_workers(4)
    for backend in ("opencl", "reference"):
        for model in ("fusion_loop", "fusion_nested", "scripted"):
            job = c.job(model, f"{model}_{backend}")
            c.cli("submit", job, "--backend", backend, "--wait", timeout=600)
            c.expect_pytorch(job, model)
            c.expect_same_as_local(job, backend)
    if len(c.workers()) != 4:
        raise AssertionError("a worker was lost running the fusion models")


@case
def poison_stage_quarantined(c: Cluster):
    """A stage that crashes every worker that builds it (test fault hook: SIGSEGV on a stage holding
    prim::Loop) kills at most two workers: the job then fails naming the stage and its ops, the third
    worker stays up, and the next job (no loop) runs on it."""
    c.serve(max_replicas=1)
    poison = {"CONVOY_FAULT_CRASH_BUILDING_OP": "prim::Loop"}
    procs = [c.worker(i, env=poison) for i in (1, 2, 3)]
    c.wait_workers(3)
    job_yaml = c.job("fusion_loop", "poison")
    job = submitted_job(c.cli("submit", job_yaml))
    st = c.wait_state(job, ("done", "failed", "cancelled"), 300)
    if st["state"] != "failed":
        raise AssertionError(f"job {job} {st['state']}, expected failed")
    error = st.get("error") or ""
    print(f"job {job} failed: {error}")
    if "quarantined" not in error or not re.search(r"died building stage \d+ \(\S+", error):
        raise AssertionError(f"the failure does not name the stage and its op: {error}")
    time.sleep(1.0)  # a third crash, if the coordinator assigned the stage again, would show by now
    dead = [p for p in procs if p.poll() is not None]
    if len(dead) != 2:
        raise AssertionError(f"{len(dead)} workers died, expected exactly 2")
    for p in dead:
        if p.returncode != -signal.SIGSEGV:
            raise AssertionError(f"worker pid {p.pid} exited {p.returncode}, expected SIGSEGV")
    alive = c.workers()
    if len(alive) != 1:
        raise AssertionError(f"{len(alive)} workers registered after the quarantine, expected 1")
    c.submit_wait_and_compare("seed", "after")


@case
def bad_data_fails_at_once(c: Cluster):
    """A micro-batch whose data is wrong for the model (a token id past the embedding table) fails the
    job at once with the worker's message: StageFailed says badInput, so it is not replayed on fresh
    pipelines, and the workers stay up."""
    c.up(2)
    job_yaml = c.job("gpt", "bad_tokens", repeat=4)
    tokens_path = os.path.join(os.path.dirname(job_yaml), "input_0.npy")
    tokens = np.load(tokens_path)
    tokens[tokens.shape[0] // 2, 0] = 999  # the GPT fixture's vocabulary has 100 ids
    np.save(tokens_path, tokens)
    proc = c.cli("submit", job_yaml, "--wait", check=False, timeout=600)
    if proc.returncode == 0:
        raise AssertionError("a job with an out-of-range token id succeeded")
    (st,) = c.status(submitted_job(proc))
    error = st.get("error") or ""
    if st["state"] != "failed" or "out of range" not in error or "999" not in error:
        raise AssertionError(f"job {st['state']}: {error}")
    if "replaying" in coordinator_log(c):
        raise AssertionError("the coordinator replayed a micro-batch that failed on its data")
    if len(c.workers()) != 2:
        raise AssertionError("a worker was lost")


def main(cases: Optional[Dict[str, Callable]] = None, doc: Optional[str] = None) -> int:
    """Runs one case of `cases` (this file's by default); other case files call it with theirs."""
    CASES = cases if cases is not None else globals()["CASES"]
    parser = argparse.ArgumentParser(description=(doc or __doc__).split("\n\n")[0])
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--bin")
    parser.add_argument("--fixtures")
    parser.add_argument("--workdir")
    parser.add_argument("--case")
    args = parser.parse_args()
    if args.list:
        print("\n".join(CASES))
        return 0
    if args.case not in CASES:
        print(f"error: unknown case {args.case!r}; known: {', '.join(CASES)}", file=sys.stderr)
        return 2
    cluster = Cluster(args, args.case)
    print(f"{args.case}: {CASES[args.case].__doc__}", flush=True)
    begin = time.monotonic()
    try:
        CASES[args.case](cluster)
    except (AssertionError, subprocess.TimeoutExpired, OSError, ValueError, KeyError) as exc:
        cluster.stop()
        cluster.dump_logs()
        print(f"error: {args.case}: {exc}", file=sys.stderr)
        return 1
    finally:
        cluster.stop()
    print(f"{args.case}: passed in {time.monotonic() - begin:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
