"""onnxruntime's IOBinding on kiln (the Python-parity issue): inputs bound once and read in place, outputs bound to
memory written in place (no tensor allocation in a steady-state run), outputs bound by name allocated per run, the
C-level SessionIOBinding with OrtDevice, and the errors: unknown names, wrong shapes and dtypes, other devices, a
binding from another session, missing inputs.

Environment: KILN_PYTHONPATH (the built module), KILN_TMP."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kiln_test_util as ku  # noqa: E402
from kiln_test_util import numpy_helper  # noqa: E402
import numpy as np  # noqa: E402
from onnx import helper, TensorProto  # noqa: E402

sys.path.insert(0, os.environ["KILN_PYTHONPATH"])
import kiln  # noqa: E402
from kiln import _kiln as C  # noqa: E402


def conv_model():
    """Y = Conv(Relu(Conv(X, W1)), W2) with 1x1 and 3x3 kernels (padded): X [1, 3, 16, 16] -> Y [1, 4, 16, 16], and
    Z = Identity(X) (an output no kernel allocates)."""
    rng = np.random.default_rng(3)
    w1 = rng.standard_normal((8, 3, 1, 1)).astype(np.float32)
    w2 = rng.standard_normal((4, 8, 3, 3)).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("Conv", ["X", "W1"], ["H"]),
         helper.make_node("Relu", ["H"], ["R"]),
         helper.make_node("Conv", ["R", "W2"], ["Y"], pads=[1, 1, 1, 1]),
         helper.make_node("Identity", ["X"], ["Z"])],
        "convs",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 4, 16, 16]),
         helper.make_tensor_value_info("Z", TensorProto.FLOAT, [1, 3, 16, 16])],
        [numpy_helper.from_array(w1, "W1"), numpy_helper.from_array(w2, "W2")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    return m.SerializeToString()


def relu_model(n=3):
    g = helper.make_graph([helper.make_node("Relu", ["X"], ["Y"])], "relu",
                          [helper.make_tensor_value_info("X", TensorProto.FLOAT, [n])],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [n])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()


class IOBindingTest(ku.KilnTestCase):
    @classmethod
    def setUpClass(cls):
        cls.model = conv_model()
        cls.x = np.random.default_rng(5).standard_normal((1, 3, 16, 16)).astype(np.float32)

    def session(self):
        return kiln.InferenceSession(self.model)

    def test_outputs_bound_by_name(self):
        sess = self.session()
        expected = sess.run(None, {"X": self.x})
        b = sess.io_binding()
        b.bind_cpu_input("X", self.x)
        b.bind_output("Y")
        b.bind_output("Z", "cpu")
        sess.run_with_iobinding(b)
        y, z = b.copy_outputs_to_cpu()
        np.testing.assert_array_equal(y, expected[0])
        np.testing.assert_array_equal(z, self.x)
        outs = b.get_outputs()
        self.assertEqual([o.shape() for o in outs], [[1, 4, 16, 16], [1, 3, 16, 16]])
        np.testing.assert_array_equal(outs[0].numpy(), expected[0])
        self.assertIsInstance(b.get_outputs_as_ortvaluevector(), kiln.OrtValueVector)

    def test_preallocated_outputs_are_written_in_place(self):
        sess = self.session()
        expected = sess.run(None, {"X": self.x})
        y = np.full((1, 4, 16, 16), np.nan, np.float32)
        z = kiln.OrtValue.ortvalue_from_shape_and_type([1, 3, 16, 16], np.float32)
        b = sess.io_binding()
        b.bind_cpu_input("X", self.x)
        b.bind_output("Y", "cpu", 0, np.float32, list(y.shape), y.ctypes.data)
        b.bind_ortvalue_output("Z", z)
        sess.run_with_iobinding(b)
        np.testing.assert_array_equal(y, expected[0])
        np.testing.assert_array_equal(z.numpy(), self.x)
        outs = b.get_outputs()
        self.assertEqual(outs[0].data_ptr(), y.ctypes.data)
        self.assertEqual(outs[1].data_ptr(), z.data_ptr())

    def test_steady_state_run_allocates_no_tensor_memory(self):
        sess = self.session()
        y = np.empty((1, 4, 16, 16), np.float32)
        z = np.empty((1, 3, 16, 16), np.float32)
        b = sess.io_binding()
        b.bind_cpu_input("X", self.x)
        b.bind_output("Y", "cpu", 0, np.float32, list(y.shape), y.ctypes.data)
        b.bind_output("Z", "cpu", 0, TensorProto.FLOAT, list(z.shape), z.ctypes.data)
        for _ in range(3):  # the first run records the memory plan, the second packs nothing new
            sess.run_with_iobinding(b)
        before = kiln.tensor_heap_stats()
        for _ in range(20):
            sess.run_with_iobinding(b)
        after = kiln.tensor_heap_stats()
        self.assertEqual(after[0] - before[0], 0, "tensor allocations in 20 bound runs")
        # The same session's run() allocates its outputs every time: the count does see runs.
        before = kiln.tensor_heap_stats()
        for _ in range(5):
            sess.run(None, {"X": self.x})
        self.assertGreaterEqual(kiln.tensor_heap_stats()[0] - before[0], 5)

    def test_bound_input_is_read_in_place_by_every_run(self):
        sess = kiln.InferenceSession(relu_model())
        x = np.array([-1, 2, -3], np.float32)
        b = sess.io_binding()
        b.bind_cpu_input("X", x)
        b.bind_output("Y")
        sess.run_with_iobinding(b)
        np.testing.assert_array_equal(b.copy_outputs_to_cpu()[0], [0, 2, 0])
        x[:] = [4, -5, 6]
        sess.run_with_iobinding(b)
        np.testing.assert_array_equal(b.copy_outputs_to_cpu()[0], [4, 0, 6])

    def test_copy_outputs_to_cpu_is_a_copy(self):
        sess = kiln.InferenceSession(relu_model())
        y = np.zeros(3, np.float32)
        b = sess.io_binding()
        b.bind_cpu_input("X", np.array([1, 2, 3], np.float32))
        b.bind_output("Y", "cpu", 0, np.float32, [3], y.ctypes.data)
        sess.run_with_iobinding(b)
        copy = b.copy_outputs_to_cpu()[0]
        y[:] = 0
        np.testing.assert_array_equal(copy, [1, 2, 3])

    def test_output_bound_to_its_own_input(self):
        # The run reads X while it makes Y: an output bound to the input's memory is written after the run.
        sess = kiln.InferenceSession(relu_model())
        x = np.array([-1, 2, -3], np.float32)
        b = sess.io_binding()
        b.bind_cpu_input("X", x)
        b.bind_output("Y", "cpu", 0, np.float32, [3], x.ctypes.data)
        sess.run_with_iobinding(b)
        np.testing.assert_array_equal(x, [0, 2, 0])

    def test_bind_input_from_pointer_and_ortvalue(self):
        sess = kiln.InferenceSession(relu_model())
        x = np.array([-1, 2, -3], np.float32)
        b = sess.io_binding()
        b.bind_input("X", "cpu", 0, np.float32, [3], x.ctypes.data)
        b.bind_output("Y")
        sess.run_with_iobinding(b)
        np.testing.assert_array_equal(b.copy_outputs_to_cpu()[0], [0, 2, 0])
        b.bind_ortvalue_input("X", kiln.OrtValue.ortvalue_from_numpy(np.array([5, -6, 7], np.float32)))
        sess.run_with_iobinding(b)
        np.testing.assert_array_equal(b.copy_outputs_to_cpu()[0], [5, 0, 7])

    def test_c_level_binding_with_ort_device(self):
        sess = kiln.InferenceSession(relu_model())
        cpu = C.OrtDevice(C.OrtDevice.cpu(), C.OrtDevice.default_memory(), 0)
        x = C.OrtValue.ortvalue_from_numpy(np.array([-1, 2, -3], np.float32), cpu)
        y = kiln.OrtValue.ortvalue_from_shape_and_type([3], TensorProto.FLOAT)
        b = C.SessionIOBinding(sess._sess)
        b.bind_input("X", cpu, TensorProto.FLOAT, [3], x.data_ptr())
        b.bind_output("Y", cpu, np.float32, [3], y.data_ptr())
        sess._sess.run_with_iobinding(b, None)
        np.testing.assert_array_equal(y.numpy(), [0, 2, 0])
        self.assertIsInstance(b.get_outputs(), C.OrtValueVector)

    def test_errors(self):
        sess = self.session()
        b = sess.io_binding()
        with self.assertRaisesRegex(kiln.InvalidArgument, r"'Q' is not an input of the model \(inputs: 'X'\)"):
            b.bind_cpu_input("Q", self.x)
        with self.assertRaisesRegex(kiln.InvalidArgument, r"'Q' is not an output of the model \(outputs: 'Y', 'Z'\)"):
            b.bind_output("Q")
        with self.assertRaisesRegex(ValueError, "kiln runs on the CPU"):
            b.bind_output("Y", "cuda", 0)
        with self.assertRaisesRegex(ValueError, "element_type.*shape"):
            b.bind_output("Y", "cpu", 0, None, None, 1234)
        # Nothing bound: the input is missing.
        b.bind_output("Y")
        with self.assertRaisesRegex(kiln.InvalidArgument, "input 'X'.*is missing"):
            sess.run_with_iobinding(b)
        b.bind_cpu_input("X", self.x)
        small = np.zeros((1, 4, 8, 8), np.float32)
        b.bind_output("Y", "cpu", 0, np.float32, list(small.shape), small.ctypes.data)
        with self.assertRaisesRegex(kiln.InvalidArgument,
                                    r"output 'Y' is float \[1,4,16,16\], but its preallocated tensor is "
                                    r"float \[1,4,8,8\]"):
            sess.run_with_iobinding(b)
        wrong = np.zeros((1, 4, 16, 16), np.int32)
        b.bind_output("Y", "cpu", 0, np.int32, list(wrong.shape), wrong.ctypes.data)
        with self.assertRaisesRegex(kiln.InvalidArgument, "output 'Y' is float.*preallocated tensor is int32"):
            sess.run_with_iobinding(b)
        b.bind_cpu_input("X", np.zeros((1, 3, 8, 8), np.float32))
        b.bind_output("Y")
        with self.assertRaisesRegex(kiln.InvalidArgument, "input 'X'"):
            sess.run_with_iobinding(b)
        other = kiln.InferenceSession(relu_model())
        with self.assertRaisesRegex(kiln.InvalidArgument, "made for another session"):
            other.run_with_iobinding(b)
        with self.assertRaisesRegex(TypeError, "IOBinding"):
            sess.run_with_iobinding(object())

    def test_clear_bindings(self):
        sess = self.session()
        b = sess.io_binding()
        b.bind_cpu_input("X", self.x)
        b.bind_output("Z")
        sess.run_with_iobinding(b)
        self.assertEqual(len(b.get_outputs()), 1)
        b.clear_binding_outputs()
        self.assertEqual(len(b.get_outputs()), 0)
        sess.run_with_iobinding(b)  # no output bound: every output, as run() gives them
        self.assertEqual(len(b.get_outputs()), 2)
        b.clear_binding_inputs()
        with self.assertRaisesRegex(kiln.InvalidArgument, "is missing"):
            sess.run_with_iobinding(b)

    def test_run_options_terminate(self):
        sess = self.session()
        b = sess.io_binding()
        b.bind_cpu_input("X", self.x)
        b.bind_output("Y")
        ro = kiln.RunOptions()
        ro.terminate = True
        with self.assertRaises(kiln.Fail):
            sess.run_with_iobinding(b, ro)
        ro.terminate = False
        sess.run_with_iobinding(b, ro)


if __name__ == "__main__":
    unittest.main()
