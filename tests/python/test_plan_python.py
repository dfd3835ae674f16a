"""The Python module on engine plans: InferenceSession takes a .kplan path or its bytes.

Environment: KILN_BIN, KILN_MODELS, KILN_TMP, KILN_PYTHONPATH (the built module)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kiln_test_util as ku  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.environ["KILN_PYTHONPATH"])
import kiln  # noqa: E402


class PlanPythonTest(ku.KilnTestCase):
    def build(self, model, plan, *args):
        self.kiln_ok("build", model, "-O", plan, "--threads", "2", *args, timeout=600)

    def image(self, h, w, seed=0):
        return (np.random.RandomState(seed).rand(1, 3, h, w) * 255).astype(np.float32)

    def test_python_inference_session_takes_a_plan(self):
        plan = self.out("srcnn.kplan")
        self.build(self.model("srcnn.onnx"), plan, "--no-tune")
        x = self.image(32, 32, seed=3)
        opts = kiln.SessionOptions()
        opts.intra_op_num_threads = 2
        from_plan = kiln.InferenceSession(plan, opts)
        self.assertEqual([i.name for i in from_plan.get_inputs()], ["input"])
        (y_plan,) = from_plan.run(None, {"input": x})
        with open(plan, "rb") as f:
            (y_bytes,) = kiln.InferenceSession(f.read(), opts).run(None, {"input": x})
        np.testing.assert_array_equal(y_plan, y_bytes)
        (y_onnx,) = kiln.InferenceSession(self.model("srcnn.onnx"), opts).run(None, {"input": x})
        np.testing.assert_allclose(y_plan, y_onnx, rtol=1e-4, atol=1e-3)
        bad = kiln.SessionOptions()
        bad.add_free_dimension_override_by_name("batch", 1)
        with self.assertRaisesRegex(ValueError, "do not apply to a kiln plan"):
            kiln.InferenceSession(plan, bad)



if __name__ == "__main__":
    unittest.main()
