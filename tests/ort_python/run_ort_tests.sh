#!/usr/bin/env bash
# ONNX Runtime's own Python API tests, unmodified, against kiln: extracts onnxruntime/test/python/
# onnxruntime_test_python.py and onnxruntime_test_python_iobinding.py, their helper.py and onnxruntime/test/testdata/ at the commit the Python-parity issue names
# from a local git clone of ONNX Runtime (microsoft/onnxruntime, or the ROCm fork, whose main holds the commit) into
# BUILD/ort_pytests (never committed), and runs the file with kiln installed as onnxruntime
# (kiln.install_as_onnxruntime()).
#   tests/ort_python/run_ort_tests.sh ORT_GIT_DIR [BUILD] [unittest arguments, e.g. -k test_run_model]
# (names such as onnxruntime_test_python_iobinding.TestIOBinding run only those; by default, both files run)
set -euo pipefail
ort=$1
build=$(realpath "${2:-build}")
shift $(( $# >= 2 ? 2 : 1 ))
commit=6ac4f7666aa4d90cab36c0544acd7140f696fe29
dest=$build/ort_pytests
if [[ ! -f "$dest/.extracted-$commit" || ! -f "$dest/onnxruntime_test_python_iobinding.py" ]]; then
  rm -rf "$dest"
  mkdir -p "$dest/testdata"
  git -C "$ort" show "$commit:onnxruntime/test/python/onnxruntime_test_python.py" >"$dest/onnxruntime_test_python.py"
  git -C "$ort" show "$commit:onnxruntime/test/python/onnxruntime_test_python_iobinding.py" \
    >"$dest/onnxruntime_test_python_iobinding.py"
  git -C "$ort" show "$commit:onnxruntime/test/python/helper.py" >"$dest/helper.py"
  # File by file: a snapshot may lack its largest blobs (those are skipped, and the tests that need them fail).
  git -C "$ort" ls-tree -r --name-only "$commit" onnxruntime/test/testdata | while read -r f; do
    out=$dest/testdata/${f#onnxruntime/test/testdata/}
    mkdir -p "$(dirname "$out")"
    git -C "$ort" show "$commit:$f" >"$out" 2>/dev/null || { rm -f "$out"; echo "ort tests: $f is not in the clone" >&2; }
  done
  touch "$dest/.extracted-$commit"
fi
cd "$dest"
PYTHONPATH="$build/python" exec /usr/bin/python3 -c '
import sys, unittest
import kiln
kiln.install_as_onnxruntime()
# The IOBinding file uses onnx.helper.tensor_dtype_to_np_dtype, new in onnx 1.13; Debian 12 has onnx 1.12, whose
# onnx.mapping holds the same table. (A shim for the test environment: kiln is not involved.)
import onnx.helper, onnx.mapping
if not hasattr(onnx.helper, "tensor_dtype_to_np_dtype"):
    onnx.helper.tensor_dtype_to_np_dtype = lambda t: onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[t]
# Both files, unless the arguments name tests (an argument that is neither an option nor the pattern of -k).
args = sys.argv[1:]
named = [a for i, a in enumerate(args) if not a.startswith("-") and (i == 0 or args[i - 1] != "-k")]
if not named:
    sys.argv += ["onnxruntime_test_python", "onnxruntime_test_python_iobinding"]
sys.argv[0] = "onnxruntime_test_python.py"
unittest.main(module=None, argv=sys.argv, verbosity=1)
' "$@"
