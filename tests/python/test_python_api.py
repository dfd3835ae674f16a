"""The Python module `kiln` against onnxruntime's Python API: the members deployment scripts use, their
types, and the errors (exception classes and messages).

Environment: KILN_PYTHONPATH (build/python), KILN_MODELS (tests/models/gen_models.py output), KILN_TMP.
"""
import os
import sys
import threading
import unittest

import numpy as np

import kiln_test_util as u

sys.path.insert(0, os.environ["KILN_PYTHONPATH"])
import kiln as onnxruntime  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402


class Api(u.KilnTestCase):
    def session(self, name, **kw):
        return onnxruntime.InferenceSession(self.model(name), **kw)

    def test_module_members(self):
        for name in ("InferenceSession", "SessionOptions", "GraphOptimizationLevel", "RunOptions", "NodeArg",
                     "ModelMetadata", "get_available_providers", "get_device", "InvalidArgument", "NoSuchFile",
                     "Fail", "InvalidGraph", "NotImplemented", "RuntimeException"):
            self.assertTrue(hasattr(onnxruntime, name), name)
        self.assertEqual(onnxruntime.get_available_providers(), ["CPUExecutionProvider"])
        self.assertEqual(onnxruntime.get_device(), "CPU")
        self.assertTrue(issubclass(onnxruntime.InvalidArgument, RuntimeError))

    def test_inputs_outputs_and_metadata(self):
        s = self.session("dynamic_conv.onnx")
        ins, outs = s.get_inputs(), s.get_outputs()
        self.assertEqual(len(ins), 1)
        self.assertIsInstance(ins[0].name, str)
        self.assertEqual(ins[0].type, "tensor(float)")
        self.assertEqual(len(ins[0].shape), 4)
        self.assertTrue(any(isinstance(d, str) for d in ins[0].shape), ins[0].shape)  # symbolic dims by name
        self.assertEqual(ins[0].shape[1], 3)
        self.assertEqual(outs[0].type, "tensor(float)")
        meta = s.get_modelmeta()
        self.assertEqual(meta.producer_name, "pytorch")
        self.assertIsInstance(meta.custom_metadata_map, dict)
        self.assertEqual(s.get_providers(), ["CPUExecutionProvider"])

    def test_run_matches_torch_and_returns_numpy(self):
        s = self.session("srcnn.onnx")
        x = np.load(self.model("srcnn.ref0.in.npy"))
        want = np.load(self.model("srcnn.ref0.out.npy"))
        for names in (None, ["output"]):
            out = s.run(names, {"input": x})
            self.assertIsInstance(out, list)
            self.assertIsInstance(out[0], np.ndarray)
            self.assertEqual(out[0].dtype, np.float32)
            self.assertTrue(np.allclose(out[0], want, rtol=1e-4, atol=1e-4))
        # Model bytes work as well as a path, and so do options and providers.
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        with open(self.model("srcnn.onnx"), "rb") as f:
            s2 = onnxruntime.InferenceSession(f.read(), sess_options=opts, providers=["CPUExecutionProvider"])
        self.assertTrue(np.allclose(s2.run(None, {"input": x})[0], want, rtol=1e-4, atol=1e-4))
        self.assertEqual(s2.get_session_options().intra_op_num_threads, 1)
        # A non-contiguous input is accepted (copied), with the same result.
        xt = np.ascontiguousarray(np.swapaxes(x, 2, 3)).swapaxes(2, 3)
        self.assertFalse(xt.flags["C_CONTIGUOUS"])
        self.assertTrue(np.allclose(s.run(None, {"input": xt})[0], want, rtol=1e-4, atol=1e-4))

    def test_threads_share_a_session(self):
        s = self.session("srcnn.onnx")
        x = np.load(self.model("srcnn.ref0.in.npy"))
        first = s.run(None, {"input": x})[0]
        results = []

        def work():
            for _ in range(5):
                results.append(s.run(None, {"input": x})[0])

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len(results), 20)
        for r in results:
            self.assertTrue(np.array_equal(r, first))

    def test_errors_raise_onnxruntime_classes_with_clear_messages(self):
        s = self.session("srcnn.onnx")
        x = np.load(self.model("srcnn.ref0.in.npy"))
        with self.assertRaises(onnxruntime.InvalidArgument) as e:
            s.run(None, {"input": x, "nosuch": x})
        self.assertIn("'nosuch' is not an input of the model", str(e.exception))
        with self.assertRaises(ValueError) as e:
            s.run(None, {})
        self.assertIn("Required inputs (['input']) are missing from input feed ([])", str(e.exception))
        with self.assertRaises(onnxruntime.InvalidArgument) as e:
            s.run(None, {"input": x.astype(np.float64)})
        self.assertIn("input 'input' has dtype double but the model expects float", str(e.exception))
        with self.assertRaises(onnxruntime.InvalidArgument) as e:
            s.run(None, {"input": x[0]})
        self.assertIn("rank 3", str(e.exception))
        self.assertIn("expects rank 4", str(e.exception))
        with self.assertRaises(onnxruntime.InvalidArgument) as e:
            s.run(["nosuch"], {"input": x})
        self.assertIn("'nosuch' is not an output of the model", str(e.exception))
        with self.assertRaises(onnxruntime.NoSuchFile) as e:
            onnxruntime.InferenceSession(self.out("does_not_exist.onnx"))
        self.assertIn("does_not_exist.onnx", str(e.exception))
        with self.assertRaises(onnxruntime.InvalidArgument):
            onnxruntime.InferenceSession(b"definitely not a model")
        with self.assertRaises(TypeError):
            onnxruntime.InferenceSession(42)

    def test_unknown_provider_warns_and_runs_on_cpu(self):
        with self.assertWarns(UserWarning):
            s = self.session("srcnn.onnx", providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
        self.assertEqual(s.get_providers(), ["CPUExecutionProvider"])

    def test_profiling(self):
        opts = onnxruntime.SessionOptions()
        opts.enable_profiling = True
        opts.profile_file_prefix = self.out("prof")
        import json
        ops = {}
        for level in (onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL,
                      onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL):
            opts.graph_optimization_level = level
            s = self.session("srcnn.onnx", sess_options=opts)
            s.run(None, {"input": np.load(self.model("srcnn.ref0.in.npy"))})
            path = s.end_profiling()
            self.assertTrue(os.path.exists(path), path)
            with open(path) as f:
                events = json.load(f)
            self.assertIn("model_run", [e["name"] for e in events])
            ops[level] = [e["args"]["op"] for e in events if e["cat"] == "node"]
        # Unoptimized: every node of the file (Resize, 3 Conv, 2 Relu and the Constants); optimized: the
        # constants folded away, Conv + Relu fused, the convolutions in the channel-blocked layout.
        self.assertEqual(len(ops[onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL]), 8)
        self.assertEqual(sorted(ops[onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL]),
                         ["NchwcConv", "NchwcConv", "NchwcConv", "ReorderOutput", "Resize"])

    def test_sequences_and_optionals(self):
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 2])
        seq = helper.make_tensor_sequence_value_info("s", TensorProto.FLOAT, None)
        g = helper.make_graph([helper.make_node("SplitToSequence", ["x"], ["s"], keepdims=0)], "g", [x], [seq])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        s = onnxruntime.InferenceSession(m.SerializeToString())
        self.assertEqual(s.get_outputs()[0].type, "seq(tensor(float))")
        data = np.arange(6, dtype=np.float32).reshape(3, 2)
        out = s.run(None, {"x": data})[0]
        self.assertIsInstance(out, list)
        self.assertEqual(len(out), 3)
        self.assertTrue(np.array_equal(out[1], data[1]))


if __name__ == "__main__":
    unittest.main()
