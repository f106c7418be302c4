#!/usr/bin/python3
"""Feeds the Convoy CLI one broken input and checks that it fails cleanly.

    bad_inputs.py --coordinator BIN --fixtures DIR --case NAME --workdir DIR
    bad_inputs.py --list

DIR is a fixture folder from tests/fixtures/make_fixtures.py (the committed torch2 one is enough): its
`seed` (two float32 inputs, 12x4 and 12x2, micro-batches of 3) and `gpt` (int64 token ids) fixtures are
the valid starting points each case breaks in exactly one way. Every case is made at test time in a
fresh folder under WORKDIR; then `BIN run job.yaml --workers 0 --backend reference` must
  * exit with 1 (2 for usage errors) — never a signal, never an exit code >= 128,
  * print a stderr line starting with `error:` that contains the case's fragments (the file, key, op or
    values at fault; case-insensitive regular expressions),
  * not crash on the way (no sanitizer report, no `terminate called`), and write no output files.
The pickle cases also check that the command the pickle asks for did not run. Only the
`unsupported_op` case needs torch (it traces a model with an op Convoy does not have).
"""

import sys

CASES = [
    "not_a_zip", "truncated_zip", "missing_data_pkl", "pickle_os_system", "pickle_reduce_protocol2",
    "unsupported_op", "wrong_input_count", "wrong_input_shape", "wrong_input_dtype", "token_ids_as_float",
    "mismatched_sample_counts", "npy_bad_magic", "npy_truncated_data", "npy_fortran_order",
    "npy_big_endian", "yaml_unknown_key", "yaml_missing_key", "yaml_batch_size_zero", "yaml_syntax_error",
    "missing_model_file", "missing_job_file", "usage_no_job", "usage_unknown_flag",
    "yaml_key_not_a_name", "wrong_input_shape_on_workers", "unsupported_op_on_workers",
    "cluster_yaml_unknown_key", "worker_yaml_unknown_key", "worker_yaml_bad_value",
]

if __name__ == "__main__" and "--list" in sys.argv[1:]:
    print("\n".join(CASES))
    sys.exit(0)

import argparse  # noqa: E402
import os  # noqa: E402
import pickle  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import zipfile  # noqa: E402
from typing import Dict, List, Optional  # noqa: E402

import numpy as np  # noqa: E402

CRASH_MARKERS = ["AddressSanitizer", "UndefinedBehaviorSanitizer", "runtime error:", "terminate called",
                 "Segmentation fault", "core dumped", "Aborted"]


class Case:
    """What to run and what the failure must look like."""

    def __init__(self, job: Optional[str], fragments: List[str], exit_code: int = 1,
                 args: Optional[List[str]] = None, must_not_exist: Optional[str] = None,
                 output_dir: Optional[str] = None, program: str = "convoy-coordinator"):
        self.job = job
        self.program = program  # a binary next to the coordinator
        self.fragments = fragments
        self.exit_code = exit_code
        self.args = args  # replaces ["run", job, "--workers", "0", "--backend", "reference"]
        self.must_not_exist = must_not_exist
        self.output_dir = output_dir


def write_job(folder: str, model: str = "model.pt", inputs: Optional[List[str]] = None,
              batch_size: Optional[str] = "3", output: Optional[str] = "out", text: Optional[str] = None) -> str:
    path = os.path.join(folder, "job.yaml")
    if text is None:
        names = inputs if inputs is not None else ["input_0.npy", "input_1.npy"]
        lines = [f"model: {model}", f"inputs: [{', '.join(names)}]"]
        if output is not None:
            lines.append(f"output: {output}")
        if batch_size is not None:
            lines.append(f"batch_size: {batch_size}")
        text = "\n".join(lines) + "\n"
    with open(path, "w") as f:
        f.write(text)
    return path


def copy_seed(fixtures: str, folder: str, inputs: bool = True) -> None:
    seed = os.path.join(fixtures, "seed")
    shutil.copy(os.path.join(seed, "model.pt"), os.path.join(folder, "model.pt"))
    if inputs:
        for name in ("input_0.npy", "input_1.npy"):
            shutil.copy(os.path.join(seed, name), os.path.join(folder, name))


def rewrite_archive(src: str, dst: str, drop: frozenset = frozenset(),
                    replace: Optional[Dict[str, bytes]] = None) -> None:
    """Copies a TorchScript zip record by record, dropping or replacing records by their path inside the
    archive's top folder (e.g. `data.pkl`). Stored records keep PyTorch's 64-byte data alignment (padding
    in an extra field, as torch.jit.save does), so the only defect is the intended one."""
    replace = replace or {}
    with zipfile.ZipFile(src) as zin, open(dst, "wb") as raw, zipfile.ZipFile(raw, "w") as zout:
        for info in zin.infolist():
            inner = info.filename.split("/", 1)[1] if "/" in info.filename else info.filename
            if inner in drop:
                continue
            data = replace.get(inner, zin.read(info.filename))
            out = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            out.compress_type = info.compress_type
            if info.compress_type == zipfile.ZIP_STORED:
                header_end = raw.tell() + 30 + len(info.filename.encode()) + 4
                pad = (-header_end) % 64
                out.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
            zout.writestr(out, data)


def save_npy_raw(path: str, header: dict, payload: bytes) -> None:
    """Writes a version-1.0 .npy file with an arbitrary header dict and payload."""
    text = repr(header).encode("latin1")
    total = 10 + len(text) + 1
    text += b" " * ((-total) % 64) + b"\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + payload)


class RunsShell:
    """Pickles to `posix.system(command)` (protocol 2, GLOBAL + REDUCE), like a malicious archive."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def make_case(name: str, folder: str, fixtures: str) -> Case:
    seed_dir = os.path.join(fixtures, "seed")
    x = np.load(os.path.join(seed_dir, "input_0.npy"))
    h = np.load(os.path.join(seed_dir, "input_1.npy"))

    if name == "not_a_zip":
        copy_seed(fixtures, folder)
        with open(os.path.join(folder, "model.pt"), "w") as f:
            f.write("this is a text file, not a TorchScript archive\n" * 20)
        return Case(write_job(folder), [r"model\.pt", r"zip"])

    if name == "truncated_zip":
        copy_seed(fixtures, folder)
        with open(os.path.join(seed_dir, "model.pt"), "rb") as f:
            data = f.read()
        with open(os.path.join(folder, "model.pt"), "wb") as f:
            f.write(data[:len(data) // 2])
        return Case(write_job(folder), [r"model\.pt", r"zip|truncat|central director|end of"])

    if name == "missing_data_pkl":
        copy_seed(fixtures, folder)
        rewrite_archive(os.path.join(seed_dir, "model.pt"), os.path.join(folder, "model.pt"),
                        drop=frozenset({"data.pkl"}))
        return Case(write_job(folder), [r"model\.pt", r"data\.pkl"])

    if name in ("pickle_os_system", "pickle_reduce_protocol2"):
        copy_seed(fixtures, folder)
        marker = os.path.join(folder, "pwned")
        if name == "pickle_os_system":
            payload = b"cos\nsystem\n(S'touch " + marker.encode() + b"'\ntR."
            fragments = [r"os[.: ]+system"]
        else:
            payload = pickle.dumps(RunsShell("touch " + marker), protocol=2)
            assert payload.startswith(b"\x80\x02cposix\nsystem\n"), payload[:32]
            fragments = [r"posix[.: ]+system"]
        rewrite_archive(os.path.join(seed_dir, "model.pt"), os.path.join(folder, "model.pt"),
                        replace={"data.pkl": payload})
        return Case(write_job(folder), [r"model\.pt"] + fragments, must_not_exist=marker)

    if name in ("unsupported_op", "unsupported_op_on_workers"):
        import torch  # only these cases need torch

        class Exotic(torch.nn.Module):
            def forward(self, x, h):
                return torch.special.bessel_j0(x)[:, :2] + h

        with torch.no_grad():
            torch.jit.trace(Exotic(), (torch.rand(3, 4), torch.rand(3, 2))).save(os.path.join(folder, "model.pt"))
        for i, t in enumerate((x, h)):
            np.save(os.path.join(folder, f"input_{i}.npy"), t)
        # The op and where it is in the archive's code (a line number).
        job = write_job(folder)
        args = ["run", job, "--workers", "2", "--backend", "reference"] if name.endswith("workers") else None
        return Case(job, [r"special_bessel_j0", r"line\s*\d+|\.py:\d+"], args=args)

    if name == "wrong_input_count":
        copy_seed(fixtures, folder)
        return Case(write_job(folder, inputs=["input_0.npy"]), [r"input", r"\b2\b", r"\b1\b"])

    if name == "wrong_input_shape":
        copy_seed(fixtures, folder)
        np.save(os.path.join(folder, "input_0.npy"), np.concatenate([x, x[:, :1]], axis=1))  # 12x5, not 12x4
        return Case(write_job(folder), [r"\b5\b", r"\b4\b"])

    if name == "wrong_input_shape_on_workers":
        # The same mistake through the distributed path: a local cluster of one worker.
        copy_seed(fixtures, folder)
        np.save(os.path.join(folder, "input_0.npy"), np.concatenate([x, x[:, :1]], axis=1))
        job = write_job(folder)
        return Case(job, [r"\b5\b", r"\b4\b"], args=["run", job, "--workers", "1", "--backend", "reference"])

    if name == "wrong_input_dtype":
        copy_seed(fixtures, folder)
        np.save(os.path.join(folder, "input_0.npy"), x.astype(np.float64))
        return Case(write_job(folder), [r"float64|double", r"float32|float\b"])

    if name == "token_ids_as_float":
        gpt_dir = os.path.join(fixtures, "gpt")
        shutil.copy(os.path.join(gpt_dir, "model.pt"), os.path.join(folder, "model.pt"))
        tokens = np.load(os.path.join(gpt_dir, "input_0.npy"))
        np.save(os.path.join(folder, "input_0.npy"), tokens.astype(np.float32))
        return Case(write_job(folder, inputs=["input_0.npy"], batch_size="2"),
                    [r"float32|float", r"int64|long|int32|integer"])

    if name == "mismatched_sample_counts":
        copy_seed(fixtures, folder)
        np.save(os.path.join(folder, "input_1.npy"), h[:10])
        return Case(write_job(folder), [r"\b12\b", r"\b10\b"])

    if name == "npy_bad_magic":
        copy_seed(fixtures, folder)
        with open(os.path.join(folder, "input_0.npy"), "rb") as f:
            data = bytearray(f.read())
        data[0:6] = b"NOTNPY"
        with open(os.path.join(folder, "bad_magic.npy"), "wb") as f:
            f.write(bytes(data))
        return Case(write_job(folder, inputs=["bad_magic.npy", "input_1.npy"]), [r"bad_magic\.npy", r"npy|magic"])

    if name == "npy_truncated_data":
        copy_seed(fixtures, folder)
        # The header says 12x4 float32 (192 bytes); only 100 bytes follow.
        save_npy_raw(os.path.join(folder, "truncated.npy"),
                     {"descr": "<f4", "fortran_order": False, "shape": (12, 4)}, x.tobytes()[:100])
        return Case(write_job(folder, inputs=["truncated.npy", "input_1.npy"]),
                    [r"truncated\.npy", r"192|100|truncat|short|size|bytes"])

    if name == "npy_fortran_order":
        copy_seed(fixtures, folder)
        np.save(os.path.join(folder, "fortran.npy"), np.asfortranarray(x))
        return Case(write_job(folder, inputs=["fortran.npy", "input_1.npy"]), [r"fortran\.npy", r"fortran|order"])

    if name == "npy_big_endian":
        copy_seed(fixtures, folder)
        np.save(os.path.join(folder, "big_endian.npy"), x.astype(">f4"))
        return Case(write_job(folder, inputs=["big_endian.npy", "input_1.npy"]),
                    [r"big_endian\.npy", r"endian|>f4|byte order"])

    if name == "yaml_unknown_key":
        copy_seed(fixtures, folder)
        text = ("# batch_size misspelt on line 5\n"
                "model: model.pt\n"
                "inputs: [input_0.npy, input_1.npy]\n"
                "output: out\n"
                "batchsize: 3\n")
        # The file, the key and its 1-based line.
        return Case(write_job(folder, text=text), [r"job\.yaml", r"batchsize", r"\b5\b"])

    if name == "yaml_missing_key":
        copy_seed(fixtures, folder)
        return Case(write_job(folder, output=None), [r"job\.yaml", r"output"])

    if name == "yaml_batch_size_zero":
        copy_seed(fixtures, folder)
        return Case(write_job(folder, batch_size="0"), [r"job\.yaml", r"batch_size", r"\b0\b"])

    if name == "yaml_syntax_error":
        copy_seed(fixtures, folder)
        text = "model: model.pt\ninputs: [input_0.npy, input_1.npy\noutput: out\nbatch_size: 3\n"
        return Case(write_job(folder, text=text), [r"job\.yaml"])

    if name == "missing_model_file":
        copy_seed(fixtures, folder)
        return Case(write_job(folder, model="no_such_model.pt"), [r"no_such_model\.pt"])

    if name == "missing_job_file":
        job = os.path.join(folder, "no_such_job.yaml")
        return Case(job, [r"no_such_job\.yaml"])

    if name == "usage_no_job":
        return Case(None, [], exit_code=2, args=["run"])

    if name == "yaml_key_not_a_name":
        copy_seed(fixtures, folder)
        text = ("model: model.pt\n"
                "inputs: [input_0.npy, input_1.npy]\n"
                "? [output]\n"
                ": out\n"
                "batch_size: 3\n")
        return Case(write_job(folder, text=text), [r"job\.yaml", r"\b3\b", r"keys must be names"])

    if name == "cluster_yaml_unknown_key":
        path = os.path.join(folder, "cluster.yaml")
        with open(path, "w") as f:
            f.write("listen: tcp://127.0.0.1:0\nmax_inflight: 3\n")
        return Case(None, [r"cluster\.yaml", r"\b2\b", r"max_inflight"], args=["serve", "--config", path])

    if name == "worker_yaml_unknown_key":
        path = os.path.join(folder, "worker.yaml")
        with open(path, "w") as f:
            f.write("coordinator: tcp://127.0.0.1:1\nbackend: reference\nheartbeat: 100\n")
        return Case(None, [r"worker\.yaml", r"\b3\b", r"heartbeat"], args=["--config", path],
                    program="convoy-worker")

    if name == "worker_yaml_bad_value":
        path = os.path.join(folder, "worker.yaml")
        with open(path, "w") as f:
            f.write("backend: cuda\n")
        return Case(None, [r"worker\.yaml", r"\b1\b", r"backend", r"cuda"], args=["--config", path],
                    program="convoy-worker")

    if name == "usage_unknown_flag":
        copy_seed(fixtures, folder)
        job = write_job(folder)
        return Case(job, [r"--frobnicate"], exit_code=2,
                    args=["run", job, "--workers", "0", "--backend", "reference", "--frobnicate"])

    raise ValueError(f"unknown case {name}")


def describe_exit(rc: int) -> str:
    if rc < 0:
        try:
            return f"killed by signal {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit code {rc}"


def check(case: Case, proc: subprocess.CompletedProcess, output_dir: str) -> List[str]:
    problems = []
    rc = proc.returncode
    if rc != case.exit_code:
        problems.append(f"expected exit code {case.exit_code}, got {describe_exit(rc)}")
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    if not errors:
        problems.append("no stderr line starts with 'error:'")
    message = "\n".join(errors)
    for fragment in case.fragments:
        if not re.search(fragment, message, re.IGNORECASE):
            problems.append(f"the error line does not match /{fragment}/")
    for marker in CRASH_MARKERS:
        if marker in proc.stderr:
            problems.append(f"stderr shows a crash ({marker!r})")
    if case.must_not_exist and os.path.exists(case.must_not_exist):
        problems.append(f"the pickle's command ran: {case.must_not_exist} exists")
    if os.path.isdir(output_dir):
        written = sorted(f for f in os.listdir(output_dir) if f.startswith("output_"))
        if written:
            problems.append(f"a failed job wrote outputs: {written}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--coordinator", required=True)
    parser.add_argument("--fixtures", required=True, help="fixture folder with seed/ and gpt/")
    parser.add_argument("--case", required=True, choices=CASES)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args()

    folder = os.path.join(os.path.abspath(args.workdir), args.case)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    case = make_case(args.case, folder, os.path.abspath(args.fixtures))
    program = os.path.join(os.path.dirname(os.path.abspath(args.coordinator)), case.program)
    cmd = [program] + (case.args or ["run", case.job, "--workers", "0", "--backend", "reference"])
    print("$ " + " ".join(cmd), flush=True)
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
                              timeout=args.timeout, cwd=folder)
    except subprocess.TimeoutExpired:
        print(f"error: {args.case}: convoy-coordinator hung (no exit in {args.timeout:.0f} s)", file=sys.stderr)
        return 1
    print(f"{describe_exit(proc.returncode)}; stderr:\n{proc.stderr.rstrip()}")
    if proc.stdout.strip():
        print(f"stdout:\n{proc.stdout.rstrip()}")
    problems = check(case, proc, os.path.join(folder, "out"))
    if problems:
        print(f"error: {args.case}: " + "; ".join(problems), file=sys.stderr)
        return 1
    print(f"{args.case}: failed cleanly as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
