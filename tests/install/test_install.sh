#!/usr/bin/env bash
# `make install` into a temporary prefix, then, against the installed package only: a C++ program built with
# find_package(kiln) (examples/consumer) and the C example built with `cc -std=c99 -Wall -Werror $(pkg-config
# --cflags --libs kiln)`, each run on SRCNN and compared with torch's reference output; and the installed CLI.
#   test_install.sh BUILD_DIR SOURCE_DIR MODELS_DIR [SANITIZERS]
set -euo pipefail
build=$(realpath "$1") src=$(realpath "$2") models=$(realpath "$3") sanitize=${4:-}
py=/usr/bin/python3
mkdir -p "$build/test_tmp"
tmp=$(mktemp -d "$build/test_tmp/install_XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

cmake --install "$build" --prefix "$prefix" >/dev/null
for f in include/kiln/kiln_c.h include/kiln/kiln_tasks.h include/kiln/kiln.hpp include/kiln/custom_op.h lib/libkiln.so lib/libkiln.so.0 lib/libkiln.so.0.1.0 bin/kiln \
  lib/cmake/kiln/kilnConfig.cmake lib/cmake/kiln/kilnConfigVersion.cmake lib/cmake/kiln/kilnTargets.cmake \
  lib/pkgconfig/kiln.pc; do
  [[ -e "$prefix/$f" ]] || { echo "install: $f is missing from the prefix" >&2; exit 1; }
done
# Nothing of the build tree leaks into the package.
if grep -rl "$build" "$prefix/lib/cmake" "$prefix/lib/pkgconfig"; then
  echo "install: the package refers to the build tree" >&2
  exit 1
fi

flags=()
cflags=""
if [[ -n "$sanitize" ]]; then
  flags=(-DCMAKE_CXX_FLAGS="-fsanitize=$sanitize" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=$sanitize")
  cflags="-fsanitize=$sanitize"
fi

compare() {  # OUT.npy: equal to the reference within 1e-3
  $py - "$1" "$models/srcnn.ref0.out.npy" <<'PY'
import sys, numpy as np
got, want = np.load(sys.argv[1]), np.load(sys.argv[2])
assert got.shape == want.shape, (got.shape, want.shape)
err = float(np.abs(got - want).max())
assert err < 1e-3, err
print("  largest difference from the reference: %.2e" % err)
PY
}

echo "find_package(kiln): examples/consumer"
cmake -S "$src/examples/consumer" -B "$tmp/consumer" -DCMAKE_PREFIX_PATH="$prefix" "${flags[@]}" >/dev/null
cmake --build "$tmp/consumer" >/dev/null
"$tmp/consumer/consumer" "$models/srcnn.onnx" "$models/srcnn.ref0.in.npy" "$tmp/cpp_out.npy"
compare "$tmp/cpp_out.npy"

echo "pkg-config: examples/c_api/run_model.c with cc -std=c99 -Wall -Werror"
# shellcheck disable=SC2046
cc -std=c99 -Wall -Werror -pedantic $cflags "$src/examples/c_api/run_model.c" -o "$tmp/run_model" \
  $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs kiln) -Wl,-rpath,"$prefix/lib"
mkdir "$tmp/c_out"
"$tmp/run_model" "$models/srcnn.onnx" input="$models/srcnn.ref0.in.npy" -o "$tmp/c_out" -t 2 >/dev/null
compare "$tmp/c_out/output.npy"

echo "a custom-op library built against the installed headers, run through the installed library"
cc -std=c99 -Wall -Werror -pedantic -O2 -fPIC -shared $cflags "$src/examples/custom_op/swish_op.c" \
  -I"$prefix/include" -o "$tmp/libswish_op.so" -lm
$py "$src/examples/custom_op/export_model.py" "$tmp/swish" >/dev/null
"$tmp/run_model" "$tmp/swish/swish_net.onnx" input="$tmp/swish/input.npy" -c "$tmp/libswish_op.so" -o "$tmp/swish" \
  >/dev/null
$py -c "import sys, numpy as np; d = sys.argv[1]; err = float(np.abs(np.load(d + '/output.npy') - np.load(d + '/expected.npy')).max()); assert err < 1e-5, err" "$tmp/swish"

echo "the installed CLI, and the restorer (examples/sdk/image_restorer.c) on a folder it packs"
"$prefix/bin/kiln" check "$models/srcnn.onnx" >/dev/null
"$prefix/bin/kiln" pack "$models/srcnn.onnx" --task restorer -O "$tmp/srcnn_folder" >/dev/null
cc -std=c99 -Wall -Werror -pedantic $cflags "$src/examples/sdk/image_restorer.c" -o "$tmp/image_restorer" \
  $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs kiln) -Wl,-rpath,"$prefix/lib"
$py - "$tmp" <<'PY'
import sys, cv2, numpy as np
d = sys.argv[1]
img = (np.arange(32 * 32 * 3) * 7 % 256).astype(np.uint8).reshape(32, 32, 3)
cv2.imwrite(d + "/in.png", img)
with open(d + "/in.ppm", "wb") as f:
    f.write(b"P6\n32 32\n255\n" + np.ascontiguousarray(img[:, :, ::-1]).tobytes())
PY
"$tmp/image_restorer" "$tmp/srcnn_folder" "$tmp/in.ppm" "$tmp/out.ppm" >/dev/null
"$prefix/bin/kiln" run "$models/srcnn.onnx" --input input="$tmp/in.png" --output-image output="$tmp/run.png" >/dev/null
$py - "$tmp" <<'PY'
import sys, cv2, numpy as np
d = sys.argv[1]
data = open(d + "/out.ppm", "rb").read().split(maxsplit=4)
got = np.frombuffer(data[4], np.uint8).reshape(int(data[2]), int(data[1]), 3)[:, :, ::-1].astype(int)
want = cv2.imread(d + "/run.png").astype(int)
assert got.shape == want.shape and np.abs(got - want).max() <= 1, (got.shape, want.shape)
PY
echo "install: ok"
