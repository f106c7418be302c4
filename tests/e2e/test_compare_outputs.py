#!/usr/bin/python3
"""Checks compare_outputs.py itself, so a conformance test cannot pass by accident.

    test_compare_outputs.py FIXTURES_DIR WORKDIR

For every fixture in FIXTURES_DIR (e.g. the committed torch2 ones) the expected outputs copied as
output_<i>.npy must pass, and each single defect must fail: a float output off by 1e-3 relative L2,
one integer element changed, a changed dtype or shape, a missing or an extra output, a NaN. A float
output off by 1e-6 must still pass. Runs the real command line (exit codes) for one fixture and the
functions for the rest.
"""

import os
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from compare_outputs import compare_dirs  # noqa: E402

failures = []


def expect(label: str, ok_expected: bool, out_dir: str, expected_dir: str) -> None:
    with open(os.devnull, "w") as sink:
        try:
            problem = compare_dirs(out_dir, expected_dir, 1e-4, out=sink)
        except ValueError as exc:
            problem = str(exc)
    if (problem is None) != ok_expected:
        failures.append(f"{label}: expected {'pass' if ok_expected else 'failure'}, got "
                        f"{'pass' if problem is None else 'failure: ' + problem}")


def fresh_copy(expected_dir: str, out_dir: str) -> list:
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    files = sorted(f for f in os.listdir(expected_dir) if f.startswith("expected_") and f.endswith(".npy"))
    for f in files:
        shutil.copy(os.path.join(expected_dir, f), os.path.join(out_dir, f.replace("expected_", "output_")))
    return [os.path.join(out_dir, f.replace("expected_", "output_")) for f in files]


def perturb_relative(a: np.ndarray, rel: float) -> np.ndarray:
    noise = np.random.default_rng(0).standard_normal(a.shape)
    noise *= rel * np.linalg.norm(a.astype(np.float64)) / max(np.linalg.norm(noise), 1e-30)
    return (a.astype(np.float64) + noise).astype(a.dtype)


def main() -> int:
    fixtures, work = sys.argv[1], sys.argv[2]
    models = sorted(d for d in os.listdir(fixtures) if os.path.isfile(os.path.join(fixtures, d, "expected_0.npy")))
    if not models:
        print(f"error: no fixtures with expected_0.npy in {fixtures}", file=sys.stderr)
        return 1
    for model in models:
        expected_dir = os.path.join(fixtures, model)
        out_dir = os.path.join(work, model)
        outputs = fresh_copy(expected_dir, out_dir)
        expect(f"{model} identical", True, out_dir, expected_dir)
        for path in outputs:
            name = f"{model}/{os.path.basename(path)}"
            original = np.load(path)
            if np.issubdtype(original.dtype, np.floating):
                np.save(path, perturb_relative(original, 1e-6))
                expect(f"{name} off by 1e-6", True, out_dir, expected_dir)
                np.save(path, perturb_relative(original, 1e-3))
                expect(f"{name} off by 1e-3", False, out_dir, expected_dir)
                bad = original.copy()
                bad.flat[0] = np.nan
                np.save(path, bad)
                expect(f"{name} with a NaN", False, out_dir, expected_dir)
                np.save(path, original.astype(np.float64))
                expect(f"{name} as float64", False, out_dir, expected_dir)
            else:
                bad = original.copy()
                bad.flat[-1] += 1
                np.save(path, bad)
                expect(f"{name} one element changed", False, out_dir, expected_dir)
                np.save(path, original.astype(np.int32))
                expect(f"{name} as int32", False, out_dir, expected_dir)
            np.save(path, original.reshape(original.shape[0], -1)[:, None] if original.ndim > 1
                    else original[:, None])
            expect(f"{name} reshaped", False, out_dir, expected_dir)
            os.remove(path)
            expect(f"{name} missing", False, out_dir, expected_dir)
            np.save(path, original)
        np.save(os.path.join(out_dir, f"output_{len(outputs)}.npy"), np.zeros(3, np.float32))
        expect(f"{model} extra output", False, out_dir, expected_dir)

    # The command line: exit 0 on a match, 1 with an `error:` line on a mismatch.
    model = models[0]
    expected_dir, out_dir = os.path.join(fixtures, model), os.path.join(work, "cli")
    outputs = fresh_copy(expected_dir, out_dir)
    tool = [sys.executable, os.path.join(HERE, "compare_outputs.py"), out_dir, expected_dir]
    ok = subprocess.run(tool, capture_output=True, text=True)
    if ok.returncode != 0:
        failures.append(f"cli on identical outputs: exit {ok.returncode}: {ok.stderr.strip()}")
    original = np.load(outputs[0])
    np.save(outputs[0], perturb_relative(original, 1e-3) if np.issubdtype(original.dtype, np.floating)
            else original + 1)
    bad = subprocess.run(tool, capture_output=True, text=True)
    if bad.returncode != 1 or not bad.stderr.startswith("error:"):
        failures.append(f"cli on a perturbed output: exit {bad.returncode}, stderr {bad.stderr.strip()!r}")
    loose = subprocess.run(tool + ["--rtol-l2", "1e-2"], capture_output=True, text=True)
    if np.issubdtype(original.dtype, np.floating) and loose.returncode != 0:
        failures.append(f"cli with --rtol-l2 1e-2 on a 1e-3 error: exit {loose.returncode}")

    if failures:
        print("error: compare_outputs.py misjudged:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    print(f"compare_outputs.py judged every defect right on {len(models)} fixtures: {', '.join(models)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
