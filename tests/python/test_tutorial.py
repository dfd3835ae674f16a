"""The tutorial end to end with kiln: its SRCNN scripts run unchanged with `import kiln as onnxruntime`, and
the CLI's image input/output and inline values give the same pixels.

Environment: KILN_BIN, KILN_PYTHONPATH (build/python), KILN_TMP.
"""
import os
import shutil
import subprocess
import sys
import unittest

import cv2
import numpy as np
import torch

import kiln_test_util as u

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SRCNN = os.path.join(ROOT, "examples", "srcnn")
sys.path.insert(0, SRCNN)
from srcnn_model import StrangeSuperResolutionNet, load_checkpoint  # noqa: E402


def to_image(nchw):
    return np.transpose(np.clip(np.squeeze(nchw, 0), 0, 255), [1, 2, 0]).astype(np.uint8)


class Tutorial(u.KilnTestCase):
    def setUp(self):
        super().setUp()
        shutil.copy(os.path.join(SRCNN, "srcnn.pth"), self.tmp)
        shutil.copy(os.path.join(SRCNN, "data", "face.png"), self.tmp)

    def run_script(self, name):
        env = dict(os.environ, PYTHONPATH=os.path.abspath(os.environ["KILN_PYTHONPATH"]))
        p = subprocess.run(["/usr/bin/python3", os.path.join(SRCNN, "tutorial", name)], cwd=self.tmp, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
        self.assertEqual(p.returncode, 0, p.stderr.decode()[-3000:])

    def max_diff(self, a, b):
        ia, ib = cv2.imread(os.path.join(self.tmp, a)), cv2.imread(os.path.join(self.tmp, b))
        self.assertIsNotNone(ia, a)
        self.assertIsNotNone(ib, b)
        self.assertEqual(ia.shape, ib.shape)
        return int(np.abs(ia.astype(int) - ib.astype(int)).max())

    def test_srcnn_script_face_ort_equals_face_torch(self):
        self.run_script("srcnn_tutorial.py")
        self.assertLessEqual(self.max_diff("face_torch.png", "face_ort.png"), 1)
        # The CLI with the image in and out gives the same picture.
        self.kiln_ok("run", self.out("srcnn.onnx"), "--input", "input=" + self.out("face.png"),
                     "--output-image", "output=" + self.out("face_cli.png"))
        self.assertLessEqual(self.max_diff("face_ort.png", "face_cli.png"), 1)

    def test_srcnn3_dynamic_factor_matches_torch(self):
        self.run_script("srcnn3_tutorial.py")
        self.assertEqual(cv2.imread(self.out("face_ort_3.png")).shape, (1024, 1024, 3))
        sys.path.insert(0, os.environ["KILN_PYTHONPATH"])
        import kiln as onnxruntime
        model = load_checkpoint(StrangeSuperResolutionNet(), self.out("srcnn.pth"))
        img = np.expand_dims(np.transpose(cv2.imread(self.out("face.png")).astype(np.float32), [2, 0, 1]), 0)
        sess = onnxruntime.InferenceSession(self.out("srcnn3.onnx"))
        for factor in ([1, 1, 4, 4], [1, 1, 2, 3]):
            f = np.array(factor, dtype=np.float32)
            got = sess.run(None, {"input": img, "factor": f})[0]
            with torch.no_grad():
                want = model(torch.from_numpy(img), torch.from_numpy(f)).numpy()
            self.assertEqual(got.shape, want.shape, factor)
            self.assertTrue(np.allclose(got, want, rtol=1e-4, atol=1e-2), (factor, np.abs(got - want).max()))
            self.assertLessEqual(int(np.abs(to_image(got).astype(int) - to_image(want).astype(int)).max()), 1)
        # Inline factor on the CLI.
        res = self.kiln_ok("run", self.out("srcnn3.onnx"), "--input", "input=" + self.out("face.png"),
                           "--input", "factor=1,1,2,3", "--output-image", "output=" + self.out("face_2x3.png"))
        self.assertIn("float[1,3,512,768]", res.stdout)
        self.assertEqual(cv2.imread(self.out("face_2x3.png")).shape, (512, 768, 3))

    def test_scripts_run_on_engine_plans(self):
        # The seed's TensorRT step: each script again with the .kplan kiln build made of its .onnx in place of it.
        # (srcnn3_tutorial.py's torch output is at the export's factor 3, its session's at 4: compared with the
        # ONNX session only.)
        for script, model, out, torch_out in (("srcnn_tutorial.py", "srcnn", "face_ort.png", "face_torch.png"),
                                              ("srcnn3_tutorial.py", "srcnn3", "face_ort_3.png", None)):
            self.run_script(script)
            os.rename(self.out(out), self.out("onnx_" + out))
            self.kiln_ok("build", self.out(model + ".onnx"), "-O", self.out(model + ".kplan"), timeout=600)
            with open(os.path.join(SRCNN, "tutorial", script)) as f:
                text = f.read()
            call = 'InferenceSession("%s.onnx")' % model
            self.assertIn(call, text)
            patched = self.out("plan_" + script)
            with open(patched, "w") as f:
                f.write(text.replace(call, 'InferenceSession("%s.kplan")' % model))
            self.run_script(patched)
            if torch_out:
                self.assertLessEqual(self.max_diff(torch_out, out), 1, script)
            self.assertLessEqual(self.max_diff("onnx_" + out, out), 1, script)

    def test_cli_image_errors_name_the_file(self):
        model = os.path.join(SRCNN, "srcnn.onnx")
        res = self.kiln("run", model, "--input", "input=" + self.out("missing.png"), expect=2)
        self.assertIn("missing.png", res.stderr)
        with open(self.out("bad.png"), "wb") as f:
            f.write(b"not a png")
        res = self.kiln("run", model, "--input", "input=" + self.out("bad.png"), expect=1)
        self.assertIn("bad.png' is not a readable PNG", res.stderr)
        res = self.kiln("run", model, "--input", "input=" + self.out("face.png"), "--output-image",
                        "nosuch=" + self.out("x.png"), expect=2)
        self.assertIn("'nosuch' is not an output of the model", res.stderr)
        res = self.kiln("run", model, "--input", "input=1,2,x", expect=1)
        self.assertIn("inline numbers", res.stderr)
        # A 3x3 image where the model wants 256x256: the dimension at fault is named.
        cv2.imwrite(self.out("small.png"), np.zeros((3, 3, 3), np.uint8))
        res = self.kiln("run", model, "--input", "input=" + self.out("small.png"), expect=1)
        self.assertIn("dimension 2 must be 256", res.stderr)
        self.assertFalse(os.path.exists(self.out("x.png")))


if __name__ == "__main__":
    unittest.main()
