#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD (made by `make fuzz`) for SECONDS each, one after the other:
#   bash tests/fuzz/run.sh BUILD SECONDS [TARGET...]
# Corpora live in BUILD/corpus/<target> and grow from run to run; the first run seeds them from the ONNX node suite
# (generated with python3-onnx), the test models, .npy files and the demo's images. Each target's executions are
# added to BUILD/fuzz-stats.txt. A crash stops the script: libFuzzer's input is in BUILD/artifacts/<target>/; once
# fixed, copy it into tests/fuzz/regressions/<target>/, which `make test` replays. FUZZ_SEED=N fixes libFuzzer's
# seed (CI does, so that its short pass explores the same mutations from one run to the next and a failure there
# reproduces); unset, each run explores new ones.
set -euo pipefail
build=$1 seconds=$2
shift 2
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(model session npy image tensor_pb adapter plan)
repo="$(cd "$(dirname "$0")/../.." && pwd)"
py=/usr/bin/python3

seed() {
  local t=$1 dir=$build/corpus/$1
  [[ -d "$dir" ]] && return 0
  mkdir -p "$dir"
  local suite=$build/onnx_node_tests
  if [[ "$t" == model || "$t" == session || "$t" == tensor_pb ]] && [[ ! -d "$suite" ]]; then
    $py "$repo/tests/conformance/generate_node_tests.py" "$suite" >/dev/null
  fi
  case "$t" in
    model | session)
      # Small models only: libFuzzer's default -max_len follows the corpus.
      find "$suite" -name model.onnx -size -8k | while read -r m; do cp "$m" "$dir/$(basename "$(dirname "$m")").onnx"; done
      for m in "$repo"/build/test_models/*.onnx; do [[ -f "$m" && $(stat -c %s "$m") -lt 65536 ]] && cp "$m" "$dir/" || true; done
      ;;
    tensor_pb)
      find "$suite" -name '*.pb' -size -4k | while read -r p; do cp "$p" "$dir/$(echo "$p" | md5sum | cut -c1-16).pb"; done
      ;;
    npy)
      $py - "$dir" <<'PY'
import sys, numpy as np
d = sys.argv[1]
arrays = [np.arange(6, dtype=np.float32).reshape(2, 3), np.zeros((0,), np.int64), np.array(3.5), np.ones((2, 2), np.float16),
          np.array([True, False]), np.asfortranarray(np.arange(12, dtype=np.int32).reshape(3, 4)),
          np.array(["ab", "cde"]), np.array([b"x", b"yz"]), np.arange(4, dtype=np.complex64), np.arange(3, dtype=np.uint8)]
for i, a in enumerate(arrays):
    np.save("%s/seed%d.npy" % (d, i), a)
PY
      ;;
    adapter)
      # The replayed inputs, and one written by flatc from tests/fuzz/seeds/adapter.json.
      cp "$repo"/tests/fuzz/regressions/adapter/* "$dir/"
      flatc -b -o "$dir" "$repo/src/runtime/schema/adapter.fbs" "$repo/tests/fuzz/seeds/adapter.json"
      ;;
    plan)
      # The replayed inputs, and plans of the small test models built by the normal build's kiln (make test ran).
      cp "$repo"/tests/fuzz/regressions/plan/* "$dir/" 2>/dev/null || true
      for m in linear_func attrs if_loop with_function model_static; do
        if [[ -x "$repo/build/tools/kiln/kiln" && -f "$repo/build/test_models/$m.onnx" ]]; then
          "$repo/build/tools/kiln/kiln" build "$repo/build/test_models/$m.onnx" -O "$dir/$m.kplan" --no-tune >/dev/null || true
        fi
      done
      ;;
    image)
      cp "$repo"/examples/srcnn/data/*.png "$repo"/examples/srcnn/data/*.jpg "$dir/" 2>/dev/null || true
      $py - "$dir" <<'PY'
import sys, numpy as np, cv2
d = sys.argv[1]
img = (np.arange(8 * 8 * 3) % 256).astype(np.uint8).reshape(8, 8, 3)
cv2.imwrite(d + "/small.png", img); cv2.imwrite(d + "/small.jpg", img)
cv2.imwrite(d + "/gray.png", img[:, :, 0]); cv2.imwrite(d + "/alpha.png", np.dstack([img, img[:, :, :1]]))
PY
      ;;
  esac
}

for t in "${targets[@]}"; do
  seed "$t"
  mkdir -p "$build/artifacts/$t"
  log=$build/fuzz-$t.log
  echo "fuzz: $t for ${seconds}s ($(ls "$build/corpus/$t" | wc -l) corpus inputs)"
  # 4 GiB of RSS and 25 s per input (the session target's runs stop themselves after 500 ms); single allocations up to 32 GiB: a
  # header may declare an image as large as the machine's memory, whose untouched pages cost no RSS when the data then
  # turns out corrupt.
  if ! "$build/tests/fuzz/fuzz_$t" "$build/corpus/$t" -max_total_time="$seconds" -rss_limit_mb=4096 \
      -malloc_limit_mb=32768 -timeout=25 -print_final_stats=1 -artifact_prefix="$build/artifacts/$t/" \
      ${FUZZ_SEED:+-seed="$FUZZ_SEED"} >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz: $t found a failure: $(ls -t "$build/artifacts/$t" | head -1) in $build/artifacts/$t/" >&2
    exit 1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  echo "$(date -u +%FT%TZ) $t $runs" >>"$build/fuzz-stats.txt"
  total=$(awk -v t="$t" '$2 == t { s += $3 } END { print s + 0 }' "$build/fuzz-stats.txt")
  echo "fuzz: $t ran $runs inputs ($total in all runs of this build folder)"
done
