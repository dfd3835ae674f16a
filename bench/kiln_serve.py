#!/usr/bin/python3
"""kiln's side of bench.py's interleaved latency measurement, through the Python module's InferenceSession.

    /usr/bin/python3 bench/kiln_serve.py MODEL THREADS [--precision=fp32|bf16] [NAME=1x3x224x224 ...]

Creates the session (graph optimization level all, THREADS intra-op threads) on random inputs drawn like
`kiln bench`'s (uniform [0, 1) floats, small integers), prints {"session_ms": ...} as one JSON line, then
answers each line "N W" on stdin with {"lat": [N latencies in ms]}: W untimed runs, then N timed ones. End of
input ends it.
"""
import json
import os
import sys
import time

import numpy as np

if os.environ.get("KILN_PYTHON_DIR"):  # the build's module (bench.py sets it), else an installed one
    sys.path.insert(0, os.environ["KILN_PYTHON_DIR"])
import kiln  # noqa: E402

DTYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32}


def main():
    model, threads, specs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    precision = "fp32"
    for s in [s for s in specs if s.startswith("--precision=")]:
        precision = s.split("=", 1)[1]
        specs.remove(s)
    shapes = {s.split("=")[0]: [int(d) for d in s.split("=")[1].split("x")] for s in specs}
    opts = kiln.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.graph_optimization_level = kiln.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.precision = precision
    t0 = time.perf_counter()
    sess = kiln.InferenceSession(model, opts)
    session_ms = (time.perf_counter() - t0) * 1e3
    rng = np.random.default_rng(0)
    feeds = {}
    for i in sess.get_inputs():
        dims = shapes.get(i.name, i.shape)
        if any(not isinstance(d, int) for d in dims):
            raise SystemExit("input %s needs a shape" % i.name)
        dtype = DTYPES.get(i.type)
        if dtype is None:
            raise SystemExit("input %s: no data for %s" % (i.name, i.type))
        feeds[i.name] = (rng.random(dims, dtype=np.float32) if dtype == np.float32
                         else rng.integers(0, 4, dims).astype(dtype))
    print(json.dumps({"session_ms": session_ms}), flush=True)
    for line in sys.stdin:
        n, warmup = (int(v) for v in line.split())
        for _ in range(warmup):
            sess.run(None, feeds)
        lat = []
        for _ in range(n):
            t = time.perf_counter()
            sess.run(None, feeds)
            lat.append((time.perf_counter() - t) * 1e3)
        print(json.dumps({"lat": lat}), flush=True)


if __name__ == "__main__":
    main()
