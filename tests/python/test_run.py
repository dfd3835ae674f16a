"""kiln run: .npy / .pb inputs in, .npy outputs out, one summary line per output; clear errors for bad feeds."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kiln_test_util as ku  # noqa: E402
from kiln_test_util import onnx, numpy_helper  # noqa: E402
import numpy as np  # noqa: E402


class RunTest(ku.KilnTestCase):
    def feeds(self, **arrays):
        args = []
        for name, arr in arrays.items():
            path = self.out(name + ".npy")
            np.save(path, arr)
            args += ["--input", "%s=%s" % (name, path)]
        return args

    def abx(self):
        rng = np.random.RandomState(0)
        return {k: rng.rand(10, 10).astype(np.float32) for k in ("a", "x", "b")}

    def test_linear_func_matches_numpy(self):
        v = self.abx()
        out_dir = self.out("outputs")
        res = self.kiln_ok("run", self.model("linear_func.onnx"), *self.feeds(**v), "--output-dir", out_dir)
        got = np.load(os.path.join(out_dir, "output.npy"))
        np.testing.assert_allclose(got, v["a"] * v["x"] + v["b"], rtol=1e-6)
        self.assertIn("output  float[10,10]", res.stdout)
        self.assertIn("mean", res.stdout)

    def test_every_opt_level_matches_the_reference_kernels(self):
        # SRCNN optimized at each level on the fast kernels, against the unoptimized graph on the reference ones.
        x = np.random.RandomState(1).rand(1, 3, 32, 32).astype(np.float32) * 255
        ref_dir = self.out("ref")
        self.kiln_ok("run", self.model("srcnn.onnx"), *self.feeds(input=x), "--opt-level", "disabled",
                     "--reference-kernels", "-d", ref_dir)
        ref = np.load(os.path.join(ref_dir, "output.npy"))
        for level in ("disabled", "basic", "extended", "all"):
            out_dir = self.out("out_" + level)
            self.kiln_ok("run", self.model("srcnn.onnx"), *self.feeds(input=x), "--opt-level", level,
                         "-d", out_dir)
            got = np.load(os.path.join(out_dir, "output.npy"))
            np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max(), err_msg=level)

    def test_pb_and_fortran_order_inputs(self):
        v = self.abx()
        args = self.feeds(a=v["a"], x=np.asfortranarray(v["x"]))
        pb = self.out("b.pb")
        with open(pb, "wb") as f:
            f.write(numpy_helper.from_array(v["b"]).SerializeToString())
        out_dir = self.out("o")
        self.kiln_ok("run", self.model("linear_func.onnx"), *args, "--input", "b=" + pb, "-d", out_dir)
        np.testing.assert_allclose(np.load(os.path.join(out_dir, "output.npy")), v["a"] * v["x"] + v["b"], rtol=1e-6)

    def test_bad_feeds_say_what_was_expected(self):
        v = self.abx()
        m = self.model("linear_func.onnx")
        res = self.kiln("run", m, *self.feeds(a=v["a"], x=v["x"]), expect=1)
        self.assertIn("input 'b'", res.output)
        self.assertIn("missing", res.output)
        res = self.kiln("run", m, *self.feeds(a=v["a"], x=v["x"], b=v["b"], zz=v["b"]), expect=1)
        self.assertIn("'zz' is not an input", res.output)
        res = self.kiln("run", m, *self.feeds(a=v["a"].astype(np.float64), x=v["x"], b=v["b"]), expect=1)
        self.assertIn("dtype double but the model expects float", res.output)
        res = self.kiln("run", m, *self.feeds(a=v["a"][0], x=v["x"], b=v["b"]), expect=1)
        self.assertIn("rank 2", res.output)
        res = self.kiln("run", m, *self.feeds(a=v["a"][:5], x=v["x"], b=v["b"]), expect=1)
        self.assertIn("dimension 0 must be 10", res.output)
        self.kiln("run", self.out("nope.onnx"), expect=2)
        res = self.kiln("run", m, "--input", "a=" + self.out("missing.npy"), expect=2)
        self.assertIn("missing.npy", res.output)
        bad = self.out("bad.npy")
        with open(bad, "wb") as f:
            f.write(b"not numpy")
        res = self.kiln("run", m, "--input", "a=" + bad, expect=1)
        self.assertIn("bad.npy", res.output)

    def test_output_names_become_file_names(self):
        # srcnn's intermediate values have '/' in their names; expose one and run.
        sub = self.out("abx_debug.onnx")
        self.kiln_ok("extract", self.model("linear_func.onnx"), "--add-outputs", "c", "-O", sub)
        out_dir = self.out("o2")
        self.kiln_ok("run", sub, *self.feeds(**self.abx()), "-d", out_dir)
        self.assertEqual(sorted(os.listdir(out_dir)), ["c.npy", "output.npy"])

    def dtype_model(self):
        from onnx import helper, TensorProto
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
        s = helper.make_tensor_value_info("s", TensorProto.STRING, [2])
        outs = [helper.make_tensor_value_info(n, t, None) for n, t in (
            ("f16", TensorProto.FLOAT16), ("bf16", TensorProto.BFLOAT16), ("sout", TensorProto.STRING))]
        outs.append(helper.make_tensor_sequence_value_info("seq", TensorProto.FLOAT, None))
        nodes = [helper.make_node("Cast", ["x"], ["f16"], to=TensorProto.FLOAT16),
                 helper.make_node("Cast", ["x"], ["bf16"], to=TensorProto.BFLOAT16),
                 helper.make_node("Identity", ["s"], ["sout"]),
                 helper.make_node("SequenceConstruct", ["x", "x"], ["seq"])]
        path = self.out("dtypes.onnx")
        onnx.save(helper.make_model(helper.make_graph(nodes, "g", [x, s], outs),
                                    opset_imports=[helper.make_opsetid("", 15)]), path)
        return path

    def test_every_output_dtype_is_written_and_read_back(self):
        m = self.dtype_model()
        x = np.array([[1.5, -2.25, 3], [4, 5e-3, 6e4]], np.float32)
        s = np.array(["héllo", "wörld ✓"], dtype=str)
        out = self.out("o")
        res = self.kiln_ok("run", m, *self.feeds(x=x, s=s), "-d", out)
        # float16 as <f2, strings as numpy str arrays, sequences item by item.
        f16 = np.load(os.path.join(out, "f16.npy"))
        self.assertEqual(f16.dtype, np.dtype("<f2"))
        np.testing.assert_array_equal(f16, x.astype(np.float16))
        sout = np.load(os.path.join(out, "sout.npy"))
        self.assertEqual(sout.dtype.kind, "U")
        self.assertEqual(sout.tolist(), s.tolist())
        np.testing.assert_array_equal(np.load(os.path.join(out, "seq_1.npy")), x)
        self.assertIn("seq  seq(tensor(float)) of 2", res.stdout)
        # bfloat16, which numpy lacks: float32 holding the exact values, with a notice naming the output.
        bf16 = np.load(os.path.join(out, "bf16.npy"))
        self.assertEqual(bf16.dtype, np.float32)
        # onnx 1.12's Cast to bfloat16 keeps the upper 16 bits (later opsets round to nearest even).
        rounded = (x.view(np.uint32) & 0xFFFF0000).view(np.float32)
        np.testing.assert_array_equal(bf16, rounded)
        self.assertIn("output 'bf16' is bfloat16", res.stderr)
        # --output-format pb writes every dtype exactly, as onnx reads it.
        pb = self.out("pb")
        self.kiln_ok("run", m, *self.feeds(x=x, s=s), "-d", pb, "--output-format", "pb")
        t = onnx.TensorProto()
        with open(os.path.join(pb, "bf16.pb"), "rb") as f:
            t.ParseFromString(f.read())
        self.assertEqual((t.name, t.data_type, list(t.dims)), ("bf16", onnx.TensorProto.BFLOAT16, [2, 3]))
        with open(os.path.join(pb, "sout.pb"), "rb") as f:
            t.ParseFromString(f.read())
        self.assertEqual(numpy_helper.to_array(t).astype(str).tolist(), s.tolist())
        # The same files go back in: the str .npy as a string input, bfloat16 from either form.
        from onnx import helper, TensorProto
        b = helper.make_tensor_value_info("b", TensorProto.BFLOAT16, [2, 3])
        back = self.out("bf.onnx")
        onnx.save(helper.make_model(helper.make_graph(
            [helper.make_node("Cast", ["b"], ["y"], to=TensorProto.FLOAT)], "g", [b],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]), opset_imports=[helper.make_opsetid("", 15)]),
            back)
        for src in (os.path.join(out, "bf16.npy"), os.path.join(pb, "bf16.pb")):
            d = self.out("back_" + os.path.basename(src))
            self.kiln_ok("run", back, "--input", "b=" + src, "-d", d)
            np.testing.assert_array_equal(np.load(os.path.join(d, "y.npy")), rounded)
        d = self.out("again")
        self.kiln_ok("run", m, "--input", "x=" + os.path.join(pb, "seq_0.pb"), "--input",
                     "s=" + os.path.join(out, "sout.npy"), "-d", d)
        self.assertEqual(np.load(os.path.join(d, "sout.npy")).tolist(), s.tolist())


if __name__ == "__main__":
    unittest.main()
