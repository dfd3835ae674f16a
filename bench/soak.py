#!/usr/bin/python3
"""Soak test: many runs that alternate three input shapes, watching the process's memory.

    /usr/bin/python3 bench/soak.py [--build build] [--runs 10000] [--threads 2] [--only resnet50|bert] [--check]

For ResNet-50 (dynamic batch, height and width) and the BERT-like encoder of bench.py (dynamic batch and sequence),
exported with torch 1.13 into BUILD/bench, it runs `--runs` inferences through the Python module's InferenceSession,
the input shape cycling through three shapes, in a process of its own per model (without torch: only kiln and
numpy), and samples that process's RSS (/proc/self/status) after every run. It
prints the RSS after warm-up (the first two cycles of each shape), the median and the last, and the growth from the
first to the last. With --check it exits 1 when that growth exceeds 5% (memory that grows with the number of runs:
a leak, or a cache that never stops growing). CI runs a short version (--runs 90 --check).
"""
import argparse
import json
import os
import subprocess
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def export_models(out):
    import torch
    import torchvision
    os.makedirs(out, exist_ok=True)
    models = {}
    path = os.path.join(out, "soak_resnet50.onnx")
    if not os.path.exists(path):
        torch.manual_seed(0)
        with torch.no_grad():
            torch.onnx.export(torchvision.models.resnet50().eval(), torch.randn(1, 3, 224, 224), path, opset_version=14,
                              input_names=["input"], output_names=["output"],
                              dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"}})
    models["resnet50"] = (path, [(1, 3, 224, 224), (2, 3, 160, 160), (1, 3, 256, 192)])
    path = os.path.join(out, "soak_bert.onnx")
    if not os.path.exists(path):
        torch.manual_seed(0)
        layer = torch.nn.TransformerEncoderLayer(d_model=768, nhead=12, dim_feedforward=3072, activation="gelu",
                                                 batch_first=True)
        # torch 1.13's TransformerEncoder "fast path" (eval + no_grad) cannot be exported: export with grad enabled.
        torch.onnx.export(torch.nn.TransformerEncoder(layer, num_layers=12).eval(), torch.randn(1, 128, 768), path,
                          opset_version=14, input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch", 1: "sequence"}})
    models["bert"] = (path, [(1, 128, 768), (1, 64, 768), (2, 32, 768)])
    return models


def soak(kiln, name, path, shapes, runs, threads):
    opts = kiln.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = kiln.InferenceSession(path, opts)
    rng = np.random.default_rng(0)
    feeds = [{"input": rng.random(s, dtype=np.float32)} for s in shapes]
    warmup = 2 * len(shapes)
    samples = []
    t0 = time.time()
    for i in range(runs):
        sess.run(None, feeds[i % len(shapes)])
        samples.append(rss_mib())
        if (i + 1) % max(1, runs // 10) == 0:
            print("  %s: %d/%d runs, RSS %.1f MiB, %.0f s" % (name, i + 1, runs, samples[-1], time.time() - t0),
                  flush=True)
    after = samples[warmup - 1:] if runs > warmup else samples
    first, last = after[0], after[-1]
    return {"name": name, "runs": runs, "first": first, "median": statistics.median(after), "last": last,
            "max": max(after), "growth": (last - first) / first, "seconds": time.time() - t0}


def worker(args):
    """One model's soak, in this process: prints progress, then a JSON line of the results."""
    sys.path.insert(0, os.path.join(args.build, "python"))
    import kiln
    shapes = [tuple(int(d) for d in s.split("x")) for s in args.worker[2:]]
    r = soak(kiln, args.worker[0], args.worker[1], shapes, args.runs, args.threads)
    print("RESULT " + json.dumps(r), flush=True)
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--runs", type=int, default=10000, help="runs per model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", choices=["resnet50", "bert"])
    ap.add_argument("--check", action="store_true", help="exit 1 when RSS grows more than 5%% after warm-up")
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)  # NAME PATH SHAPE...: one model, in-process
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    models = export_models(os.path.join(args.build, "bench"))
    results = []
    for name, (path, shapes) in models.items():
        if args.only and name != args.only:
            continue
        spec = ["x".join(map(str, s)) for s in shapes]
        print("soak: %s, %d runs alternating %s" % (name, args.runs, ", ".join(spec)), flush=True)
        cmd = [sys.executable, os.path.abspath(__file__), "--build", args.build, "--runs", str(args.runs), "--threads",
               str(args.threads), "--worker", name, path] + spec
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        for line in p.stdout:
            if line.startswith("RESULT "):
                results.append(json.loads(line[len("RESULT "):]))
            else:
                print(line, end="", flush=True)
        if p.wait() != 0:
            print("soak: the %s worker failed (exit %d)" % (name, p.returncode), file=sys.stderr)
            return 1
    print("\n%-10s %7s %12s %12s %12s %12s %8s %8s" % ("model", "runs", "RSS first", "RSS median", "RSS last",
                                                      "RSS max", "growth", "seconds"))
    for r in results:
        print("%-10s %7d %10.1f MiB %8.1f MiB %8.1f MiB %8.1f MiB %7.2f%% %8.0f" % (
            r["name"], r["runs"], r["first"], r["median"], r["last"], r["max"], 100 * r["growth"], r["seconds"]))
    bad = [r for r in results if r["growth"] > 0.05]
    if args.check and bad:
        print("soak: RSS grew more than 5%% after warm-up: %s" % ", ".join(r["name"] for r in bad), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
