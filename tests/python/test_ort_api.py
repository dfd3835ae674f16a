"""onnxruntime's Python API beyond InferenceSession.run, on kiln (the Python-parity issue): OrtValue and
OrtValueVector, run_with_ort_values at both levels, SessionOptions' members (config entries, free-dimension
overrides, add_initializer, add_external_initializers, optimized_model_filepath, logging and threading members),
ORT_LOAD_CONFIG_FROM_MODEL, RunOptions' members, set_providers, run_async, the module functions, Python lists and
np.void strings as inputs, empty sequences typed from the model, and kiln.install_as_onnxruntime().

Environment: KILN_PYTHONPATH (the built module), KILN_TMP."""
import os
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kiln_test_util as ku  # noqa: E402
from kiln_test_util import onnx, numpy_helper  # noqa: E402
import numpy as np  # noqa: E402
from onnx import helper, TensorProto  # noqa: E402

sys.path.insert(0, os.environ["KILN_PYTHONPATH"])
import kiln  # noqa: E402


def save(model, path):
    onnx.save(model, path)
    return path


def square_model(path, dims=("n", 2)):
    """Y = X * X over float X of `dims`."""
    g = helper.make_graph([helper.make_node("Mul", ["X", "X"], ["Y"])], "sq",
                          [helper.make_tensor_value_info("X", TensorProto.FLOAT, list(dims))],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, list(dims))])
    return save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)


def add_weight_model(path):
    """Y = X + W, W an initializer [1, 2, 3]."""
    g = helper.make_graph([helper.make_node("Add", ["X", "W"], ["Y"])], "add",
                          [helper.make_tensor_value_info("X", TensorProto.FLOAT, [3])],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [3])],
                          [numpy_helper.from_array(np.array([1, 2, 3], np.float32), "W")])
    return save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)


class OrtValueTest(ku.KilnTestCase):
    def test_ortvalue_from_numpy_is_zero_copy(self):
        a = np.array([[1, 2], [3, 4], [5, 6]], np.float32)
        v = kiln.OrtValue.ortvalue_from_numpy(a)
        self.assertEqual(v.shape(), [3, 2])
        self.assertEqual(v.data_type(), "tensor(float)")
        self.assertEqual(v.element_type(), TensorProto.FLOAT)
        self.assertEqual(v.tensor_size_in_bytes(), 24)
        self.assertEqual(v.device_name(), "cpu")
        self.assertTrue(v.is_tensor() and v.has_value())
        self.assertEqual(v.data_ptr(), a.ctypes.data)
        a[0, 0] = 42
        self.assertEqual(v.numpy()[0, 0], 42)
        with self.assertRaises(ValueError):
            kiln.OrtValue.ortvalue_from_numpy(a, "cuda", 0)

    def test_shape_and_type_and_onnx_type(self):
        v = kiln.OrtValue.ortvalue_from_shape_and_type([2, 3], np.int64)
        self.assertEqual(v.shape(), [2, 3])
        self.assertEqual(v.data_type(), "tensor(int64)")
        v.update_inplace(np.arange(6, dtype=np.int64).reshape(2, 3))
        np.testing.assert_array_equal(v.numpy(), np.arange(6).reshape(2, 3))
        b = kiln.OrtValue.ortvalue_from_numpy_with_onnx_type(np.array([0x3F80, 0x4000], np.uint16), TensorProto.BFLOAT16)
        self.assertEqual(b.data_type(), "tensor(bfloat16)")
        np.testing.assert_array_equal(b.numpy(), np.array([1.0, 2.0], np.float32))
        with self.assertRaises(ValueError):
            v.update_inplace(np.zeros(5, np.int64))

    def test_run_with_ort_values(self):
        sess = kiln.InferenceSession(square_model(self.out("sq.onnx")))
        x = np.array([[1, 2], [3, 4], [5, 6]], np.float32)
        v = kiln.OrtValue.ortvalue_from_numpy(x)
        np.testing.assert_array_equal(sess.run(["Y"], {"X": v})[0], x * x)
        vec = sess._sess.run_with_ort_values({"X": v._get_c_value()}, ["Y"], kiln.RunOptions())
        self.assertIsInstance(vec, kiln.OrtValueVector)
        self.assertEqual(len(vec), 1)
        np.testing.assert_array_equal(vec[0].numpy(), x * x)
        outs = sess.run_with_ort_values(["Y"], {"X": v})
        self.assertIsInstance(outs[0], kiln.OrtValue)
        np.testing.assert_array_equal(outs[0].numpy(), x * x)
        with self.assertRaises(TypeError):
            sess.run_with_ort_values(["Y"], {"X": x})
        with self.assertRaises(kiln.InvalidArgument):  # a wrong dtype, named
            sess.run(["Y"], {"X": kiln.OrtValue.ortvalue_from_numpy(x.astype(np.int64))})

    def test_dlpack_round_trips_without_copies(self):
        import torch
        from kiln import _kiln as C
        a = np.array([[1, 2], [3, 4], [5, 6]], np.float32)
        v = kiln.OrtValue.ortvalue_from_numpy(a)
        self.assertEqual(v.__dlpack_device__(), (1, 0))
        capsule = v.to_dlpack()
        self.assertFalse(C.is_dlpack_uint8_tensor(capsule))
        back = kiln.OrtValue.from_dlpack(capsule, False)
        self.assertEqual(back.data_ptr(), a.ctypes.data)
        with self.assertRaisesRegex(TypeError, "not consumed yet"):
            kiln.OrtValue.from_dlpack(capsule, False)  # a capsule is consumed once
        viewed = np.from_dlpack(v)  # numpy through __dlpack__
        self.assertEqual(viewed.ctypes.data, a.ctypes.data)
        t = torch.utils.dlpack.from_dlpack(v.to_dlpack())
        self.assertEqual(t.data_ptr(), a.ctypes.data)
        del v, back, viewed
        np.testing.assert_array_equal(t.numpy(), a)  # the capsule's owner kept the memory
        i64 = torch.arange(6, dtype=torch.int64).reshape(2, 3)
        w = kiln.OrtValue.from_dlpack(i64)
        self.assertEqual((w.element_type(), w.shape(), w.data_ptr()), (TensorProto.INT64, [2, 3], i64.data_ptr()))
        flags = kiln.OrtValue.ortvalue_from_numpy(np.array([True, False, True]))
        self.assertTrue(C.is_dlpack_uint8_tensor(flags.to_dlpack()))  # bool travels as uint8, as onnxruntime's
        np.testing.assert_array_equal(kiln.OrtValue.from_dlpack(flags.to_dlpack(), True).numpy(), [True, False, True])
        with self.assertRaisesRegex(ValueError, "not compact row-major"):
            kiln.OrtValue.from_dlpack(torch.arange(6.0).reshape(2, 3).t())
        with self.assertRaisesRegex(TypeError, "no DLPack form"):
            kiln.OrtValue.ortvalue_from_numpy(np.array(["a"], object)).to_dlpack()


class SparseTensorTest(ku.KilnTestCase):
    def test_coo_and_csr_containers(self):
        cpu = kiln.OrtDevice.make("cpu", 0)
        values = np.array([1.0, 2.0, 3.0], np.float32)
        coo = kiln.SparseTensor.sparse_coo_from_numpy([9, 9], values, np.array([3, 5, 15], np.int64), cpu)
        self.assertEqual(coo.format(), kiln.OrtSparseFormat.ORT_SPARSE_COO)
        self.assertEqual((coo.dense_shape(), coo.data_type(), coo.device_name()), ([9, 9], "sparse_tensor(float)", "cpu"))
        self.assertFalse(coo.values().flags.writeable)
        np.testing.assert_array_equal(coo.as_coo_view().indices(), [3, 5, 15])
        v = kiln.OrtValue.ort_value_from_sparse_tensor(coo)
        self.assertTrue(v.is_sparse_tensor() and not v.is_tensor())
        self.assertIs(v.as_sparse_tensor(), coo)
        csr = kiln.SparseTensor.sparse_csr_from_numpy([3, 4], np.array(["a", "b"]), np.array([1, 2], np.int64),
                                                      np.array([0, 1, 2, 2], np.int64), cpu)
        self.assertEqual(csr.data_type(), "sparse_tensor(string)")
        np.testing.assert_array_equal(csr.as_csrc_view().outer(), [0, 1, 2, 2])
        with self.assertRaises(RuntimeError):
            csr.as_coo_view()
        with self.assertRaises(RuntimeError):
            coo.to_cuda(kiln.OrtDevice.make("cuda", 0))
        with self.assertRaises(ValueError):  # 2 indices for 3 values
            kiln.SparseTensor.sparse_coo_from_numpy([9], values, np.array([1, 2], np.int64), cpu)
        with self.assertRaises(ValueError):  # outer must have rows + 1 entries
            kiln.SparseTensor.sparse_csr_from_numpy([3, 4], values, np.array([0, 1, 2], np.int64),
                                                    np.array([0, 3], np.int64), cpu)
        sess = kiln.InferenceSession(square_model(self.out("sq.onnx")))
        with self.assertRaises(TypeError) as ctx:  # not a run input
            sess.run(None, {"X": v})
        self.assertIn("'X'", str(ctx.exception))


class SessionOptionsTest(ku.KilnTestCase):
    def test_members_and_config_entries(self):
        so = kiln.SessionOptions()
        so.log_severity_level = 1
        so.log_verbosity_level = 2
        so.logid = "me"
        so.inter_op_num_threads = 2
        so.execution_mode = kiln.ExecutionMode.ORT_PARALLEL
        so.enable_mem_pattern = False
        so.enable_cpu_mem_arena = False
        so.use_deterministic_compute = True
        so.add_session_config_entry("any.key", "v")
        self.assertEqual(so.get_session_config_entry("any.key"), "v")
        with self.assertRaises(RuntimeError) as ctx:
            so.get_session_config_entry("missing.key")
        self.assertIn("SessionOptions does not have configuration with key: missing.key", str(ctx.exception))
        sess = kiln.InferenceSession(square_model(self.out("sq.onnx")), so)
        got = sess.get_session_options()
        self.assertEqual((got.logid, got.inter_op_num_threads, got.execution_mode),
                         ("me", 2, kiln.ExecutionMode.ORT_PARALLEL))

    def test_free_dimension_overrides(self):
        x = helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", "ch", 4])
        x.type.tensor_type.shape.dim[1].denotation = "DATA_CHANNEL"
        g = helper.make_graph([helper.make_node("Abs", ["X"], ["Y"])], "abs", [x],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)])
        path = save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), self.out("abs.onnx"))
        so = kiln.SessionOptions()
        so.add_free_dimension_override_by_name("batch", 3)
        so.add_free_dimension_override_by_denotation("DATA_CHANNEL", 5)
        sess = kiln.InferenceSession(path, so)
        self.assertEqual(sess.get_inputs()[0].shape, [3, 5, 4])
        with self.assertRaises(kiln.InvalidArgument):  # the dims are now fixed
            sess.run(None, {"X": np.zeros((2, 5, 4), np.float32)})

    def test_add_initializer_replaces_a_weight_without_copying(self):
        w = np.array([10, 20, 30], np.float32)
        so = kiln.SessionOptions()
        so.add_initializer("W", kiln.OrtValue.ortvalue_from_numpy(w))
        sess = kiln.InferenceSession(add_weight_model(self.out("add.onnx")), so)
        np.testing.assert_array_equal(sess.run(None, {"X": np.ones(3, np.float32)})[0], [11, 21, 31])
        bad = kiln.SessionOptions()
        bad.add_initializer("W", kiln.OrtValue.ortvalue_from_numpy(np.ones(4, np.float32)))
        with self.assertRaises(kiln.InvalidArgument) as ctx:
            kiln.InferenceSession(add_weight_model(self.out("add2.onnx")), bad)
        self.assertIn("initializer 'W'", str(ctx.exception))

    def test_add_external_initializers_supplies_missing_external_data(self):
        model = onnx.load(add_weight_model(self.out("ext.onnx")))
        onnx.external_data_helper.convert_model_to_external_data(model, location="absent.bin", size_threshold=0)
        onnx.save(model, self.out("ext.onnx"))
        os.remove(self.out("absent.bin"))
        with self.assertRaises(kiln.NoSuchFile):
            kiln.InferenceSession(self.out("ext.onnx"))
        so = kiln.SessionOptions()
        so.add_external_initializers(["W"], [kiln.OrtValue.ortvalue_from_numpy(np.array([1, 1, 1], np.float32))])
        sess = kiln.InferenceSession(self.out("ext.onnx"), so)
        np.testing.assert_array_equal(sess.run(None, {"X": np.ones(3, np.float32)})[0], [2, 2, 2])

    def test_optimized_model_filepath(self):
        so = kiln.SessionOptions()
        so.optimized_model_filepath = self.out("opt.onnx")
        kiln.InferenceSession(square_model(self.out("sq.onnx")), so)
        self.assertTrue(os.path.isfile(so.optimized_model_filepath))
        again = kiln.InferenceSession(so.optimized_model_filepath)
        np.testing.assert_array_equal(again.run(None, {"X": np.full((1, 2), 3, np.float32)})[0], [[9, 9]])

    def test_load_config_from_model(self):
        model = onnx.load(square_model(self.out("sq.onnx")))
        helper.set_model_props(model, {"ort_config": '{"session_options": {"intra_op_num_threads": 2, '
                                                     '"inter_op_num_threads": 5, "graph_optimization_level": 1}}'})
        onnx.save(model, self.out("cfg.onnx"))
        os.environ["ORT_LOAD_CONFIG_FROM_MODEL"] = "1"
        try:
            got = kiln.InferenceSession(self.out("cfg.onnx")).get_session_options()
        finally:
            os.environ["ORT_LOAD_CONFIG_FROM_MODEL"] = "0"
        self.assertEqual((got.intra_op_num_threads, got.inter_op_num_threads), (2, 5))
        self.assertEqual(got.graph_optimization_level, kiln.GraphOptimizationLevel.ORT_ENABLE_BASIC)
        self.assertEqual(kiln.InferenceSession(self.out("cfg.onnx")).get_session_options().inter_op_num_threads, 0)


class RunAndModuleTest(ku.KilnTestCase):
    def test_run_options_members(self):
        ro = kiln.RunOptions()
        ro.logid = "run"
        ro.log_severity_level = 3
        ro.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        self.assertEqual(ro.get_run_config_entry("memory.enable_memory_arena_shrinkage"), "cpu:0")
        with self.assertRaises(RuntimeError):
            ro.get_run_config_entry("nope")
        sess = kiln.InferenceSession(square_model(self.out("sq.onnx")))
        np.testing.assert_array_equal(sess.run(None, {"X": np.ones((1, 2), np.float32)}, ro)[0], [[1, 1]])
        ro.terminate = True
        with self.assertRaises(kiln.Fail):
            sess.run(None, {"X": np.ones((1, 2), np.float32)}, ro)

    def test_providers_async_and_module_functions(self):
        sess = kiln.InferenceSession(square_model(self.out("sq.onnx")))
        sess.set_providers(["CPUExecutionProvider"])
        with self.assertRaises(RuntimeError) as ctx:
            sess.set_providers(["InvalidProvider"])
        self.assertIn("Unknown Provider Type: InvalidProvider", str(ctx.exception))
        self.assertEqual(sess.get_provider_options(), {"CPUExecutionProvider": {}})
        self.assertGreater(sess.get_profiling_start_time_ns(), 0)
        done = threading.Event()
        got = {}

        def callback(outputs, data, error):
            got.update(outputs=outputs, data=data, error=error)
            done.set()

        sess.run_async(["Y"], {"X": np.full((2, 2), 2, np.float32)}, callback, "user")
        self.assertTrue(done.wait(10))
        self.assertEqual((got["data"], got["error"]), ("user", ""))
        np.testing.assert_array_equal(got["outputs"][0], np.full((2, 2), 4))
        self.assertIn("Build Info", kiln.get_build_info())
        self.assertEqual(kiln.get_version_string(), kiln.__version__)
        kiln.enable_telemetry_events()
        kiln.disable_telemetry_events()
        kiln.set_default_logger_severity(3)

    def test_lists_void_strings_and_empty_sequences(self):
        sess = kiln.InferenceSession(square_model(self.out("sq.onnx")))
        np.testing.assert_array_equal(sess.run(None, {"X": [[1.0, 2.0]]})[0], [[1, 4]])  # float64 list -> float
        g = helper.make_graph([helper.make_node("Identity", ["s"], ["t"])], "id",
                              [helper.make_tensor_value_info("s", TensorProto.STRING, [2])],
                              [helper.make_tensor_value_info("t", TensorProto.STRING, [2])])
        strings = kiln.InferenceSession(save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]),
                                             self.out("id.onnx")))
        out = strings.run(None, {"s": np.array([b"ab", b"cd"], dtype=np.void)})[0]
        self.assertEqual(list(out), ["ab", "cd"])
        seq = helper.make_tensor_sequence_value_info("seq", TensorProto.INT64, None)
        g = helper.make_graph([helper.make_node("SequenceInsert", ["seq", "x"], ["out"])], "ins",
                              [seq, helper.make_tensor_value_info("x", TensorProto.INT64, [2])],
                              [helper.make_tensor_sequence_value_info("out", TensorProto.INT64, None)])
        ins = kiln.InferenceSession(save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]),
                                         self.out("ins.onnx")))
        res = ins.run(None, {"seq": [], "x": np.array([1, 2], np.int64)})[0]
        self.assertEqual(len(res), 1)
        np.testing.assert_array_equal(res[0], [1, 2])

    def test_type_stubs_match_the_module(self):
        import ast
        stub_path = os.path.join(os.path.dirname(kiln.__file__), "__init__.pyi")
        self.assertTrue(os.path.exists(os.path.join(os.path.dirname(kiln.__file__), "py.typed")))
        tree = ast.parse(open(stub_path).read())
        top, classes = set(), {}
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                top.add(node.name)
            elif isinstance(node, ast.AnnAssign):
                top.add(node.target.id)
            elif isinstance(node, ast.ImportFrom) and node.module.startswith("kiln"):
                top.update(a.asname or a.name for a in node.names)
            if isinstance(node, ast.ClassDef):
                classes[node.name] = [n.name for n in node.body if isinstance(n, ast.FunctionDef)]
        public = {n for n in dir(kiln) if not n.startswith("_") and not isinstance(getattr(kiln, n), type(os))}
        public.add("__version__")
        top.discard("Feed")
        self.assertEqual(public - top, set(), "in the module, not in the stubs")
        self.assertEqual(top - public, set(), "in the stubs, not in the module")
        for cls, methods in classes.items():
            for m in methods:
                if m != "__init__":
                    self.assertTrue(hasattr(getattr(kiln, cls), m), "%s.%s is stubbed but missing" % (cls, m))

    def test_install_as_onnxruntime(self):
        code = ("import sys; sys.path.insert(0, sys.argv[1]); import kiln; kiln.install_as_onnxruntime()\n"
                "import onnxruntime as ort\n"
                "from onnxruntime.capi.onnxruntime_pybind11_state import Fail, OrtValueVector, RunOptions\n"
                "from onnxruntime.capi import _pybind_state as C\n"
                "assert ort is kiln and Fail is kiln.Fail and C.OrtValue is kiln.OrtValue\n"
                "print(ort.get_available_providers())")
        r = subprocess.run(["/usr/bin/python3", "-c", code, os.environ["KILN_PYTHONPATH"]], capture_output=True,
                           text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("CPUExecutionProvider", r.stdout)


class MoreSessionMethodsTest(ku.KilnTestCase):
    def overridable_model(self):
        """Y = X + W, W an input [3] with the initializer [1, 2, 3] as its default."""
        g = helper.make_graph([helper.make_node("Add", ["X", "W"], ["Y"])], "add",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, [3]),
                               helper.make_tensor_value_info("W", TensorProto.FLOAT, [3])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [3])],
                              [numpy_helper.from_array(np.array([1, 2, 3], np.float32), "W")])
        return save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), self.out("ov.onnx"))

    def test_get_overridable_initializers(self):
        sess = kiln.InferenceSession(self.overridable_model())
        self.assertEqual([i.name for i in sess.get_inputs()], ["X"])
        ov = sess.get_overridable_initializers()
        self.assertEqual([(o.name, o.type, o.shape) for o in ov], [("W", "tensor(float)", [3])])
        x = np.zeros(3, np.float32)
        np.testing.assert_array_equal(sess.run(None, {"X": x})[0], [1, 2, 3])
        np.testing.assert_array_equal(sess.run(None, {"X": x, "W": np.ones(3, np.float32)})[0], [1, 1, 1])
        self.assertEqual(kiln.InferenceSession(square_model(self.out("sq.onnx"))).get_overridable_initializers(), [])

    def test_run_with_ortvaluevector(self):
        sess = kiln.InferenceSession(square_model(self.out("sq.onnx")))
        feeds = kiln.OrtValueVector()
        feeds.push_back(kiln.OrtValue.ortvalue_from_numpy(np.array([[1, 2], [3, 4]], np.float32)))
        fetches = kiln.OrtValueVector()
        sess.run_with_ortvaluevector(kiln.RunOptions(), ["X"], feeds, ["Y"], fetches, [kiln.OrtDevice.make("cpu", 0)])
        self.assertEqual(len(fetches), 1)
        np.testing.assert_array_equal(fetches[0].numpy(), [[1, 4], [9, 16]])
        # Fetches holding tensors are written in place.
        y = np.zeros((2, 2), np.float32)
        pre = kiln.OrtValueVector()
        pre.push_back(kiln.OrtValue.ortvalue_from_numpy(y))
        sess._sess.run_with_ortvaluevector(None, ["X"], feeds, ["Y"], pre, None)
        np.testing.assert_array_equal(y, [[1, 4], [9, 16]])
        with self.assertRaisesRegex(kiln.InvalidArgument, "2 feed names for 1 feeds"):
            sess.run_with_ortvaluevector(None, ["X", "Z"], feeds, ["Y"], kiln.OrtValueVector(), None)
        with self.assertRaisesRegex(kiln.InvalidArgument, "'Q' is not an output"):
            sess.run_with_ortvaluevector(None, ["X"], feeds, ["Q"], kiln.OrtValueVector(), None)

    def test_fallback_switches_and_dense_as_sparse(self):
        sess = kiln.InferenceSession(square_model(self.out("sq2.onnx")))
        sess.disable_fallback()
        sess.enable_fallback()
        v = kiln.OrtValue.ortvalue_from_numpy(np.zeros(2, np.float32))
        with self.assertRaisesRegex(TypeError, "not a sparse tensor"):
            v.as_sparse_tensor()


if __name__ == "__main__":
    unittest.main()
