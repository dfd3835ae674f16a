#!/usr/bin/env bash
# make demo: the tutorial's SRCNN deployed with kiln: check, inspect, run on the bundled face (x3 and, with
# the run-time factor, x4), score against the high-resolution original, then the C++ and Python deployments.
set -euo pipefail
build=${1:-build}
kiln="$build/tools/kiln/kiln"
src=examples/srcnn
out=demo-out
mkdir -p "$out"
SECONDS=0

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "kiln check $src/srcnn.onnx   (kiln's trained SRCNN, exported by $src/export_srcnn.py)"
"$kiln" check "$src/srcnn.onnx"

step "kiln show $src/srcnn3.onnx   (the tutorial's NewInterpolate: the scale factor is an input)"
"$kiln" show "$src/srcnn3.onnx" | sed -n '1,12p'

step "kiln run: face.png (256x256) -> x3 with srcnn.onnx"
"$kiln" run "$src/srcnn.onnx" --input input="$src/data/face.png" --output-image output="$out/face_x3.png"

step "kiln run: the same face -> x4 with srcnn3.onnx and --input factor=1,1,4,4"
"$kiln" run "$src/srcnn3.onnx" --input input="$src/data/face.png" --input factor=1,1,4,4 \
  --output-image output="$out/face_x4.png"

step "Quality: face_lr.png (face.png shrunk 3x) upscaled x3, scored against face.png"
"$kiln" run "$src/srcnn_dynamic.onnx" --input input="$src/data/face_lr.png" --output-image output="$out/face_lr_srcnn.png"
# Plain bicubic: the model's own first node (the Resize), cut out with kiln extract.
resize=$("$kiln" show "$src/srcnn_dynamic.onnx" --format json |
  /usr/bin/python3 -c 'import json,sys; print([n["outputs"][0] for n in json.load(sys.stdin)["nodes"] if n["op_type"]=="Resize"][0])')
"$kiln" extract "$src/srcnn_dynamic.onnx" -i input -o "$resize" -O "$out/bicubic_x3.onnx"
"$kiln" run "$out/bicubic_x3.onnx" --input input="$src/data/face_lr.png" --output-image "$resize=$out/face_lr_bicubic.png"
/usr/bin/python3 "$src/psnr.py" "$src/data/face.png" "kiln SRCNN x3=$out/face_lr_srcnn.png" \
  "plain bicubic x3=$out/face_lr_bicubic.png"

step "C++: examples/srcnn/deploy_srcnn.cc (kiln::Session, 30 lines)"
"$build/examples/deploy_srcnn" "$src/srcnn.onnx" "$src/data/face.png" "$out/face_x3_cpp.png"

step "Python: the tutorial's code with 'import kiln as onnxruntime'"
PYTHONPATH="$build/python" /usr/bin/python3 - "$src" "$out" <<'EOF'
import sys
import cv2
import numpy as np
import kiln as onnxruntime

src, out = sys.argv[1], sys.argv[2]
input_img = cv2.imread(src + '/data/face.png').astype(np.float32)
input_img = np.expand_dims(np.transpose(input_img, [2, 0, 1]), 0)
ort_session = onnxruntime.InferenceSession(src + "/srcnn.onnx")
ort_output = ort_session.run(['output'], {'input': input_img})[0]
ort_output = np.transpose(np.clip(np.squeeze(ort_output, 0), 0, 255), [1, 2, 0]).astype(np.uint8)
cv2.imwrite(out + "/face_ort.png", ort_output)
same = np.abs(cv2.imread(out + "/face_x3.png").astype(int) - ort_output.astype(int)).max()
print(f"wrote {out}/face_ort.png; max pixel difference from the CLI's face_x3.png: {same}")
EOF

printf '\nDemo finished in %d s; images are in %s/.\n' "$SECONDS" "$out"
