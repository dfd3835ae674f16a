"""The SDK's tasks (kiln/kiln_tasks.h, kiln.sdk, `kiln pack`, `kiln task`):
- the SRCNN restorer through C, C++, Python and the CLI gives the image `kiln run --output-image` gives (at most 1
  per pixel);
- a classifier (torchvision's MobileNetV2, random weights) gives the same top-5 as a reference pipeline written
  with cv2 and numpy (resize the short side to 256, center crop 224, RGB, mean/std), its model run by kiln's
  InferenceSession;
- a detector (a small YOLO-style head written in torch, random weights, NMS outside the graph) gives the boxes of a
  reference pipeline (cv2 letterbox, torchvision.ops.batched_nms), matched at IoU >= 0.99 with the same labels;
- a segmentor (torchvision's LR-ASPP, random weights) labels at least 99.9% of pixels as a cv2 + numpy pipeline does;
- a wrong pipeline.json or deploy.json field is an error naming the file, the transform and the field.

Environment: KILN_BIN, KILN_TMP, KILN_EXAMPLES, KILN_IMAGE_RESTORER (C), KILN_IMAGE_RESTORER_CPP (C++),
KILN_PYTHONPATH (when the module is built)."""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kiln_test_util as ku  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402

PY = "/usr/bin/python3"
EXAMPLES = os.environ["KILN_EXAMPLES"]
FACE = os.path.join(EXAMPLES, "srcnn", "data", "face.png")


def write_ppm(path, bgr):
    h, w = bgr.shape[:2]
    with open(path, "wb") as f:
        f.write(b"P6\n%d %d\n255\n" % (w, h))
        f.write(np.ascontiguousarray(bgr[:, :, ::-1]).tobytes())


def read_ppm(path):
    with open(path, "rb") as f:
        data = f.read()
    parts = data.split(maxsplit=4)
    w, h = int(parts[1]), int(parts[2])
    rgb = np.frombuffer(parts[4][:w * h * 3], np.uint8).reshape(h, w, 3)
    return rgb[:, :, ::-1]


def python_module(code, *args):
    env = dict(os.environ, PYTHONPATH=os.environ["KILN_PYTHONPATH"])
    return subprocess.run([PY, "-c", code] + list(args), capture_output=True, text=True, env=env)


class RestorerTest(ku.KilnTestCase):
    def test_every_interface_gives_kiln_runs_image(self):
        model = os.path.join(EXAMPLES, "srcnn", "srcnn.onnx")
        folder = self.out("srcnn_folder")
        r = self.kiln("pack", model, "--task", "restorer", "-O", folder, expect=0)
        self.assertEqual(sorted(os.listdir(folder)), ["deploy.json", "pipeline.json", "srcnn.onnx"])
        self.assertEqual(json.load(open(os.path.join(folder, "deploy.json")))["task"], "restorer")
        self.kiln("run", model, "--input", "input=" + FACE, "--output-image", "output=" + self.out("run.png"), expect=0)
        want = cv2.imread(self.out("run.png")).astype(int)

        results = {}
        os.makedirs(self.out("cli"))
        self.kiln("task", folder, FACE, "-O", self.out("cli"), expect=0)
        results["cli"] = cv2.imread(self.out("cli/face.png"))
        write_ppm(self.out("face.ppm"), cv2.imread(FACE))
        for name, env in (("c", "KILN_IMAGE_RESTORER"), ("cpp", "KILN_IMAGE_RESTORER_CPP")):
            p = subprocess.run([os.environ[env], folder, self.out("face.ppm"), self.out(name + ".ppm")],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            results[name] = read_ppm(self.out(name + ".ppm"))
        if os.environ.get("KILN_PYTHONPATH"):
            p = python_module("import sys, cv2; from kiln.sdk import Restorer; "
                              "cv2.imwrite(sys.argv[3], Restorer(sys.argv[1])(cv2.imread(sys.argv[2])))",
                              folder, FACE, self.out("py.png"))
            self.assertEqual(p.returncode, 0, p.stderr)
            results["python"] = cv2.imread(self.out("py.png"))
        for name, got in results.items():
            with self.subTest(interface=name):
                self.assertEqual(got.shape, want.shape)
                self.assertLessEqual(int(np.abs(got.astype(int) - want).max()), 1)

    def test_bad_use_is_named(self):
        model = os.path.join(EXAMPLES, "srcnn", "srcnn.onnx")
        folder = self.out("f")
        self.kiln("pack", model, "--task", "restorer", "-O", folder, expect=0)
        r = self.kiln("pack", model, "--task", "restorer", "-O", folder, expect=2)
        self.assertIn("exists", r.stderr)
        write_ppm(self.out("face.ppm"), cv2.imread(FACE))
        p = subprocess.run([os.environ["KILN_IMAGE_RESTORER"], self.out("nowhere"), self.out("face.ppm"),
                            self.out("x.ppm")], capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn("deploy.json: cannot open it", p.stderr)
        if os.environ.get("KILN_PYTHONPATH"):
            p = python_module("import sys\nfrom kiln.sdk import Classifier\ntry:\n Classifier(sys.argv[1])\n"
                              "except Exception as e:\n print(type(e).__name__, e)", folder)
            self.assertIn("InvalidArgument", p.stdout)
            self.assertIn("the folder holds a restorer, not a classifier", p.stdout)


class PipelineErrorsTest(ku.KilnTestCase):
    CASES = [
        ({"preprocess": [{"type": "Resize", "height": 0, "width": 4}, {"type": "ImageToTensor"}],
          "postprocess": {"type": "Restore"}},
         "preprocess[0] (Resize): 'height' must be an integer from 1 to 1048576, not 0"),
        ({"preprocess": [{"type": "Normalize", "mean": [1, 2, 3], "std": [1, 0, 1]}, {"type": "ImageToTensor"}],
          "postprocess": {"type": "Restore"}},
         "preprocess[0] (Normalize): 'std' must be a list of 3 positive numbers, not [1,0,1]"),
        ({"preprocess": [{"type": "Resize", "height": 4, "width": 4, "keep_ration": True},
                         {"type": "ImageToTensor"}], "postprocess": {"type": "Restore"}},
         "preprocess[0] (Resize): unknown field 'keep_ration'"),
        ({"preprocess": [{"type": "Blur"}, {"type": "ImageToTensor"}], "postprocess": {"type": "Restore"}},
         "preprocess[0]: unknown transform type 'Blur'"),
        ({"preprocess": [{"type": "LoadImage"}], "postprocess": {"type": "Restore"}},
         "preprocess must end with ImageToTensor"),
        ({"preprocess": [{"type": "ImageToTensor"}], "postprocess": {"type": "TopK"}},
         "postprocess: type 'TopK' is not a restorer's (expected 'Restore')"),
        ({"preprocess": [{"type": "Pad", "pad_val": 0}, {"type": "ImageToTensor"}], "postprocess": {"type": "Restore"}},
         "preprocess[0] (Pad): give 'size_divisor', or 'height' and 'width'"),
        ({"preprocess": [{"type": "Pad", "size_divisor": 8, "value": 1, "pad_val": 2}, {"type": "ImageToTensor"}],
          "postprocess": {"type": "Restore"}},
         "preprocess[0] (Pad): give 'value' or 'pad_val', not both"),
    ]

    def test_each_wrong_field_is_named(self):
        model = os.path.join(EXAMPLES, "srcnn", "srcnn.onnx")
        for i, (pipeline, message) in enumerate(self.CASES):
            with self.subTest(case=i):
                path = self.out("pipeline%d.json" % i)
                json.dump(pipeline, open(path, "w"))
                r = self.kiln("pack", model, "--task", "restorer", "--pipeline", path, "-O", self.out("f%d" % i))
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn(path + ": " + message, r.stderr)
                self.assertFalse(os.path.exists(self.out("f%d" % i)), "nothing is left behind")

    def test_deploy_json_fields(self):
        model = os.path.join(EXAMPLES, "srcnn", "srcnn.onnx")
        folder = self.out("f")
        self.kiln("pack", model, "--task", "restorer", "-O", folder, expect=0)
        deploy = os.path.join(folder, "deploy.json")
        good = json.load(open(deploy))
        for change, message in (({"output": "nope"}, "'output' is 'nope', which is not an output of srcnn.onnx"),
                                ({"version": 2}, "'version' must be 1, not 2"),
                                ({"task": "painter"}, "'task' is 'painter' (known: restorer, classifier, detector, segmentor)")):
            with self.subTest(change=change):
                json.dump(dict(good, **change), open(deploy, "w"))
                r = self.kiln("task", folder, FACE, "-O", self.tmp)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn(deploy + ": " + message, r.stderr)


class ClassifierTest(ku.KilnTestCase):
    def reference_top5(self, session, bgr):
        img = bgr.astype(np.float32)
        h, w = img.shape[:2]
        if h <= w:
            size = (int(256 * w / h), 256)
        else:
            size = (256, int(256 * h / w))
        img = cv2.resize(img, size, interpolation=cv2.INTER_LINEAR)
        h, w = img.shape[:2]
        top, left = int(round((h - 224) / 2.0)), int(round((w - 224) / 2.0))
        img = img[top:top + 224, left:left + 224, ::-1]
        img = (img - np.array([123.675, 116.28, 103.53], np.float32)) / np.array([58.395, 57.12, 57.375], np.float32)
        logits = session.run(None, {"input": np.ascontiguousarray(img.transpose(2, 0, 1)[None], np.float32)})[0][0]
        p = np.exp(logits - logits.max())
        p /= p.sum()
        order = np.argsort(-p, kind="stable")[:5]
        return [(int(i), float(p[i])) for i in order]

    def test_top5_equals_a_cv2_numpy_pipeline(self):
        if not os.environ.get("KILN_PYTHONPATH"):
            self.skipTest("the Python module is not built")
        model = self.out("mobilenet_v2.onnx")
        subprocess.run([PY, "-c", """
import sys, torch, torchvision
torch.manual_seed(0)
m = torchvision.models.mobilenet_v2().eval()
with torch.no_grad():
    torch.onnx.export(m, torch.randn(1, 3, 224, 224), sys.argv[1], opset_version=13, input_names=["input"],
                      output_names=["logits"])
""", model], check=True, capture_output=True)
        folder = self.out("classifier")
        self.kiln("pack", model, "--task", "classifier", "-O", folder, expect=0)
        rng = np.random.default_rng(0)
        images = {"face": cv2.imread(FACE),
                  "wide": cv2.resize(cv2.imread(FACE), (300, 200)),
                  "tall_noise": rng.integers(0, 256, (331, 257, 3), dtype=np.uint8)}
        paths = []
        for name, img in images.items():
            paths.append(self.out(name + ".png"))
            cv2.imwrite(paths[-1], img)
        code = """
import sys, cv2, json
sys.path.insert(0, sys.argv[1])
import kiln
from kiln.sdk import Classifier
c = Classifier(sys.argv[2])
print(json.dumps([c(cv2.imread(p)) for p in sys.argv[3:]]))
"""
        p = python_module(code, os.environ["KILN_PYTHONPATH"], folder, *paths)
        self.assertEqual(p.returncode, 0, p.stderr)
        got = json.loads(p.stdout)
        sys.path.insert(0, os.environ["KILN_PYTHONPATH"])
        import kiln
        session = kiln.InferenceSession(model)
        cli = self.kiln("task", folder, *paths, expect=0).stdout.splitlines()
        for i, (name, img) in enumerate(images.items()):
            with self.subTest(image=name):
                want = self.reference_top5(session, cv2.imread(paths[i]))
                self.assertEqual([c[0] for c in got[i]], [c[0] for c in want])
                for (_, s), (_, t) in zip(got[i], want):
                    self.assertAlmostEqual(s, t, delta=1e-4)
                self.assertEqual([int(x) for x in cli[i].split(":")[1].split()[::2]], [c[0] for c in want])


TINY_YOLO = """
import sys, torch
class TinyYolo(torch.nn.Module):
    # A YOLO-style head on a stride-8 backbone for 320x320 inputs: boxes [1, N, 4] (xyxy, input pixels) and
    # scores [1, N, classes] = sigmoid(objectness) * sigmoid(class), N = 3 anchors x 40 x 40.
    def __init__(self, classes=4):
        super().__init__()
        self.classes = classes
        self.backbone = torch.nn.Sequential(
            torch.nn.Conv2d(3, 16, 3, 2, 1), torch.nn.ReLU(), torch.nn.Conv2d(16, 32, 3, 2, 1), torch.nn.ReLU(),
            torch.nn.Conv2d(32, 32, 3, 2, 1), torch.nn.ReLU())
        self.head = torch.nn.Conv2d(32, 3 * (5 + classes), 1)
        gy, gx = torch.meshgrid(torch.arange(40.0), torch.arange(40.0), indexing="ij")
        self.register_buffer("grid", torch.stack([gx, gy], -1).reshape(1, 1, 40, 40, 2))
        self.register_buffer("anchors", torch.tensor([[10.0, 13.0], [30.0, 61.0], [62.0, 45.0]]).reshape(1, 3, 1, 1, 2))
    def forward(self, x):
        p = self.head(self.backbone(x)).reshape(1, 3, 5 + self.classes, 40, 40).permute(0, 1, 3, 4, 2)
        xy = (torch.sigmoid(p[..., 0:2]) + self.grid) * 8
        wh = torch.exp(p[..., 2:4].clamp(max=4)) * self.anchors
        boxes = torch.cat([xy - wh / 2, xy + wh / 2], -1).reshape(1, -1, 4)
        scores = (torch.sigmoid(p[..., 4:5]) * torch.sigmoid(p[..., 5:])).reshape(1, -1, self.classes)
        return boxes, scores
torch.manual_seed(0)
model = TinyYolo().eval()
with torch.no_grad():
    # Spread the head's outputs (PyTorch's default init keeps every score near 0.25) so that thresholds separate.
    model.head.weight.normal_(0, 2.0)
    model.head.bias.normal_(0, 0.2)
    torch.onnx.export(model, torch.rand(1, 3, 320, 320), sys.argv[1], opset_version=13,
                      input_names=["images"], output_names=["boxes", "scores"])
"""

LRASPP = """
import sys, torch, torchvision
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.m = torchvision.models.segmentation.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None,
                                                                            num_classes=21)
    def forward(self, x):
        return self.m(x)["out"]
torch.manual_seed(0)
net = Net()
# With untrained BatchNorm statistics the features vanish and every pixel gets one class: set the statistics from a
# few random batches first, so that the classes vary over the image.
for m in net.modules():
    if isinstance(m, torch.nn.BatchNorm2d):
        m.momentum = None
net.train()
with torch.no_grad():
    for _ in range(4):
        net(torch.rand(2, 3, 224, 224))
net.eval()
with torch.no_grad():
    torch.onnx.export(net, torch.rand(1, 3, 224, 224), sys.argv[1], opset_version=14,
                      input_names=["input"], output_names=["out"])
"""


def iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih
    return iw * ih / union if union > 0 else 0.0


def test_images():
    rng = np.random.default_rng(1)
    face = cv2.imread(FACE)
    return {"face": face, "wide": cv2.resize(face, (300, 200)), "tall_noise": rng.integers(0, 256, (331, 257, 3),
                                                                                         dtype=np.uint8)}


class DetectorTest(ku.KilnTestCase):
    PIPELINE = {"preprocess": [{"type": "LoadImage"}, {"type": "Resize", "height": 320, "width": 320, "keep_ratio": True},
                               {"type": "Pad", "height": 320, "width": 320, "value": 114},
                               {"type": "Normalize", "mean": [0, 0, 0], "std": [255, 255, 255], "to_rgb": True},
                               {"type": "ImageToTensor"}],
                "postprocess": {"type": "NMS", "score_thr": 0.55, "iou_thr": 0.5, "max_det": 50}}

    def reference(self, session, bgr):
        import torch
        import torchvision
        h, w = bgr.shape[:2]
        s = min(320 / h, 320 / w)
        nh, nw = int(h * s + 0.5), int(w * s + 0.5)
        img = np.full((320, 320, 3), 114, np.float32)
        img[:nh, :nw] = cv2.resize(bgr.astype(np.float32), (nw, nh), interpolation=cv2.INTER_LINEAR)
        x = (img[:, :, ::-1] / np.float32(255)).transpose(2, 0, 1)[None]
        boxes, scores = session.run(None, {"images": np.ascontiguousarray(x, np.float32)})
        boxes, scores = torch.from_numpy(boxes[0]), torch.from_numpy(scores[0])
        idx, cls = torch.nonzero(scores > 0.55, as_tuple=True)
        b, sc = boxes[idx], scores[idx, cls]
        keep = torchvision.ops.batched_nms(b, sc, cls, 0.5)[:50]
        b, sc, cls = b[keep].numpy(), sc[keep].numpy(), cls[keep].numpy()
        sx, sy = np.float32(nw) / np.float32(w), np.float32(nh) / np.float32(h)
        b = b / np.array([sx, sy, sx, sy], np.float32)
        b[:, 0::2] = b[:, 0::2].clip(0, w)
        b[:, 1::2] = b[:, 1::2].clip(0, h)
        return [(*map(float, bb), int(c), float(v)) for bb, c, v in zip(b, cls, sc)]

    def test_boxes_equal_a_torchvision_nms_pipeline(self):
        if not os.environ.get("KILN_PYTHONPATH"):
            self.skipTest("the Python module is not built")
        model = self.out("tiny_yolo.onnx")
        subprocess.run([PY, "-c", TINY_YOLO, model], check=True, capture_output=True)
        pipeline = self.out("pipeline.json")
        json.dump(self.PIPELINE, open(pipeline, "w"))
        folder = self.out("detector")
        self.kiln("pack", model, "--task", "detector", "--pipeline", pipeline, "-O", folder, expect=0)
        self.assertEqual(json.load(open(os.path.join(folder, "deploy.json")))["output"], ["boxes", "scores"])
        images = test_images()
        paths = []
        for name, img in images.items():
            paths.append(self.out(name + ".png"))
            cv2.imwrite(paths[-1], img)
        p = python_module("import sys, cv2, json\nfrom kiln.sdk import Detector\nd = Detector(sys.argv[1])\n"
                          "print(json.dumps([d(cv2.imread(p)) for p in sys.argv[2:]]))", folder, *paths)
        self.assertEqual(p.returncode, 0, p.stderr)
        got = json.loads(p.stdout)
        sys.path.insert(0, os.environ["KILN_PYTHONPATH"])
        import kiln
        session = kiln.InferenceSession(model)
        total = 0
        for i, name in enumerate(images):
            with self.subTest(image=name):
                want = self.reference(session, cv2.imread(paths[i]))
                self.assertEqual(len(got[i]), len(want))
                total += len(want)
                # Matched one to one (near-equal scores may come in either order): the same label, IoU >= 0.99.
                unused = list(range(len(got[i])))
                for r in want:
                    match = None
                    for k in unused:
                        g = got[i][k]
                        if g[4] == r[4] and abs(g[5] - r[5]) < 1e-4 and iou(g[:4], r[:4]) >= 0.99:
                            match = k
                            break
                    self.assertIsNotNone(match, "no detection matches %s" % (r,))
                    unused.remove(match)
        self.assertGreater(total, 10, "the thresholds must yield boxes for the comparison to mean anything")
        r = self.kiln("task", folder, paths[0], "-O", self.tmp, expect=0)
        self.assertIn("%d detections -> " % len(got[0]), r.stdout)
        self.assertTrue(os.path.exists(self.out("face.png")))


class SegmentorTest(ku.KilnTestCase):
    PIPELINE = {"preprocess": [{"type": "LoadImage"}, {"type": "Resize", "height": 224, "width": 224},
                               {"type": "Normalize", "mean": [123.675, 116.28, 103.53],
                                "std": [58.395, 57.12, 57.375], "to_rgb": True},
                               {"type": "ImageToTensor"}],
                "postprocess": {"type": "ArgMax"}}

    def reference(self, session, bgr):
        h, w = bgr.shape[:2]
        img = cv2.resize(bgr.astype(np.float32), (224, 224), interpolation=cv2.INTER_LINEAR)[:, :, ::-1]
        img = (img - np.array([123.675, 116.28, 103.53], np.float32)) / np.array([58.395, 57.12, 57.375], np.float32)
        out = session.run(None, {"input": np.ascontiguousarray(img.transpose(2, 0, 1)[None], np.float32)})[0][0]
        labels = out.argmax(0)
        my = np.clip(np.floor(np.arange(h, dtype=np.float32) * (np.float32(224) / np.float32(h))), 0, 223).astype(int)
        mx = np.clip(np.floor(np.arange(w, dtype=np.float32) * (np.float32(224) / np.float32(w))), 0, 223).astype(int)
        return labels[my[:, None], mx[None, :]]

    def test_pixels_equal_a_cv2_numpy_pipeline(self):
        if not os.environ.get("KILN_PYTHONPATH"):
            self.skipTest("the Python module is not built")
        model = self.out("lraspp.onnx")
        subprocess.run([PY, "-c", LRASPP, model], check=True, capture_output=True)
        pipeline = self.out("pipeline.json")
        json.dump(self.PIPELINE, open(pipeline, "w"))
        folder = self.out("segmentor")
        self.kiln("pack", model, "--task", "segmentor", "--pipeline", pipeline, "-O", folder, expect=0)
        images = test_images()
        paths = []
        for name, img in images.items():
            paths.append(self.out(name + ".png"))
            cv2.imwrite(paths[-1], img)
        code = ("import sys, cv2, numpy as np\nfrom kiln.sdk import Segmentor\ns = Segmentor(sys.argv[1])\n"
                "for i, p in enumerate(sys.argv[3:]): np.save('%s/mask%d.npy' % (sys.argv[2], i), s(cv2.imread(p)))")
        p = python_module(code, folder, self.tmp, *paths)
        self.assertEqual(p.returncode, 0, p.stderr)
        sys.path.insert(0, os.environ["KILN_PYTHONPATH"])
        import kiln
        session = kiln.InferenceSession(model)
        for i, name in enumerate(images):
            with self.subTest(image=name):
                got = np.load(self.out("mask%d.npy" % i))
                want = self.reference(session, cv2.imread(paths[i]))
                self.assertEqual(got.shape, want.shape)
                self.assertGreater(len(np.unique(want)), 1, "a mask of one class compares nothing")
                self.assertGreaterEqual(float((got == want).mean()), 0.999)
        r = self.kiln("task", folder, paths[1], "-O", self.tmp, expect=0)
        self.assertIn(" px)", r.stdout)
        self.assertEqual(cv2.imread(self.out("wide.png")).shape, (200, 300, 3))


if __name__ == "__main__":
    unittest.main()
