#!/usr/bin/python3
"""kiln against ONNX Runtime 1.30 (npm onnxruntime-node, graphOptimizationLevel 'all'), side by side.

    /usr/bin/python3 bench/bench.py [--build build] [--threads 2] [--rounds 20] [--block-ms 300] [--only NAME]

Exports the benchmark models with torch 1.13 (random weights) into BUILD/bench. For each model:
- session creation and peak RSS: `--processes` (3) `kiln bench --json` runs and as many bench/ort_bench.js
  runs, alternating, each in its own process (`--iterations` timed runs after `--warmup`): the median session
  creation and first run times and the largest peak RSS of each side;
- latency, interleaved: kiln (bench/kiln_serve.py, the Python module's InferenceSession) and ORT
  (ort_bench.js in serve mode) each keep one session loaded and take turns, `--rounds` times, the one that
  goes first alternating: a turn is `--block-warmup` (1) untimed run, which brings its weights back into the
  caches that the other side's turn used, then timed runs of about `--block-ms` in all. Turns a fraction of a
  second apart see the same machine state, which on a shared VM drifts by up to 2x within seconds.
It prints each side's median latency over all its timed runs, the ratio kiln/ORT (below 1: kiln is faster) as
the median over rounds of each round's kiln block median over its ORT block median, the middle half of those
ratios (25th-75th percentile), session creation, the first run ("1st") and peak RSS. kiln's Session::create
loads and optimizes the graph and packs weights for the fast kernels on the first run; ORT packs them while
creating the session.
- the engine plan (unless --no-plan): `kiln build` writes BUILD/bench/NAME.kplan (kernels timed with the same
  thread count, a profile of the benchmark's shapes), then `--processes` `kiln bench --json` runs of the plan,
  alternating with the others: "plan load" (the plan to a ready session), "plan 1st" (its first run) and the
  plan's peak RSS (after the timed runs).
With --precision bf16 or int8 it prints another table instead: on ResNet-50, MobileNetV2 and the BERT-like encoder,
kiln at that precision, kiln fp32 and ORT fp32 take turns as above, with the ratios of the first over each other.
For int8 the model is BUILD/bench/NAME.int8.onnx, made by `kiln quantize --per-channel` calibrated on random
batches (accuracy is not measured here: tests/python/test_quantize.py does that on a trained model), and ONNX
Runtime running that same QDQ model is a fourth side.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

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


# The models of the reduced-precision rows (--precision).
PRECISION_MODELS = ("resnet50", "mobilenet_v2", "bert-base-like encoder (seq 128)")


def run_json(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(cmd), p.stderr[-2000:]))
    return p.stdout


class Server:
    """One side of the interleaved measurement: a process that keeps a session and runs blocks on request."""

    def __init__(self, cmd):
        self.cmd = " ".join(cmd)
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._reply()  # {"session_ms": ...} once the session is loaded

    def _reply(self):
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError("%s exited with status %s" % (self.cmd, self.p.wait()))
        return json.loads(line)

    def run(self, n, warmup=0):
        """Latencies (ms) of n runs after `warmup` untimed ones."""
        self.p.stdin.write("%d %d\n" % (n, warmup))
        self.p.stdin.flush()
        return self._reply()["lat"]

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def interleaved_sides(cmds, args):
    """Latencies per side and, per other side j >= 1, the per-round ratios side 0 / side j of the interleaved
    measurement (the order of the turns rotates from round to round)."""
    sides = [Server(cmd) for cmd in cmds]
    try:
        warm = [side.run(args.warmup) for side in sides]
        slowest = max(statistics.median(w) for w in warm)
        n = len(sides)
        lat = [[] for _ in range(n)]
        ratios = [[] for _ in range(n)]
        for r in range(args.rounds):
            med = [0.0] * n
            for k in range(n):
                i = (r + k) % n if n > 2 else (k if r % 2 == 0 else 1 - k)
                time.sleep(0.02)  # let the other side's idle threads stop spinning
                got = sides[i].run(max(1, round(args.block_ms / slowest)), args.block_warmup)
                lat[i] += got
                med[i] = statistics.median(got)
            for j in range(1, n):
                ratios[j].append(med[0] / med[j])
        return lat, ratios
    finally:
        for side in sides:
            side.close()


def interleaved(kiln_cmd, ort_cmd, args):
    """(kiln latencies, ORT latencies, per-round ratios) of the interleaved measurement."""
    lat, ratios = interleaved_sides([kiln_cmd, ort_cmd], args)
    return lat[0], lat[1], ratios[1]


def quantized_model(kiln, path, shapes, out_dir):
    """BUILD/bench/NAME.int8.onnx: `kiln quantize --per-channel` calibrated on 8 batches drawn like the benchmark's
    inputs (uniform [0, 1)), made once."""
    import numpy as np
    import onnx
    stem = os.path.splitext(os.path.basename(path))[0]
    q = os.path.join(out_dir, stem + ".int8.onnx")
    if os.path.exists(q):
        return q
    calib = os.path.join(out_dir, "calib_" + stem)
    os.makedirs(calib, exist_ok=True)
    given = {s.split("=")[0]: [int(d) for d in s.split("=")[1].split("x")] for s in shapes}
    inp = onnx.load(path, load_external_data=False).graph.input[0]
    dims = given.get(inp.name) or [d.dim_value for d in inp.type.tensor_type.shape.dim]
    rng = np.random.default_rng(1)
    for b in range(8):
        np.save(os.path.join(calib, "b%d.npy" % b), rng.random(dims, dtype=np.float32))
    subprocess.run([kiln, "quantize", path, "-O", q, "--calib", calib, "--per-channel"], check=True,
                   stdout=subprocess.DEVNULL)
    return q


def precision_table(models, args, kiln):
    """--precision bf16|int8: the reduced-precision side, kiln fp32 and ORT fp32 (and, for int8, ORT on the same
    QDQ model) take turns on each model; the ratios are the reduced-precision side over each other side."""
    med = statistics.median
    int8 = args.precision == "int8"
    names = ["kiln " + args.precision, "kiln fp32"] + (["ORT int8"] if int8 else []) + ["ORT fp32"]
    ratio_names = ["/kiln fp32"] + (["/ORT int8"] if int8 else []) + ["/ORT fp32"]
    print("%-34s " % "model" + " ".join("%10s" % n for n in names) + " " +
          " ".join("%14s %11s" % (args.precision + r, "middle half") for r in ratio_names))
    ort_js = os.path.join(HERE, "ort_bench.js")
    for name, (make, shapes) in models.items():
        if name not in PRECISION_MODELS or (args.only and args.only not in name):
            continue
        path = make()
        serve = [sys.executable, os.path.join(HERE, "kiln_serve.py")]
        ort = ["node", ort_js]
        tail = [str(args.threads)]
        if int8:
            q = quantized_model(kiln, path, shapes, os.path.dirname(path))
            cmds = [serve + [q] + tail + shapes, serve + [path] + tail + shapes,
                    ort + [q] + tail + ["serve", "0"] + shapes, ort + [path] + tail + ["serve", "0"] + shapes]
        else:
            cmds = [serve + [path] + tail + ["--precision=" + args.precision] + shapes, serve + [path] + tail + shapes,
                    ort + [path] + tail + ["serve", "0"] + shapes]
        lat, ratios = interleaved_sides(cmds, args)
        cols = []
        for j in range(1, len(cmds)):
            q1, _, q3 = statistics.quantiles(ratios[j], n=4, method="inclusive")
            cols.append("%14.2f %11s" % (med(ratios[j]), "%.2f-%.2f" % (q1, q3)))
        print("%-34s " % name + " ".join("%10.2f" % med(l) for l in lat) + " " + " ".join(cols), flush=True)


# The instruction-set flags that decide which kernels kiln and ONNX Runtime run (kiln: KILN_MAX_ISA, docs).
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512_vnni", "avx512_bf16",
             "avx512_fp16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")


def cpu_description():
    """The CPU model and its ISA flags from /proc/cpuinfo, as two lines for the table's header."""
    model, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model == "unknown CPU":
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    cores = os.cpu_count() or 0
    isa = " ".join(f for f in ISA_FLAGS if f in flags) or "none of " + " ".join(ISA_FLAGS)
    return "cpu: %s (%d logical CPUs)\nisa: %s" % (model, cores, isa)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--processes", type=int, default=3, help="session/RSS processes per side, alternating")
    ap.add_argument("--iterations", type=int, default=5, help="timed runs of each session/RSS process")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=20, help="turns of each side in the latency measurement")
    ap.add_argument("--block-ms", type=float, default=300, help="length of one turn's timed runs")
    ap.add_argument("--block-warmup", type=int, default=1,
                    help="untimed runs that start each turn (the other side's turn left the caches cold)")
    ap.add_argument("--only", default="")
    ap.add_argument("--no-plan", action="store_true", help="skip kiln build and the plan's columns")
    ap.add_argument("--precision", choices=("fp32", "bf16", "int8"), default="fp32",
                    help="bf16 or int8: instead of the fp32 table, kiln at that precision against kiln fp32 and ORT "
                         "fp32 (int8: and ORT on the same QDQ model, made by kiln quantize) on ResNet-50, "
                         "MobileNetV2 and the BERT-like encoder")
    args = ap.parse_args()
    if args.rounds < 2:
        ap.error("--rounds must be at least 2 (the middle half needs two ratios)")
    kiln = os.path.join(args.build, "tools", "kiln", "kiln")
    os.environ["NODE_PATH"] = os.path.join(args.build, "ort", "node_modules")
    os.environ["KILN_PYTHON_DIR"] = os.path.join(args.build, "python")
    models = model_list(os.path.join(args.build, "bench"))
    tmp = os.path.join(args.build, "bench", "kiln.json")
    print(cpu_description())
    if os.environ.get("KILN_MAX_ISA"):
        print("KILN_MAX_ISA=%s" % os.environ["KILN_MAX_ISA"])
    if args.precision != "fp32":
        return precision_table(models, args, kiln)
    print("%-34s %10s %10s %7s %11s %10s %10s %9s %9s %9s %9s %9s %9s %9s" % (
        "model", "kiln ms", "ORT ms", "ratio", "middle half", "kiln sess", "ORT sess", "kiln 1st", "ORT 1st",
        "kiln MiB", "ORT MiB", "plan load", "plan 1st", "plan MiB"))
    for name, (make, shapes) in models.items():
        if args.only and args.only not in name:
            continue
        path = make()
        cmd = [kiln, "bench", path, "--threads", str(args.threads), "--iterations", str(args.iterations),
               "--warmup", str(args.warmup), "--json", tmp]
        for s in shapes:
            cmd += ["--shape", s]
        ort_js = os.path.join(HERE, "ort_bench.js")
        plan_cmd = None
        if not args.no_plan:
            # Into BUILD/bench (the SRCNN model lives in the source tree).
            plan = os.path.join(args.build, "bench", os.path.splitext(os.path.basename(path))[0] + ".kplan")
            build = [kiln, "build", path, "-O", plan, "--threads", str(args.threads)]
            for spec in shapes:  # NAME=1x128: a profile of exactly that shape
                name_, dims = spec.split("=", 1)
                build += ["--profile", "%s:min=%s,opt=%s,max=%s" % (name_, dims, dims, dims)]
            subprocess.run(build, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            plan_cmd = [kiln, "bench", plan, "--threads", str(args.threads), "--iterations", str(args.iterations),
                        "--warmup", str(args.warmup), "--json", tmp]
        kiln_once, ort_once, plan_once = [], [], []
        for _ in range(args.processes):
            run_json(cmd)
            with open(tmp) as f:
                kiln_once.append(json.load(f))
            if plan_cmd:
                run_json(plan_cmd)
                with open(tmp) as f:
                    plan_once.append(json.load(f))
            ort_once.append(json.loads(run_json(["node", ort_js, path, str(args.threads), str(args.iterations),
                                                 str(args.warmup)] + shapes).strip().splitlines()[-1]))
        k, o, ratios = interleaved([sys.executable, os.path.join(HERE, "kiln_serve.py"), path,
                                    str(args.threads)] + shapes,
                                   ["node", ort_js, path, str(args.threads), "serve", "0"] + shapes, args)
        med = statistics.median
        q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
        plan_cols = ("%9.1f %9.1f %9.0f" % (med(r["session_ms"] for r in plan_once),
                                            med(r["first_run_ms"] for r in plan_once),
                                            max(r["peak_rss_mb"] for r in plan_once))) if plan_once else ""
        print("%-34s %10.2f %10.2f %7.2f %11s %10.1f %10.1f %9.1f %9.1f %9.0f %9.0f %s" % (
            name, med(k), med(o), med(ratios), "%.2f-%.2f" % (q1, q3),
            med(r["session_ms"] for r in kiln_once), med(r["session_ms"] for r in ort_once),
            med(r["first_run_ms"] for r in kiln_once), med(r["first_run_ms"] for r in ort_once),
            max(r["peak_rss_mb"] for r in kiln_once), max(r["peak_rss_mb"] for r in ort_once), plan_cols),
              flush=True)


if __name__ == "__main__":
    sys.exit(main())
