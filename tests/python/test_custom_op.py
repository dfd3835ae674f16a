"""Custom operators (kiln/custom_op.h): the model of examples/custom_op/export_model.py, whose activation is
my_ops::Swish from a torch symbolic, runs with examples/custom_op/swish_op.c through the CLI, Python, C and C++,
and equals torch's output; `kiln check` knows the op once the library is given; and each bad case (a missing
library, a missing entry point, another ABI version, a malformed op, a kernel that fails) is a clear error naming the
library and the op.

Environment: KILN_BIN, KILN_TMP, KILN_SWISH_OP (the library), KILN_BAD_OPS (the folder of bad_ops_N), KILN_C_EXAMPLE
(run_model_c), KILN_CPP_CUSTOM_OP (run_custom_op), KILN_EXAMPLES, KILN_PYTHONPATH (when the module is built)."""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kiln_test_util as ku  # noqa: E402
from kiln_test_util import onnx  # noqa: E402
import numpy as np  # noqa: E402
from onnx import helper, TensorProto  # noqa: E402

SWISH = os.environ["KILN_SWISH_OP"]
BAD = os.environ["KILN_BAD_OPS"]
EXIT_INVALID, EXIT_USAGE = 1, 2
PY = "/usr/bin/python3"


def bad_library(variant):
    return os.path.join(BAD, "libbad_ops_%d.so" % variant)


_exported = {}


def exported():
    """swish_net.onnx, input.npy, expected.npy in a folder made once per process."""
    if not _exported:
        d = os.path.join(ku.tmp_root(), "custom_op_model")
        os.makedirs(d, exist_ok=True)
        subprocess.run([PY, os.path.join(os.environ["KILN_EXAMPLES"], "custom_op", "export_model.py"), d], check=True,
                       capture_output=True)
        _exported.update(model=os.path.join(d, "swish_net.onnx"), input=os.path.join(d, "input.npy"),
                         expected=np.load(os.path.join(d, "expected.npy")))
    return _exported


def int_swish_model(path):
    """my_ops::Swish on an int64 input: the library's kernel refuses it."""
    node = helper.make_node("Swish", ["x"], ["y"], name="int_swish", domain="my_ops", beta=1.0)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.INT64, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.INT64, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("my_ops", 1)])
    onnx.save(model, path)
    return path


class CustomOpTest(ku.KilnTestCase):
    def assert_matches_torch(self, path):
        got = np.load(path)
        want = exported()["expected"]
        self.assertEqual(got.shape, want.shape)
        self.assertLess(float(np.abs(got - want).max()), 1e-5)

    def test_cli_runs_it_and_check_knows_it(self):
        m = exported()
        r = self.kiln("run", m["model"], "--custom-ops", SWISH, "-i", "input=" + m["input"], "-d", self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_matches_torch(os.path.join(self.tmp, "output.npy"))
        # Without the library: refused, with a hint.
        r = self.kiln("run", m["model"], "-i", "input=" + m["input"])
        self.assertEqual(r.returncode, EXIT_INVALID)
        self.assertIn("kiln has no CPU kernel for my_ops::Swish", r.stderr)
        self.assertIn("--custom-ops", r.stderr)
        r = self.kiln("check", m["model"])
        self.assertIn("no kernel for my_ops::Swish", r.stdout)
        r = self.kiln("check", m["model"], "--custom-ops", SWISH)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("Swish", r.stdout)
        r = self.kiln("bench", m["model"], "--custom-ops", SWISH, "--shape", "input=1x3x16x16", "--iterations",
                          "3", "--warmup", "1")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_python(self):
        if not os.environ.get("KILN_PYTHONPATH"):
            self.skipTest("the Python module is not built")
        m = exported()
        code = """
import sys, numpy as np
sys.path.insert(0, sys.argv[1])
import kiln
opts = kiln.SessionOptions()
opts.register_custom_ops_library(sys.argv[2])
sess = kiln.InferenceSession(sys.argv[3], opts)
np.save(sys.argv[5], sess.run(None, {"input": np.load(sys.argv[4])})[0])
try:
    kiln.SessionOptions().register_custom_ops_library(sys.argv[6])
except Exception as e:
    print(type(e).__name__, e)
"""
        out = os.path.join(self.tmp, "py.npy")
        r = subprocess.run([PY, "-c", code, os.environ["KILN_PYTHONPATH"], SWISH, m["model"], m["input"], out,
                            bad_library(1)], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_matches_torch(out)
        self.assertIn("InvalidArgument", r.stdout)
        self.assertIn("custom-op ABI version 999", r.stdout)

    def test_c_and_cpp(self):
        m = exported()
        r = subprocess.run([os.environ["KILN_C_EXAMPLE"], m["model"], "input=" + m["input"], "-c", SWISH, "-o",
                            self.tmp], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_matches_torch(os.path.join(self.tmp, "output.npy"))
        out = os.path.join(self.tmp, "cpp.npy")
        r = subprocess.run([os.environ["KILN_CPP_CUSTOM_OP"], m["model"], SWISH, m["input"], out], capture_output=True,
                           text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_matches_torch(out)
        # A bad library through the C API: the status names it.
        r = subprocess.run([os.environ["KILN_C_EXAMPLE"], m["model"], "input=" + m["input"], "-c", bad_library(2)],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("does not export kiln_custom_op_library_get", r.stderr)

    def test_bad_libraries_are_named(self):
        m = exported()
        cases = [
            (os.path.join(self.tmp, "missing.so"), "custom-op library '%s': no such file"
             % os.path.join(self.tmp, "missing.so")),
            (self.tmp, "cannot load it"),
            (bad_library(1), "was built for custom-op ABI version 999, but this kiln has version 1"),
            (bad_library(2), "does not export kiln_custom_op_library_get()"),
            (bad_library(3), "op 0 (my_ops::Swish): compute is NULL"),
        ]
        for lib, message in cases:
            with self.subTest(library=os.path.basename(lib)):
                for cmd in ("run", "check"):
                    r = self.kiln(cmd, m["model"], "--custom-ops", lib, "-i", "input=" + m["input"]) \
                        if cmd == "run" else self.kiln(cmd, m["model"], "--custom-ops", lib)
                    self.assertEqual(r.returncode, EXIT_USAGE, r.stderr)
                    self.assertIn(message, r.stderr)
                    self.assertIn(lib, r.stderr)

    def test_failing_kernels_name_the_node_and_the_library(self):
        m = exported()
        bad_model = int_swish_model(os.path.join(self.tmp, "int_swish.onnx"))
        x = os.path.join(self.tmp, "x.npy")
        np.save(x, np.array([1, 2], np.int64))
        cases = [
            (SWISH, bad_model, x, "node 'int_swish' (my_ops::Swish", "Swish takes float32 (dtype 1), not dtype 7"),
            (bad_library(4), m["model"], m["input"], "node '/Swish' (my_ops::Swish",
             "returned without allocating output 0"),
            (bad_library(5), m["model"], m["input"], "node '/Swish' (my_ops::Swish", "dim 1 is -3"),
        ]
        for lib, model, x_path, node, message in cases:
            with self.subTest(library=os.path.basename(lib), model=os.path.basename(model)):
                name = "x" if model == bad_model else "input"
                r = self.kiln("run", model, "--custom-ops", lib, "-i", "%s=%s" % (name, x_path))
                self.assertEqual(r.returncode, EXIT_INVALID, r.stderr)
                self.assertIn(node, r.stderr)
                self.assertIn(message, r.stderr)
                self.assertIn(lib, r.stderr)

    def test_shape_function_types_what_follows(self):
        nodes = [helper.make_node("Swish", ["x"], ["s"], name="swish", domain="my_ops"),
                 helper.make_node("Relu", ["s"], ["r"], name="relu"),
                 helper.make_node("Identity", ["r"], ["y"], name="identity")]
        graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 8, 8])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3, 8, 8])])
        path = os.path.join(self.tmp, "chain.onnx")
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                          helper.make_opsetid("my_ops", 1)]), path)
        r = self.kiln("show", path, "--custom-ops", SWISH, expect=0)
        self.assertIn("-> s: tensor(float)[n,3,8,8]", r.stdout)
        self.assertIn("-> r: tensor(float)[n,3,8,8]", r.stdout)
        r = self.kiln("show", path, expect=0)
        self.assertNotIn("-> r: tensor(float)[n,3,8,8]", r.stdout)
        r = self.kiln("check", path, "--custom-ops", SWISH, expect=0)
        # A shape function that fails: an error of the check, naming the op and the library.
        r = self.kiln("check", path, "--custom-ops", bad_library(6), expect=EXIT_INVALID)
        self.assertIn("custom op my_ops::Swish from '%s': its shape function failed: no shapes today"
                      % bad_library(6), r.stdout)

    def test_node_that_does_not_fit_the_op(self):
        node = helper.make_node("Swish", ["x", "x"], ["y"], name="two_inputs", domain="my_ops")
        graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
        path = os.path.join(self.tmp, "two.onnx")
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                          helper.make_opsetid("my_ops", 1)]), path)
        for cmd in ("check", "run"):
            r = self.kiln(cmd, path, "--custom-ops", SWISH, *(["-i", "x=1,2"] if cmd == "run" else []))
            self.assertEqual(r.returncode, EXIT_INVALID, r.stdout + r.stderr)
            self.assertIn("node 'two_inputs' (my_ops::Swish)", r.stdout + r.stderr)
            self.assertIn("has 2 inputs and 1 outputs, but the custom op from '%s' takes 1 to 1 inputs" % SWISH,
                          r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
