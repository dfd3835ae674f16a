#!/usr/bin/env bash
# Structure checks (docs/architecture.md): source files stay readable, the reference kernels stay plain C++, and
# the kernels do not reach into the runtime. Prints each file at fault and why; exits 1 if there is any.
set -uo pipefail
cd "$(dirname "$0")/.."

max_lines=800
status=0
fault() {
  echo "check-structure: $1"
  status=1
}

# Every source file under src/, tools/ and python/: at most $max_lines lines.
while IFS= read -r f; do
  n=$(wc -l <"$f")
  if [ "$n" -gt "$max_lines" ]; then fault "$f has $n lines (at most $max_lines: split it along its seams)"; fi
done < <(git ls-files -- 'src/*' 'tools/*' 'python/*' | grep -E '\.(h|cc|inc|py)$')

# src/kernels/ref: reference kernels only, no intrinsics, no oneDNN, no fast-kernel headers.
while IFS= read -r f; do
  while IFS= read -r hit; do
    fault "$f includes $hit (reference kernels are plain C++: no intrinsics, oneDNN, x86/dnnl/fast headers)"
  done < <(grep -oE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"][^>"]*[>"]' "$f" |
    grep -E '[<"/](immintrin|x86intrin|xmmintrin|emmintrin|pmmintrin|tmmintrin|smmintrin|nmmintrin|wmmintrin|avxintrin|avx2intrin|avx512[a-z0-9]*intrin|x86gprintrin|intrin)\.h|dnnl|kernels/(x86|dnnl|fast)/' |
    sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*//')
done < <(git ls-files -- 'src/kernels/ref/*')

# src/kernels: no runtime header (the runtime implements kernels/services.h instead).
while IFS= read -r f; do
  while IFS= read -r hit; do
    fault "$f includes $hit (kernels may not include runtime headers: use kernels/services.h)"
  done < <(grep -oE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"][^>"]*[>"]' "$f" | grep -E '[<"](kiln/)?runtime/' |
    sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*//')
done < <(git ls-files -- 'src/kernels/*')

if [ "$status" -eq 0 ]; then echo "check-structure: ok"; fi
exit "$status"
