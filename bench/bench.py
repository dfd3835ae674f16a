#!/usr/bin/python3
"""kiln against ONNX Runtime 1.30 (npm onnxruntime-node, graphOptimizationLevel 'all'), side by side.

    /usr/bin/python3 bench/bench.py [--build build] [--threads 2] [--iterations 20] [--warmup 3] [--only NAME]

Exports the benchmark models with torch 1.13 (random weights) into BUILD/bench, then for each model runs
`kiln bench --json` and bench/ort_bench.js alternately, `--rounds` times each, with the same thread count, and
prints the median latencies, the ratio kiln/ORT (below 1: kiln is faster; the median over rounds of each kiln
round's median over the next ORT round's, so that drifts in the machine's speed cancel), the ratio of the two
sides' best rounds, session creation and peak RSS.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def model_list(out):
    """name -> (function that exports the model and returns its path, --shape specs)."""
    import torchvision
    os.makedirs(out, exist_ok=True)

    def export(name, make, args, dynamic=None, no_grad=True):
        def do():
            path = os.path.join(out, name + ".onnx")
            if not os.path.exists(path):
                torch.manual_seed(0)
                model = make().eval()
                # torch 1.13's TransformerEncoder "fast path" (eval + no_grad) cannot be exported.
                with torch.set_grad_enabled(not no_grad):
                    torch.onnx.export(model, args, path, opset_version=14, input_names=["input"],
                                      output_names=["output"], dynamic_axes=dynamic)
            return path
        return do

    def bert():
        layer = torch.nn.TransformerEncoderLayer(d_model=768, nhead=12, dim_feedforward=3072, activation="gelu",
                                                 batch_first=True)
        return torch.nn.TransformerEncoder(layer, num_layers=12)

    x224 = torch.randn(1, 3, 224, 224)
    return {
        "srcnn (1x3x256x256, x3)": (lambda: os.path.join(ROOT, "examples", "srcnn", "srcnn.onnx"), []),
        "resnet50": (export("resnet50", torchvision.models.resnet50, x224), []),
        "mobilenet_v2": (export("mobilenet_v2", torchvision.models.mobilenet_v2, x224), []),
        "bert-base-like encoder (seq 128)": (export("bert_encoder", bert, torch.randn(1, 128, 768), no_grad=False),
                                             []),
        "resnet50 batch 8": (export("resnet50_dyn", torchvision.models.resnet50, x224, {"input": {0: "batch"}}),
                             ["input=8x3x224x224"]),
    }


def run_json(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(cmd), p.stderr[-2000:]))
    return p.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    kiln = os.path.join(args.build, "tools", "kiln", "kiln")
    env = dict(os.environ, NODE_PATH=os.path.join(args.build, "ort", "node_modules"))
    os.environ.update(env)
    models = model_list(os.path.join(args.build, "bench"))
    tmp = os.path.join(args.build, "bench", "kiln.json")
    print("%-34s %12s %12s %8s %6s %11s %11s %9s %9s" % ("model", "kiln ms", "ORT ms", "ratio", "best", "kiln sess",
                                                        "ORT sess", "kiln MiB", "ORT MiB"))
    for name, (make, shapes) in models.items():
        if args.only and args.only not in name:
            continue
        path = make()
        kiln_runs, ort_runs = [], []
        for _ in range(args.rounds):  # alternate, so both see the same machine state
            cmd = [kiln, "bench", path, "--threads", str(args.threads), "--iterations", str(args.iterations),
                   "--warmup", str(args.warmup), "--json", tmp]
            for s in shapes:
                cmd += ["--shape", s]
            run_json(cmd)
            with open(tmp) as f:
                kiln_runs.append(json.load(f))
            out = run_json(["node", os.path.join(HERE, "ort_bench.js"), path, str(args.threads),
                            str(args.iterations), str(args.warmup)] + shapes)
            ort_runs.append(json.loads(out.strip().splitlines()[-1]))
        # The machine's speed drifts over seconds (a shared VM): each kiln round is compared with the ORT round
        # run right after it, and the ratio is the median of those paired ratios. The latencies shown are the
        # medians over rounds of each side's median; `best` is the ratio of the best rounds.
        k = statistics.median(r["median_ms"] for r in kiln_runs)
        o = statistics.median(r["median_ms"] for r in ort_runs)
        paired = statistics.median(kr["median_ms"] / orr["median_ms"] for kr, orr in zip(kiln_runs, ort_runs))
        best = min(r["median_ms"] for r in kiln_runs) / min(r["median_ms"] for r in ort_runs)
        print("%-34s %12.2f %12.2f %8.2f %6.2f %11.1f %11.1f %9.0f %9.0f" % (
            name, k, o, paired, best, min(r["session_ms"] for r in kiln_runs), min(r["session_ms"] for r in ort_runs),
            max(r["peak_rss_mb"] for r in kiln_runs), max(r["peak_rss_mb"] for r in ort_runs)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
