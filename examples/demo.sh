#!/usr/bin/env bash
# make demo: the tutorial's first steps with kiln on the SRCNN model (export, check, inspect, cut).
set -euo pipefail
build=${1:-build}
kiln="$build/tools/kiln/kiln"
out=demo-out
mkdir -p "$out"
SECONDS=0

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Export the tutorial's SRCNN with torch (opset 11, bicubic x3)"
/usr/bin/python3 examples/srcnn/export_srcnn.py "$out" 2>/dev/null

step "kiln check $out/srcnn.onnx   (onnx.checker.check_model)"
"$kiln" check "$out/srcnn.onnx"

step "kiln show $out/srcnn.onnx"
"$kiln" show "$out/srcnn.onnx"

step "kiln extract: the first convolution block as its own model (onnx.utils.extract_model)"
first_relu=$("$kiln" show "$out/srcnn.onnx" --format json |
  /usr/bin/python3 -c 'import json,sys; print([n["outputs"][0] for n in json.load(sys.stdin)["nodes"] if n["op_type"]=="Relu"][0])')
"$kiln" extract "$out/srcnn.onnx" -i input -o "$first_relu" -O "$out/srcnn_block1.onnx"
"$kiln" check "$out/srcnn_block1.onnx"

step "kiln extract --add-outputs: expose that intermediate value for debugging"
"$kiln" extract "$out/srcnn.onnx" --add-outputs "$first_relu" -O "$out/srcnn_debug.onnx"
"$kiln" show "$out/srcnn_debug.onnx" --format json |
  /usr/bin/python3 -c 'import json,sys; print("outputs:", [o["name"] for o in json.load(sys.stdin)["outputs"]])'

step "Build the tutorial's output = a*x + b model in C++ (examples/linear_func.cc)"
"$build/examples/linear_func" "$out/linear_func.onnx"
"$kiln" show "$out/linear_func.onnx" --format text

printf '\nDemo finished in %d s; files are in %s/.\n' "$SECONDS" "$out"
echo "Running the model (kiln run, the Python module, the x3/x4 images) comes with kiln's CPU runtime."
