"""LoRA adapters through onnxruntime's Python API on kiln (the Python-parity issue): AdapterFormat writes and reads
.onnx_adapter files (onnxruntime's format), LoraAdapter.Load and RunOptions.add_active_adapter feed an adapter's
parameters to a model built as onnxruntime's LoRA test model is (LoRA parameters as inputs whose initializers are
the base model's empty ones), checked against numpy; and the errors.

Environment: KILN_PYTHONPATH (the built module), KILN_TMP."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kiln_test_util as ku  # noqa: E402
from kiln_test_util import onnx, numpy_helper  # noqa: E402
import numpy as np  # noqa: E402
from onnx import helper, TensorProto  # noqa: E402

sys.path.insert(0, os.environ["KILN_PYTHONPATH"])
import kiln  # noqa: E402

W = np.arange(16, dtype=np.float32).reshape(4, 4) / 8


def lora_model(path):
    """y = x @ W + (x @ lora_a) @ lora_b over x [n, 4]; lora_a [4, r] and lora_b [r, 4] default to r = 0."""
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("MatMul", ["x", "lora_a"], ["xa"]),
         helper.make_node("MatMul", ["xa", "lora_b"], ["xab"]), helper.make_node("Add", ["xw", "xab"], ["y"])],
        "lora",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4]),
         helper.make_tensor_value_info("lora_a", TensorProto.FLOAT, [4, "r"]),
         helper.make_tensor_value_info("lora_b", TensorProto.FLOAT, ["r", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])],
        [numpy_helper.from_array(W, "W"), numpy_helper.from_array(np.zeros((4, 0), np.float32), "lora_a"),
         numpy_helper.from_array(np.zeros((0, 4), np.float32), "lora_b")])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


class LoraTest(ku.KilnTestCase):
    def write_adapter(self, path, params, adapter_version=2, model_version=1):
        fmt = kiln.AdapterFormat()
        fmt.set_adapter_version(adapter_version)
        fmt.set_model_version(model_version)
        fmt.set_parameters({k: kiln.OrtValue.ortvalue_from_numpy(v) for k, v in params.items()})
        fmt.export_adapter(path)
        return path

    def test_adapter_format_round_trip(self):
        rng = np.random.default_rng(1)
        params = {"p_f32": rng.standard_normal((3, 5)).astype(np.float32),
                  "p_i64": np.arange(6, dtype=np.int64).reshape(2, 3),
                  "p_f16": rng.standard_normal(7).astype(np.float16)}
        path = self.write_adapter(os.path.join(self.tmp, "rt.onnx_adapter"), params, 5, 9)
        with open(path, "rb") as f:
            self.assertEqual(f.read(8)[4:], b"TORT")
        back = kiln.AdapterFormat.read_adapter(path)
        self.assertEqual((back.get_format_version(), back.get_adapter_version(), back.get_model_version()), (1, 5, 9))
        self.assertEqual((back.format_version, back.adapter_version, back.model_version), (1, 5, 9))
        got = back.get_parameters()
        self.assertEqual(set(got), set(params))
        for k, v in params.items():
            self.assertEqual(got[k].element_type(), onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[v.dtype])
            np.testing.assert_array_equal(got[k].numpy(), v)

    def test_active_adapter_feeds_its_parameters(self):
        model = lora_model(os.path.join(self.tmp, "lora.onnx"))
        rng = np.random.default_rng(2)
        a = rng.standard_normal((4, 2)).astype(np.float32)
        b = rng.standard_normal((2, 4)).astype(np.float32)
        path = self.write_adapter(os.path.join(self.tmp, "r2.onnx_adapter"), {"lora_a": a, "lora_b": b})
        x = rng.standard_normal((3, 4)).astype(np.float32)
        sess = kiln.InferenceSession(model)
        np.testing.assert_allclose(sess.run(None, {"x": x})[0], x @ W, rtol=1e-5, atol=1e-5)
        adapter = kiln.LoraAdapter()
        adapter.Load(path)
        ro = kiln.RunOptions()
        ro.add_active_adapter(adapter)
        np.testing.assert_allclose(sess.run(None, {"x": x}, ro)[0], x @ W + (x @ a) @ b, rtol=1e-5, atol=1e-5)
        # The options without it: the base model again; and run_with_ort_values takes the options too.
        np.testing.assert_allclose(sess.run(None, {"x": x}, kiln.RunOptions())[0], x @ W, rtol=1e-5, atol=1e-5)
        out = sess.run_with_ort_values(None, {"x": kiln.OrtValue.ortvalue_from_numpy(x)}, ro)[0].numpy()
        np.testing.assert_allclose(out, x @ W + (x @ a) @ b, rtol=1e-5, atol=1e-5)

    def test_errors(self):
        model = lora_model(os.path.join(self.tmp, "lora_e.onnx"))
        sess = kiln.InferenceSession(model)
        x = np.ones((1, 4), np.float32)
        stray = self.write_adapter(os.path.join(self.tmp, "stray.onnx_adapter"), {"q": np.zeros(2, np.float32)})
        adapter = kiln.LoraAdapter()
        adapter.Load(stray)
        ro = kiln.RunOptions()
        ro.add_active_adapter(adapter)
        with self.assertRaisesRegex(kiln.InvalidArgument, "LoRA adapter parameter 'q' is not an input of the model"):
            sess.run(None, {"x": x}, ro)
        ok = self.write_adapter(os.path.join(self.tmp, "ok.onnx_adapter"),
                                {"lora_a": np.zeros((4, 1), np.float32), "lora_b": np.zeros((1, 4), np.float32)})
        twice = kiln.RunOptions()
        for _ in range(2):
            a = kiln.LoraAdapter()
            a.Load(ok)
            twice.add_active_adapter(a)
        with self.assertRaisesRegex(kiln.InvalidArgument, "'lora_a' is an input that the run already feeds"):
            sess.run(None, {"x": x}, twice)
        with self.assertRaisesRegex(kiln.InvalidArgument, "not loaded"):
            kiln.RunOptions().add_active_adapter(kiln.LoraAdapter())
        with self.assertRaisesRegex(kiln.NoSuchFile, "cannot open LoRA adapter"):
            kiln.LoraAdapter().Load(os.path.join(self.tmp, "absent.onnx_adapter"))
        bad = os.path.join(self.tmp, "bad.onnx_adapter")
        with open(bad, "wb") as f:
            f.write(b"\x08\x00\x00\x00ONNX" + bytes(32))
        with self.assertRaisesRegex(kiln.InvalidArgument, "bad.onnx_adapter': not an ONNX Runtime LoRA adapter"):
            kiln.AdapterFormat.read_adapter(bad)
        with open(ok, "rb") as f:
            data = f.read()
        with open(bad, "wb") as f:
            f.write(data[:len(data) // 2])
        with self.assertRaisesRegex(kiln.InvalidArgument, "corrupt"):
            kiln.AdapterFormat.read_adapter(bad)
        fmt = kiln.AdapterFormat()
        with self.assertRaisesRegex(TypeError, "must be an OrtValue"):
            fmt.set_parameters({"p": np.zeros(1, np.float32)})


if __name__ == "__main__":
    unittest.main()
