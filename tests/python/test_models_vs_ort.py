"""Real models exported by torch 1.13 (tests/models/gen_models.py) run through `kiln run`: outputs within
rtol 1e-4 / atol 1e-4 of torch's and of ONNX Runtime 1.30's (npm onnxruntime-node, run here by node)."""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kiln_test_util as ku  # noqa: E402
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ORT_RUN = os.path.join(os.path.dirname(HERE), "peer", "ort_run.js")

# model stem -> input name; every refK sample in KILN_MODELS is run (dynamic_conv has two shapes).
MODELS = {"srcnn": "input", "resnet18": "input", "mobilenet_v2": "input", "squeezenet": "input",
          "transformer": "input", "dynamic_conv": "in"}


class ModelsVsOrtTest(ku.KilnTestCase):
    def check(self, stem):
        env = ku.ort_env()
        model = self.model(stem + ".onnx")
        k = 0
        while os.path.exists(os.path.join(ku.models_dir(), "%s.ref%d.in.npy" % (stem, k))):
            x = self.model("%s.ref%d.in.npy" % (stem, k))
            want = np.load(self.model("%s.ref%d.out.npy" % (stem, k)))
            kdir, odir = self.out("%s_kiln%d" % (stem, k)), self.out("%s_ort%d" % (stem, k))
            self.kiln_ok("run", model, "--input", "%s=%s" % (MODELS[stem], x), "--output-dir", kdir)
            res = subprocess.run(["node", ORT_RUN, model, odir, "%s=%s" % (MODELS[stem], x)], env=env,
                                 capture_output=True, text=True, timeout=300)
            self.assertEqual(res.returncode, 0, res.stderr)
            name = os.listdir(odir)[0]
            got, ort = np.load(os.path.join(kdir, name)), np.load(os.path.join(odir, name))
            self.assertEqual(got.shape, want.shape)
            np.testing.assert_allclose(got, ort, rtol=1e-4, atol=1e-4, err_msg="%s sample %d vs ORT" % (stem, k))
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg="%s sample %d vs torch" % (stem, k))
            k += 1
        self.assertGreater(k, 0, "no reference samples for " + stem)


for _stem in MODELS:
    setattr(ModelsVsOrtTest, "test_" + _stem, lambda self, s=_stem: self.check(s))

if __name__ == "__main__":
    unittest.main()
