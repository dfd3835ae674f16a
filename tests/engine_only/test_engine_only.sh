#!/bin/bash
# A program linked against kiln_engine alone runs a plan, links neither protobuf nor libonnx, and gives the same
# bytes as the full kiln on the same plan.
# And the C API's libkiln_rt.so (run_model_c_rt: examples/c_api/run_model.c linked against it) likewise.
#   test_engine_only.sh KILN_BIN RUN_PLAN_BIN MODEL.onnx TMPDIR RUN_MODEL_C_RT_BIN
set -euo pipefail
kiln=$1 run_plan=$2 model=$3 tmp=$4 run_c=$5
mkdir -p "$tmp"
plan="$tmp/engine_only_$$.kplan"
trap 'rm -rf "$plan" "$tmp/engine_only_$$".*' EXIT
"$kiln" build "$model" -O "$plan" --no-tune >/dev/null
if nm -C "$run_plan" | grep -q 'google::protobuf\|onnx::OpSchema'; then
  echo "FAIL: $run_plan contains protobuf or libonnx symbols"; exit 1
fi
for bin in "$run_plan" "$run_c"; do
  if ldd "$bin" | grep -q 'libprotobuf\|libonnx'; then
    echo "FAIL: $bin loads protobuf or libonnx:"; ldd "$bin"; exit 1
  fi
done
rt=$(ldd "$run_c" | awk '/libkiln_rt/ {print $3}')
[[ -n "$rt" ]] || { echo "FAIL: $run_c does not load libkiln_rt.so"; exit 1; }
if nm -D -C "$rt" | grep -q 'google::protobuf'; then echo "FAIL: $rt refers to protobuf"; exit 1; fi
# An ONNX model is refused by the plans-only library, clearly.
if out=$("$run_c" "$model" 2>&1); then echo "FAIL: libkiln_rt.so ran an ONNX model"; exit 1; fi
grep -q "not a kiln plan" <<<"$out" || { echo "FAIL: unexpected message: $out"; exit 1; }
"$run_plan" "$plan" "$tmp/engine_only_$$.out.bin"
# The same plan through the full kiln (kiln run), inputs of 0.5 as run_plan makes them.
python3=/usr/bin/python3
RUN_C="$run_c" "$python3" - "$kiln" "$plan" "$tmp/engine_only_$$" <<'PY'
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
# The C API of libkiln_rt.so on the same plan and inputs (run_model.c writes OUT_DIR/<name>.npy).
c_args = [a for a in args if a != "--input"]
os.makedirs(base + ".c_outs", exist_ok=True)
subprocess.run([os.environ["RUN_C"], plan, *c_args, "-o", base + ".c_outs"], check=True, capture_output=True)
if np.load(os.path.join(base + ".c_outs", name + ".npy")).astype(np.float32).tobytes() != want:
    sys.exit("FAIL: libkiln_rt.so's output differs from kiln run's")
print("libkiln_rt.so (C API, plans only): equal to kiln run")
PY
echo "PASS"
