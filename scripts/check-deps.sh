#!/usr/bin/env bash
# Checks that every system file the build in BUILD (default build) and the tests use comes from a package that
# scripts/install-deps.sh installs (scripts/check_deps.py says how). CI runs it with --self-test after the build.
set -euo pipefail
exec /usr/bin/python3 "$(dirname "$0")/check_deps.py" "$@"
