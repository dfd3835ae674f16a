"""kiln build and engine plans (.kplan) through the CLI: profiles, equal results, and every kind of bad plan.

Environment: KILN_BIN, KILN_MODELS, KILN_TMP. (The Python module on plans: test_plan_python.py.)"""
import json
import os
import shutil
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kiln_test_util as ku  # noqa: E402
import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SRCNN_DYNAMIC = os.path.join(ROOT, "examples", "srcnn", "srcnn_dynamic.onnx")
PROFILE = "input:min=1x3x64x64,opt=1x3x128x128,max=1x3x1024x1024"


class PlanTest(ku.KilnTestCase):
    def build(self, model, plan, *args):
        res = self.kiln_ok("build", model, "-O", plan, "--threads", "2", *args, timeout=600)
        self.assertIn("wrote " + plan, res.stdout)
        return res

    def run_model(self, model, x, name, *args, expect=0):
        path = self.out(name + ".in.npy")
        np.save(path, x)
        out_dir = self.out(name)
        res = self.kiln("run", model, "--input", "input=" + path, "-d", out_dir, "--threads", "2", *args,
                        expect=expect, timeout=600)
        if expect != 0:
            return res
        return np.load(os.path.join(out_dir, "output.npy"))

    def image(self, h, w, seed=0):
        return (np.random.RandomState(seed).rand(1, 3, h, w) * 255).astype(np.float32)

    def test_dynamic_srcnn_runs_inside_its_profile_and_equals_the_onnx_session(self):
        # First guesses on both sides: the same kernels, so the outputs are equal bit for bit.
        plan = self.out("srcnn_dynamic.kplan")
        res = self.build(SRCNN_DYNAMIC, plan, "--profile", PROFILE, "--no-tune")
        self.assertIn("profiles    default", res.stdout)
        for h, w in ((64, 64), (120, 200), (300, 256)):
            x = self.image(h, w)
            from_plan = self.run_model(plan, x, "plan_%dx%d" % (h, w), "--no-tune")
            from_onnx = self.run_model(SRCNN_DYNAMIC, x, "onnx_%dx%d" % (h, w), "--no-tune")
            self.assertEqual(from_plan.shape, (1, 3, 3 * h, 3 * w))
            self.assertTrue(np.array_equal(from_plan, from_onnx), "%dx%d differs" % (h, w))
        # A shape outside the profile: refused, naming the input, the dimension, the value and the range.
        res = self.run_model(plan, self.image(32, 64), "outside", expect=1)
        self.assertIn("input 'input' dimension 2 is 32", res.stderr)
        self.assertIn("64 to 1024", res.stderr)

    def test_timed_plan_matches_the_onnx_session(self):
        plan = self.out("srcnn_tuned.kplan")
        self.build(SRCNN_DYNAMIC, plan, "--profile", PROFILE)
        x = self.image(128, 128, seed=1)
        from_plan = self.run_model(plan, x, "plan")
        from_onnx = self.run_model(SRCNN_DYNAMIC, x, "onnx")
        np.testing.assert_allclose(from_plan, from_onnx, rtol=1e-4, atol=1e-3)

    def test_show_lists_profiles_and_kernels(self):
        plan = self.out("srcnn_dynamic.kplan")
        self.build(SRCNN_DYNAMIC, plan, "--profile", "wide/" + PROFILE)
        text = self.kiln_ok("show", plan).stdout
        self.assertIn("Profiles\n  wide\n    input  min [1,3,64,64]  opt [1,3,128,128]  max [1,3,1024,1024]", text)
        self.assertIn("needs:", text)
        self.assertIn("Kernels", text)
        info = json.loads(self.kiln_ok("show", plan, "-f", "json").stdout)
        self.assertEqual(info["plan"]["format_version"], 1)
        self.assertEqual(info["plan"]["source"], "srcnn_dynamic.onnx")
        self.assertEqual(info["profiles"][0]["name"], "wide")
        self.assertEqual(info["profiles"][0]["inputs"][0]["max"], [1, 3, 1024, 1024])
        kernels = [n["kernels"][0] for n in info["nodes"]]
        self.assertTrue(kernels and all(k for k in kernels), kernels)
        self.assertTrue(any(k != "ref" for k in kernels), kernels)

    def test_portable_plan_needs_avx2_only_and_runs_under_an_avx2_cap(self):
        plan = self.out("portable.kplan")
        self.build(self.model("resnet18.onnx"), plan, "--portable")
        info = json.loads(self.kiln_ok("show", plan, "-f", "json").stdout)
        self.assertTrue(info["plan"]["portable"])
        self.assertIn(info["plan"]["isa"], ("avx2", "scalar"))  # scalar: a CPU without AVX2
        self.assertTrue(set(info["plan"]["cpu_features"]) <= {"avx2", "fma"}, info["plan"]["cpu_features"])
        os.environ["KILN_MAX_ISA"] = "avx2"
        try:
            self.kiln_ok("check", plan)
            x = np.random.RandomState(4).rand(*info["profiles"][0]["inputs"][0]["opt"]).astype(np.float32)
            path = self.out("x.npy")
            np.save(path, x)
            self.kiln_ok("run", plan, "--input", "%s=%s" % (info["inputs"][0]["name"], path))
        finally:
            del os.environ["KILN_MAX_ISA"]

    def test_build_refuses_a_dynamic_input_without_profile_and_bad_profiles(self):
        res = self.kiln("build", SRCNN_DYNAMIC, "-O", self.out("x.kplan"), expect=1)
        self.assertIn("input 'input' has the dynamic shape", res.stderr)
        self.assertIn("--profile input:min=", res.stderr)
        res = self.kiln("build", SRCNN_DYNAMIC, "-O", self.out("x.kplan"), "--profile",
                        "input:min=1x3x64x64,opt=1x3x32x32,max=1x3x128x128", expect=1)
        self.assertIn("min <= opt <= max", res.stderr)
        res = self.kiln("build", SRCNN_DYNAMIC, "-O", self.out("x.kplan"), "--profile",
                        "input:min=2x3x64x64,max=2x3x64x64,opt=2x3x64x64", "--profile",
                        "nosuch:min=1,max=2", expect=1)
        self.assertIn("names input 'nosuch'", res.stderr)
        self.assertFalse(os.path.exists(self.out("x.kplan")))

    def corrupt(self, plan, name, at, value=None):
        """A copy of `plan` with the byte at `at` flipped (or the bytes at `at` replaced by `value`)."""
        path = self.out(name)
        shutil.copy(plan, path)
        with open(path, "r+b") as f:
            f.seek(at)
            if value is None:
                b = f.read(1)
                f.seek(at)
                f.write(bytes([b[0] ^ 0x5A]))
            else:
                f.write(value)
        return path

    def test_bad_plans_get_clear_errors(self):
        plan = self.out("srcnn.kplan")
        self.build(self.model("srcnn.onnx"), plan)
        x = self.image(32, 32)
        good = self.run_model(plan, x, "good")
        size = os.path.getsize(plan)

        truncated = self.out("truncated.kplan")
        with open(plan, "rb") as f, open(truncated, "wb") as g:
            g.write(f.read(size // 2))
        for cmd in ("run", "check"):
            res = self.kiln(cmd, truncated, expect=1)
            self.assertIn("truncated", res.stderr + res.stdout)
        res = self.kiln("check", self.corrupt(plan, "header.kplan", 20), expect=1)
        self.assertIn("header is corrupt", res.stdout)
        res = self.kiln("run", self.corrupt(plan, "graph.kplan", 200), expect=1)
        self.assertIn("graph section is corrupt", res.stderr)
        res = self.kiln("run", self.corrupt(plan, "version.kplan", 8, struct.pack("<I", 7)), expect=1)
        self.assertIn("plan format version 7; this kiln reads version 1", res.stderr)

        # A flipped weight: a load does not read the weights (it stays fast), kiln check names the tensor.
        # The weights section starts with the model's tensors and ends with what the kernels prepared from them.
        with open(plan, "rb") as f:
            weights_at = struct.unpack("<Q", f.read(48)[32:40])[0]
        weights = self.corrupt(plan, "weights.kplan", weights_at + 8)
        self.run_model(weights, x, "flipped")
        res = self.kiln("check", weights, expect=1)
        self.assertRegex(res.stdout, r"tensor '[^']+' is corrupt")
        info = json.loads(self.kiln_ok("show", plan, "-f", "json").stdout)
        if info["plan"]["isa"] != "scalar":
            res = self.kiln("check", self.corrupt(plan, "prepared.kplan", size - 8), expect=1)
            self.assertRegex(res.stdout, r"the weights prepared from '[^']+' are corrupt")
        self.assertIn("valid plan", self.kiln_ok("check", plan).stdout)

        # A CPU feature the plan needs and this session may not use (simulated with KILN_MAX_ISA).
        if info["plan"]["isa"] != "scalar":
            os.environ["KILN_MAX_ISA"] = "scalar"
            try:
                res = self.kiln("run", plan, expect=1)
            finally:
                del os.environ["KILN_MAX_ISA"]
            self.assertIn("kernels were chosen for " + info["plan"]["isa"], res.stderr)
        else:
            self.assertEqual(info["plan"]["cpu_features"], [])

        # A plan where an ONNX model is expected, and a plan to kiln build.
        for args in (("extract", plan, "-O", self.out("e.onnx"), "--inputs", "input", "--outputs", "output"),
                     ("convert", plan, "-O", self.out("c.onnx")), ("optimize", plan, "-O", self.out("o.onnx"))):
            res = self.kiln(*args, expect=2)
            self.assertIn("is a kiln plan (.kplan), not an ONNX model", res.stderr)
        res = self.kiln("build", plan, "-O", self.out("again.kplan"), expect=1)
        self.assertIn("is a kiln plan already", res.stderr)
        # The results of the good plan did not change.
        self.assertTrue(np.array_equal(self.run_model(plan, x, "good2"), good))


if __name__ == "__main__":
    unittest.main()
