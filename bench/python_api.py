#!/usr/bin/python3
"""The Python API's three ways to run one kiln session, side by side: run() with numpy feeds, run_with_ort_values()
with OrtValue feeds, and run_with_iobinding() with the input bound once and every output bound to preallocated
numpy memory (written in place).

    /usr/bin/python3 bench/python_api.py [--build build] [--threads 2] [--rounds 15] [--block 20] [--only NAME]

For each model, one session; each round runs a block of `--block` timed runs of each way, the order rotating from
round to round, after one untimed run. It prints each way's median latency, its ratio to run() (the median over
rounds of the block medians' ratio; below 1: faster than run()), and the tensor memory each run took from the heap
(kiln.tensor_heap_stats(), averaged over the timed runs). Models: a tiny one (Relu over 1000 floats: the API's own
overhead), and bench/bench.py's SRCNN, ResNet-50, MobileNetV2 and BERT-like encoder.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def tiny_model(path):
    import onnx
    from onnx import helper, TensorProto
    if not os.path.exists(path):
        g = helper.make_graph([helper.make_node("Relu", ["input"], ["output"])], "tiny",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1000])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1000])])
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def concrete(dims, fixed):
    return [d if isinstance(d, int) and d > 0 else fixed for d in dims]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--block", type=int, default=20)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    sys.path.insert(0, os.path.join(build, "python"))
    import kiln
    import bench as bench_models

    models = {"tiny (Relu, 1x1000)": lambda: tiny_model(os.path.join(build, "bench", "tiny_relu.onnx"))}
    for name, (make, _shapes) in bench_models.model_list(os.path.join(build, "bench")).items():
        if "batch" not in name:
            models[name] = make
    print(bench_models.cpu_description())
    print("threads: %d; %d rounds of %d runs per way" % (args.threads, args.rounds, args.block))
    print()
    header = "%-34s %-20s %12s %14s %16s %14s" % ("model", "way", "median ms", "ratio to run", "allocs/run",
                                                     "heap KiB/run")
    print(header)
    print("-" * len(header))
    for name, make in models.items():
        if args.only and args.only not in name:
            continue
        path = make()
        so = kiln.SessionOptions()
        so.intra_op_num_threads = args.threads
        sess = kiln.InferenceSession(path, so)
        feeds = {}
        rng = np.random.default_rng(0)
        for i in sess.get_inputs():
            feeds[i.name] = rng.standard_normal(concrete(i.shape, 1)).astype(np.float32)
        outs = sess.run(None, feeds)
        out_names = [o.name for o in sess.get_outputs()]
        ort_feeds = {k: kiln.OrtValue.ortvalue_from_numpy(v) for k, v in feeds.items()}
        binding = sess.io_binding()
        for k, v in feeds.items():
            binding.bind_cpu_input(k, v)
        bound = [np.empty_like(o) for o in outs]
        for n, b in zip(out_names, bound):
            binding.bind_output(n, "cpu", 0, b.dtype.type, list(b.shape), b.ctypes.data)
        ways = {
            "run": lambda: sess.run(None, feeds),
            "run_with_ort_values": lambda: sess.run_with_ort_values(None, ort_feeds),
            "run_with_iobinding": lambda: sess.run_with_iobinding(binding),
        }
        # The ways agree before they are timed.
        sess.run_with_iobinding(binding)
        for o, b, v in zip(outs, bound, sess.run_with_ort_values(None, ort_feeds)):
            np.testing.assert_array_equal(o, b)
            np.testing.assert_array_equal(o, v.numpy())
        times = {w: [] for w in ways}
        block_medians = {w: [] for w in ways}
        allocs = {w: [0, 0, 0] for w in ways}  # allocations, bytes, runs
        order = list(ways)
        for r in range(args.rounds):
            for w in order[r % 3:] + order[:r % 3]:
                fn = ways[w]
                fn()
                block = []
                a0, b0 = kiln.tensor_heap_stats()
                for _ in range(args.block):
                    t0 = time.perf_counter()
                    fn()
                    block.append((time.perf_counter() - t0) * 1e3)
                a1, b1 = kiln.tensor_heap_stats()
                allocs[w][0] += a1 - a0
                allocs[w][1] += b1 - b0
                allocs[w][2] += args.block
                times[w] += block
                block_medians[w].append(statistics.median(block))
        for w in ways:
            ratio = statistics.median(x / y for x, y in zip(block_medians[w], block_medians["run"]))
            a, b, n = allocs[w]
            print("%-34s %-20s %12.3f %14.3f %16.2f %14.1f" % (name, w, statistics.median(times[w]), ratio, a / n,
                                                                 b / n / 1024))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
