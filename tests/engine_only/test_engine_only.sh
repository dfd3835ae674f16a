#!/bin/bash
# A program linked against kiln_engine alone runs a plan, links neither protobuf nor libonnx, and gives the same
# bytes as the full kiln on the same plan.
#   test_engine_only.sh KILN_BIN RUN_PLAN_BIN MODEL.onnx TMPDIR
set -euo pipefail
kiln=$1 run_plan=$2 model=$3 tmp=$4
mkdir -p "$tmp"
plan="$tmp/engine_only_$$.kplan"
trap 'rm -f "$plan" "$tmp/engine_only_$$".*' EXIT
"$kiln" build "$model" -O "$plan" --no-tune >/dev/null
if nm -C "$run_plan" | grep -q 'google::protobuf\|onnx::OpSchema'; then
  echo "FAIL: $run_plan contains protobuf or libonnx symbols"; exit 1
fi
if ldd "$run_plan" | grep -q 'libprotobuf\|libonnx'; then
  echo "FAIL: $run_plan loads protobuf or libonnx:"; ldd "$run_plan"; exit 1
fi
"$run_plan" "$plan" "$tmp/engine_only_$$.out.bin"
# The same plan through the full kiln (kiln run), inputs of 0.5 as run_plan makes them.
python3=/usr/bin/python3
"$python3" - "$kiln" "$plan" "$tmp/engine_only_$$" <<'PY'
import json, os, subprocess, sys
import numpy as np
kiln, plan, base = sys.argv[1:]
info = json.loads(subprocess.run([kiln, "show", plan, "-f", "json"], check=True, capture_output=True, text=True).stdout)
args = []
for i, inp in enumerate(info["inputs"]):
    shape = next(p["opt"] for p in info["profiles"][0]["inputs"] if p["name"] == inp["name"])
    np.save("%s.in%d.npy" % (base, i), np.full(shape, 0.5, np.float32))
    args += ["--input", "%s=%s.in%d.npy" % (inp["name"], base, i)]
subprocess.run([kiln, "run", plan, *args, "-d", base + ".outs"], check=True, capture_output=True)
name = info["outputs"][0]["name"]
want = np.load(os.path.join(base + ".outs", name + ".npy")).astype(np.float32).tobytes()
got = open(base + ".out.bin", "rb").read()
if got != want:
    sys.exit("FAIL: run_plan's output differs from kiln run's")
print("engine-only run_plan: %d bytes, equal to kiln run" % len(got))
PY
rm -rf "$tmp/engine_only_$$.outs"
echo "PASS"
