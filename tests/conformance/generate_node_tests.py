#!/usr/bin/python3
"""Generates the ONNX backend node test suite (922 cases for onnx 1.12) into OUTDIR, from python3-onnx.

    /usr/bin/python3 tests/conformance/generate_node_tests.py OUTDIR

Each case is OUTDIR/node/<name>/model.onnx with test_data_set_*/input_*.pb and output_*.pb.
"""
import os
import sys
import warnings

import numpy as np

# onnx 1.12 still uses the numpy aliases that numpy 1.24 removed.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    for name, value in (("float", float), ("int", int), ("bool", bool), ("object", object),
                        ("complex", complex), ("str", str)):
        if not hasattr(np, name):
            setattr(np, name, value)

from onnx.backend.test.cmd_tools import main as onnx_test_tools  # noqa: E402


def main(out_dir):
    sys.argv = [sys.argv[0], "generate-data", "-o", out_dir]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onnx_test_tools()
    count = len(os.listdir(os.path.join(out_dir, "node")))
    print("generated %d node test cases in %s" % (count, out_dir))
    return 0 if count > 0 else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.stderr.write(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
