"""Hostile input on the command line and in the Python module: outputs of 10^13 elements, a run over
--memory-limit, a timed-out run, a terminated run, a truncated .npy, an external-data file shorter than it says.
Each gets its exit code (or exception) and a message naming the node or file; nothing crashes, and no process
(kiln's or this one) goes over 1 GiB of RSS."""
import os
import resource
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kiln_test_util as ku  # noqa: E402
from kiln_test_util import onnx, numpy_helper  # noqa: E402
import numpy as np  # noqa: E402
from onnx import helper, TensorProto  # noqa: E402

BIG = 10 ** 13
EXIT_INVALID, EXIT_USAGE, EXIT_STOPPED = 1, 2, 3


def f32(name, a):
    return numpy_helper.from_array(np.array(a, np.float32), name)


def i64(name, a):
    return numpy_helper.from_array(np.array(a, np.int64), name)


def model(nodes, inits, inputs=(), opset=13):
    g = helper.make_graph(nodes, "g", list(inputs), [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


# op -> (model, exit code): each asks for an output of 10^13 elements from constants.
HUGE = {
    "ConstantOfShape": (model([helper.make_node("ConstantOfShape", ["s"], ["y"], name="huge")], [i64("s", [BIG])]),
                        EXIT_STOPPED),
    "Expand": (model([helper.make_node("Expand", ["x", "s"], ["y"], name="huge")],
                     [f32("x", [1]), i64("s", [10 ** 7, 10 ** 6])]), EXIT_STOPPED),
    "Tile": (model([helper.make_node("Tile", ["x", "r"], ["y"], name="huge")], [f32("x", [1, 2]), i64("r", [BIG // 2])]),
             EXIT_STOPPED),
    "Resize": (model([helper.make_node("Resize", ["x", "", "sc"], ["y"], name="huge", mode="nearest")],
                     [f32("x", np.ones((1, 1, 10, 10))), f32("sc", [1, 1, 1e6, 1e5])]), EXIT_STOPPED),
    "Range": (model([helper.make_node("Range", ["a", "b", "c"], ["y"], name="huge")],
                    [f32("a", 0), f32("b", 1e13), f32("c", 1)]), EXIT_STOPPED),
    "Pad": (model([helper.make_node("Pad", ["x", "p"], ["y"], name="huge")],
                  [f32("x", np.ones((1, 1))), i64("p", [0, 0, 10 ** 6, 10 ** 7])]), EXIT_STOPPED),
    # Reshape cannot change the element count: a huge target shape is refused as a mismatch.
    "Reshape": (model([helper.make_node("Reshape", ["x", "s"], ["y"], name="huge")],
                      [f32("x", [1, 2, 3, 4]), i64("s", [10 ** 7, 10 ** 6])]), EXIT_INVALID),
}


def children_peak_mib():
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0


def self_peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class LimitsCliTest(ku.KilnTestCase):
    def save(self, m, name):
        path = self.out(name)
        onnx.save(m, path)
        return path

    def assert_small(self):
        self.assertLess(children_peak_mib(), 1024.0, "a kiln process went over 1 GiB of RSS")

    def test_huge_outputs_are_refused_naming_the_node(self):
        for op, (m, code) in HUGE.items():
            path = self.save(m, op + ".onnx")
            for level in ("disabled", "all"):  # at run time, and while constants are folded
                with self.subTest(op=op, level=level):
                    res = self.kiln("run", path, "--opt-level", level, expect=code)
                    self.assertIn("node 'huge' (" + op, res.stderr)
                    if code == EXIT_STOPPED:
                        self.assertIn("bytes", res.stderr)
                        self.assertIn("more than", res.stderr)
                    self.assert_small()

    def chain(self):
        # x [1024, 1024] -> Relu -> Sigmoid -> Add(relu, sigmoid): three 4 MiB tensors alive at the Add.
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1024, 1024])
        m = model([helper.make_node("Relu", ["x"], ["a"], name="relu"),
                   helper.make_node("Sigmoid", ["a"], ["b"], name="sigmoid"),
                   helper.make_node("Add", ["a", "b"], ["y"], name="add")], [], inputs=[x])
        path = self.save(m, "chain.onnx")
        xp = self.out("x.npy")
        np.save(xp, np.ones((1024, 1024), np.float32))
        return path, xp

    def test_memory_limit(self):
        path, xp = self.chain()
        res = self.kiln("run", path, "--input", "x=" + xp, "--opt-level", "disabled", "--memory-limit", "10",
                        expect=EXIT_STOPPED)
        self.assertIn("node 'add' (Add", res.stderr)
        self.assertIn("over its memory limit of 10.0 MiB", res.stderr)
        self.kiln_ok("run", path, "--input", "x=" + xp, "--opt-level", "disabled", "--memory-limit", "64")
        res = self.kiln("bench", path, "--opt-level", "disabled", "--memory-limit", "10", "--iterations", "2",
                        expect=EXIT_STOPPED)
        self.assertIn("memory limit", res.stderr)
        self.assert_small()

    @staticmethod
    def loop_model(_=None):
        body = helper.make_graph(
            [helper.make_node("Add", ["v_in", "one"], ["v_out"]), helper.make_node("Identity", ["c_in"], ["c_out"])],
            "body",
            [helper.make_tensor_value_info("i", TensorProto.INT64, []),
             helper.make_tensor_value_info("c_in", TensorProto.BOOL, []),
             helper.make_tensor_value_info("v_in", TensorProto.FLOAT, [1])],
            [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []),
             helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [1])],
            [f32("one", [1])])
        m = model([helper.make_node("Loop", ["n", "c", "v0"], ["y"], name="loop", body=body)],
                  [i64("n", 10 ** 9), numpy_helper.from_array(np.array(True), "c"), f32("v0", [0])])
        return m

    def test_timeout(self):
        path = self.save(LimitsCliTest.loop_model(), "loop.onnx")
        t0 = time.time()
        res = self.kiln("run", path, "--timeout-ms", "100", expect=EXIT_STOPPED)
        self.assertLess(time.time() - t0, 30)
        self.assertIn("timed out after 100 ms", res.stderr)
        self.assertIn("loop.onnx", res.stderr)
        self.assert_small()

    def test_truncated_npy(self):
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [100, 100])
        path = self.save(model([helper.make_node("Relu", ["x"], ["y"])], [], inputs=[x]), "relu.onnx")
        good = self.out("x.npy")
        np.save(good, np.ones((100, 100), np.float32))
        with open(good, "rb") as f:
            data = f.read()
        bad = self.out("truncated.npy")
        with open(bad, "wb") as f:
            f.write(data[:-100])
        res = self.kiln("run", path, "--input", "x=" + bad, expect=EXIT_INVALID)
        self.assertIn("truncated.npy", res.stderr)
        self.assertIn("needs 40000 bytes of data but the file has 39900", res.stderr)
        # A header that claims 10^13 elements over a file of a few bytes: refused from the header, not allocated.
        huge = self.out("huge.npy")
        header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d,), }" % BIG
        header += " " * (63 - (len(header) + 10) % 64) + "\n"
        with open(huge, "wb") as f:
            f.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + b"\0" * 64)
        x1 = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])
        path1 = self.save(model([helper.make_node("Relu", ["x"], ["y"])], [], inputs=[x1]), "relu1.onnx")
        res = self.kiln("run", path1, "--input", "x=" + huge, expect=EXIT_INVALID)
        self.assertIn("huge.npy", res.stderr)
        self.assert_small()

    def test_short_external_data(self):
        d = self.out("ext")
        os.makedirs(d)
        w = numpy_helper.from_array(np.ones((256, 256), np.float32), "w")
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 256])
        m = model([helper.make_node("MatMul", ["x", "w"], ["y"])], [w], inputs=[x])
        path = os.path.join(d, "m.onnx")
        onnx.save(m, path, save_as_external_data=True, all_tensors_to_one_file=True, location="m.data",
                  size_threshold=0)
        os.truncate(os.path.join(d, "m.data"), 1000)
        for cmd in ("check", "run"):
            res = self.kiln(cmd, path, expect=EXIT_INVALID)
            self.assertIn("m.data", res.stderr)
            self.assertIn("reads bytes 0..262144", res.stderr)
            self.assertIn("which has only 1000", res.stderr)
        self.assert_small()


def python_module_built():
    """The build's Python module is there (builds with KILN_BUILD_PYTHON=OFF, such as the sanitizer build, have none)."""
    path = os.environ.get("KILN_PYTHONPATH", "")
    return bool(path) and os.path.exists(os.path.join(path, "kiln", "__init__.py"))


@unittest.skipUnless(python_module_built(), "this build has no Python module (KILN_BUILD_PYTHON=OFF)")
class LimitsPythonTest(ku.KilnTestCase):
    def setUp(self):
        super().setUp()
        sys.path.insert(0, os.environ["KILN_PYTHONPATH"])
        import kiln
        self.kiln_mod = kiln

    def test_terminate_from_another_thread(self):
        kiln = self.kiln_mod
        path = self.out("loop.onnx")
        onnx.save(LimitsCliTest.loop_model(None), path)
        sess = kiln.InferenceSession(path)
        ro = kiln.RunOptions()
        self.assertFalse(ro.terminate)
        timer = threading.Timer(0.1, lambda: setattr(ro, "terminate", True))
        timer.start()
        t0 = time.time()
        with self.assertRaises(kiln.Fail) as cm:
            sess.run(None, {}, ro)
        timer.join()
        self.assertLess(time.time() - t0, 30)
        self.assertIn("run terminated", str(cm.exception))
        self.assertIn("node 'loop' (Loop", str(cm.exception))
        ro.terminate = False
        ro.timeout_ms = 50
        with self.assertRaises(kiln.Fail) as cm:
            sess.run(None, {}, ro)
        self.assertIn("timed out after 50 ms", str(cm.exception))
        self.assertLess(self_peak_mib(), 1024.0)

    def test_memory_limit_mb(self):
        kiln = self.kiln_mod
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1024, 1024])
        path = self.out("chain.onnx")
        onnx.save(model([helper.make_node("Relu", ["x"], ["a"], name="relu"),
                         helper.make_node("Sigmoid", ["a"], ["b"], name="sigmoid"),
                         helper.make_node("Add", ["a", "b"], ["y"], name="add")], [], inputs=[x]), path)
        opts = kiln.SessionOptions()
        opts.memory_limit_mb = 10
        opts.graph_optimization_level = kiln.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess = kiln.InferenceSession(path, opts)
        with self.assertRaises(kiln.RuntimeException) as cm:
            sess.run(None, {"x": np.ones((1024, 1024), np.float32)})
        self.assertIn("node 'add' (Add", str(cm.exception))
        self.assertIn("memory limit", str(cm.exception))


if __name__ == "__main__":
    unittest.main()
