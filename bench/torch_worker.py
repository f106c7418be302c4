"""PyTorch side of the model benchmark (bench/run_model_bench.sh): the same line protocol as
`convoy-bench-models --serve`, run by any Python with torch (Debian's 1.13, or a 2.x venv).

    PYTHON bench/torch_worker.py --threads N

Commands on stdin, one answer line each ("ok ..." or "error: ..."):
    load NAME MODEL.pt INPUT.npy  -> ok version=V threads=N load_s=L first_s=F warm_s=W
    time NAME N                   -> ok T1 ... TN   (seconds per batch)
    save NAME OUT.npy             -> ok             (first output of the last batch, float32)
    drop NAME                     -> ok
    quit
"""
import argparse
import sys
import time

import numpy as np
import torch


def first_tensor(v):
    while not isinstance(v, torch.Tensor):
        v = v[0]
    return v


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    models = {}
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        cmd, rest = words[0], words[1:]
        if cmd == "quit":
            break
        try:
            if cmd == "load":
                name, pt, inp = rest
                t0 = time.perf_counter()
                m = torch.jit.load(pt).eval()
                load_s = time.perf_counter() - t0
                x = torch.from_numpy(np.load(inp))
                with torch.inference_mode():
                    t0 = time.perf_counter()
                    out = m(x)
                    first_s = time.perf_counter() - t0
                    t0 = time.perf_counter()
                    out = m(x)  # the profiling executor optimises on the second call
                    warm_s = time.perf_counter() - t0
                    out = m(x)
                models[name] = [m, x, out]
                print(f"ok version={torch.__version__} threads={torch.get_num_threads()} load_s={load_s:.4f} "
                      f"first_s={first_s:.4f} warm_s={warm_s:.4f}")
            elif cmd == "time":
                name, n = rest[0], int(rest[1])
                m, x, _ = models[name]
                times = []
                with torch.inference_mode():
                    for _ in range(n):
                        t0 = time.perf_counter()
                        out = m(x)
                        times.append(time.perf_counter() - t0)
                models[name][2] = out
                print("ok " + " ".join(f"{t:.6f}" for t in times))
            elif cmd == "save":
                name, path = rest
                np.save(path, first_tensor(models[name][2]).detach().float().numpy())
                print("ok")
            elif cmd == "drop":
                del models[rest[0]]
                print("ok")
            else:
                print(f"error: unknown command {cmd!r}")
        except Exception as e:  # report, keep serving
            print(f"error: {type(e).__name__}: {e}".replace("\n", " "))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
