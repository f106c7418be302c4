#!/usr/bin/python3
"""Compares Convoy's job outputs with PyTorch's expected outputs.

    compare_outputs.py OUTPUT_DIR EXPECTED_DIR [--rtol-l2 1e-4]

OUTPUT_DIR holds output_<i>.npy (what `convoy-coordinator run` wrote), EXPECTED_DIR holds expected_<i>.npy
(what tests/fixtures/make_fixtures.py wrote). Both sets must have the same count, and each pair the same
shape and dtype. Floating-point outputs pass when their relative L2 error ||a - b|| / max(||b||, tiny),
accumulated in float64, is at most the tolerance (and neither has a NaN/Inf where the other does not);
integer and bool outputs must be equal element for element. Prints one line per output and exits 1 on
any mismatch (2 for usage errors). Needs only numpy (Debian's python3-numpy).
"""

import argparse
import os
import re
import sys
from typing import List, Optional, Tuple

import numpy as np

TINY = 1e-30


def numbered_files(folder: str, prefix: str) -> List[str]:
    """The files <prefix>_0.npy ... <prefix>_<n-1>.npy in folder; a gap in the numbering is an error."""
    if not os.path.isdir(folder):
        raise ValueError(f"{folder}: not a directory")
    pattern = re.compile(re.escape(prefix) + r"_(\d+)\.npy$")
    indices = sorted(int(m.group(1)) for m in map(pattern.match, os.listdir(folder)) if m)
    if indices != list(range(len(indices))):
        raise ValueError(f"{folder}: {prefix}_<i>.npy files are not numbered 0..n-1: {indices}")
    return [os.path.join(folder, f"{prefix}_{i}.npy") for i in indices]


def compare_arrays(actual: np.ndarray, expected: np.ndarray, rtol_l2: float) -> Tuple[bool, str]:
    """Returns (ok, description of the difference)."""
    if actual.dtype != expected.dtype:
        return False, f"dtype {actual.dtype}, expected {expected.dtype}"
    if actual.shape != expected.shape:
        return False, f"shape {list(actual.shape)}, expected {list(expected.shape)}"
    if np.issubdtype(expected.dtype, np.floating) or np.issubdtype(expected.dtype, np.complexfloating):
        a = actual.astype(np.complex128 if np.iscomplexobj(expected) else np.float64)
        b = expected.astype(a.dtype)
        a_bad, b_bad = ~np.isfinite(a), ~np.isfinite(b)
        if not np.array_equal(a_bad, b_bad) or not np.array_equal(a[a_bad], b[b_bad], equal_nan=True):
            where = np.argwhere(a_bad != b_bad)
            return False, (f"non-finite values differ: {int(a_bad.sum())} in output, {int(b_bad.sum())} "
                           f"expected; first at index {tuple(where[0]) if len(where) else '?'}")
        a, b = a[~b_bad], b[~b_bad]
        err = float(np.linalg.norm(a - b)) / max(float(np.linalg.norm(b)), TINY)
        detail = f"relative L2 error {err:.3e} (tolerance {rtol_l2:.1e})"
        if a.size:
            diff = np.abs(a - b)
            worst = int(np.argmax(diff))
            detail += f", max abs diff {float(diff.flat[worst]):.3e}"
        return err <= rtol_l2, detail
    mismatched = actual != expected
    count = int(np.count_nonzero(mismatched))
    if count == 0:
        return True, "exact"
    first = tuple(int(i) for i in np.argwhere(mismatched)[0])
    return False, (f"{count} of {expected.size} elements differ; first at index {first}: "
                   f"{actual[first]!r} vs expected {expected[first]!r}")


def compare_dirs(output_dir: str, expected_dir: str, rtol_l2: float, out=sys.stdout) -> Optional[str]:
    """Prints a line per output; returns None when everything matches, else a one-line summary."""
    outputs = numbered_files(output_dir, "output")
    expected = numbered_files(expected_dir, "expected")
    if len(outputs) != len(expected):
        return (f"{output_dir} has {len(outputs)} output_<i>.npy files, {expected_dir} has "
                f"{len(expected)} expected_<i>.npy")
    if not expected:
        return f"{expected_dir}: no expected_<i>.npy files"
    failed = []
    for i, (o, e) in enumerate(zip(outputs, expected)):
        try:
            actual = np.load(o, allow_pickle=False)
        except Exception as exc:  # a malformed file is a mismatch to report, not a crash
            failed.append(i)
            print(f"output {i}: FAIL: cannot read {o}: {exc}", file=out)
            continue
        want = np.load(e, allow_pickle=False)
        ok, detail = compare_arrays(actual, want, rtol_l2)
        print(f"output {i}: {'ok' if ok else 'FAIL'}: {want.dtype}{list(want.shape)}: {detail}", file=out)
        if not ok:
            failed.append(i)
    if failed:
        return f"outputs {failed} of {output_dir} do not match {expected_dir}"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output_dir")
    parser.add_argument("expected_dir")
    parser.add_argument("--rtol-l2", type=float, default=1e-4, help="relative L2 tolerance for floats")
    args = parser.parse_args()
    try:
        problem = compare_dirs(args.output_dir, args.expected_dir, args.rtol_l2)
    except ValueError as exc:
        problem = str(exc)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
