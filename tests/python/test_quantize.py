"""kiln quantize and reduced precision on models trained here on real data (issue 18's acceptance):

- a small CNN trained with torch on scikit-learn's bundled digits (8x8, 20% held out): INT8 static top-1 within one
  point of fp32 with each calibration method, the QDQ model passes python-onnx's checker and ONNX Runtime 1.30 gets
  the same top-1 from it; BF16 logits within 1e-2 of fp32 (relative to the largest);
- the trained SRCNN (examples/srcnn, x3), calibrated on low-resolution crops of its training images: INT8 PSNR on
  the held-out images (python3-skimage's astronaut and chelsea, whole) within 0.3 dB of fp32 with each method;
- a BERT-like encoder (12 layers, d_model 64) quantized dynamically: output cosine similarity to fp32 at least 0.99;
- the digits classifier stored in float16: on the fast kernels (*.half_as_float), ONNX Runtime's top-1 and logits;
- a torch 1.13 quantization-aware-training export (FakeQuantize, opset 13): on kiln's int8 kernels, within one
  quantization step of ONNX Runtime;
- the CLI's errors.
"""
import os
import subprocess
import sys
import unittest

import numpy as np
import onnx
import onnx.numpy_helper
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kiln_test_util as ku  # noqa: E402

ORT_RUN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "peer", "ort_run.js")
SRCNN_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples",
                         "srcnn")


class Digits(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(1, 16, 3, padding=1)
        self.c2 = torch.nn.Conv2d(16, 32, 3, padding=1)
        self.c3 = torch.nn.Conv2d(32, 32, 3, padding=1)
        self.fc = torch.nn.Linear(32 * 4 * 4, 10)

    def forward(self, x):
        x = torch.relu(self.c1(x))
        x = torch.max_pool2d(torch.relu(self.c2(x)), 2)
        x = torch.relu(self.c3(x))
        return self.fc(torch.flatten(x, 1))


def digits_data():
    from sklearn.datasets import load_digits
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None, :, :]
    y = d.target.astype(np.int64)
    order = np.random.RandomState(0).permutation(len(x))
    x, y = x[order], y[order]
    n_test = len(x) // 5
    return x[n_test:], y[n_test:], x[:n_test], y[:n_test]


class QuantizeTest(ku.KilnTestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = ku.tmp_root()
        cls.x_train, cls.y_train, cls.x_test, cls.y_test = digits_data()
        torch.manual_seed(0)
        model = Digits()
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        xt, yt = torch.from_numpy(cls.x_train), torch.from_numpy(cls.y_train)
        for _ in range(25):
            perm = torch.randperm(len(xt))
            for i in range(0, len(xt), 64):
                idx = perm[i:i + 64]
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
                opt.step()
        model.eval()
        cls.onnx_path = os.path.join(cls.work, "digits_%d.onnx" % os.getpid())
        with torch.no_grad():
            torch.onnx.export(model, torch.from_numpy(cls.x_test[:1]), cls.onnx_path, opset_version=13,
                              input_names=["input"], output_names=["logits"], dynamic_axes={"input": {0: "batch"}})
        cls.calib = os.path.join(cls.work, "digits_calib_%d" % os.getpid())
        os.makedirs(cls.calib, exist_ok=True)
        for b in range(10):  # 100 training images, batches of 10
            np.save(os.path.join(cls.calib, "batch%02d.npy" % b), cls.x_train[b * 10:(b + 1) * 10])
        cls.test_npy = os.path.join(cls.work, "digits_test_%d.npy" % os.getpid())
        np.save(cls.test_npy, cls.x_test)

    @classmethod
    def tearDownClass(cls):
        import shutil
        for p in (cls.onnx_path, cls.test_npy):
            if os.path.exists(p):
                os.remove(p)
        shutil.rmtree(cls.calib, True)

    def logits(self, model, *args):
        out = self.out("out_%d" % len(os.listdir(self.tmp)))
        self.kiln_ok("run", model, "--input", "input=" + self.test_npy, "-d", out, *args, timeout=600)
        return np.load(os.path.join(out, "logits.npy"))

    def accuracy(self, logits):
        return 100.0 * float(np.mean(logits.argmax(1) == self.y_test))

    def test_int8_static_top1_within_one_point_with_each_method(self):
        fp32 = self.accuracy(self.logits(self.onnx_path))
        self.assertGreater(fp32, 90.0, "the classifier did not train")
        for method in ("minmax", "entropy", "percentile"):
            with self.subTest(method=method):
                q = self.out("digits_%s.onnx" % method)
                res = self.kiln_ok("quantize", self.onnx_path, "-O", q, "--calib", self.calib, "--method", method,
                                   "--per-channel")
                self.assertIn("3 nodes quantized", res.stdout)
                self.onnx_check(q)
                ops = [n.op_type for n in onnx.load(q).graph.node]
                self.assertIn("QuantizeLinear", ops)
                self.assertIn("DequantizeLinear", ops)
                int8 = self.accuracy(self.logits(q))
                print("digits top-1: fp32 %.2f%%, int8 %s %.2f%%" % (fp32, method, int8), file=sys.stderr)
                self.assertLessEqual(abs(int8 - fp32), 1.0, "%s: int8 %.2f%% against fp32 %.2f%%" % (method, int8, fp32))

    def test_ort_runs_the_qdq_model_with_the_same_top1(self):
        q = self.out("digits_int8.onnx")
        self.kiln_ok("quantize", self.onnx_path, "-O", q, "--calib", self.calib, "--per-channel")
        env = ku.ort_env()
        odir = self.out("ort")
        subprocess.run(["node", ORT_RUN, q, odir, "input=" + self.test_npy], env=env, check=True,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
        ort = np.load(os.path.join(odir, "logits.npy"))
        kiln = self.logits(q)
        print("digits int8 top-1: kiln %.2f%%, ORT %.2f%%; largest logit difference %.4f" % (
            self.accuracy(kiln), self.accuracy(ort), float(np.abs(ort - kiln).max())), file=sys.stderr)
        self.assertEqual(self.accuracy(ort), self.accuracy(kiln))
        # Within a few quantization steps of the last quantized tensor (the float Gemm after it spreads them).
        self.assertLess(float(np.abs(ort - kiln).max()), 0.05 * float(np.abs(ort).max()))

    def test_float16_model_runs_on_fast_kernels_as_ort_does(self):
        # The classifier stored in float16 (weights, inputs, outputs): kiln runs its convolutions, Relu, pooling and
        # Gemm as float32 on the fast kernels (*.half_as_float) and gets ONNX Runtime's logits and top-1.
        m = onnx.load(self.onnx_path)
        for init in m.graph.initializer:
            a = onnx.numpy_helper.to_array(init)
            if a.dtype == np.float32:
                init.CopyFrom(onnx.numpy_helper.from_array(a.astype(np.float16), init.name))
        for v in list(m.graph.input) + list(m.graph.output) + list(m.graph.value_info):
            if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT:
                v.type.tensor_type.elem_type = onnx.TensorProto.FLOAT16
        half = self.out("digits_fp16.onnx")
        onnx.save(m, half)
        self.onnx_check(half)
        x16 = self.out("digits_test_fp16.npy")
        np.save(x16, self.x_test.astype(np.float16))
        kout, oout = self.out("fp16_kiln"), self.out("fp16_ort")
        self.kiln_ok("run", half, "--input", "input=" + x16, "-d", kout, timeout=600)
        subprocess.run(["node", ORT_RUN, half, oout, "input=" + x16], env=ku.ort_env(), check=True,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
        k = np.load(os.path.join(kout, "logits.npy"))
        o = np.load(os.path.join(oout, "logits.npy"))
        self.assertEqual(k.dtype, np.float16)
        diff = float(np.abs(k.astype(np.float32) - o.astype(np.float32)).max())
        print("digits float16: top-1 kiln %.2f%%, ORT %.2f%%; largest logit difference %.4f (largest logit %.2f)" % (
            self.accuracy(k), self.accuracy(o), diff, float(np.abs(o).max())), file=sys.stderr)
        self.assertEqual(self.accuracy(k), self.accuracy(o))
        self.assertLess(diff, 4e-3 * float(np.abs(o.astype(np.float32)).max()))
        res = self.kiln_ok("optimize", half, "-O", self.out("digits_fp16_opt.onnx"), "--print-kernels", "--shape",
                           "input=1x1x8x8")
        kernels = {line.split()[2] for line in res.stdout.splitlines() if line.startswith("/")}
        with open("/proc/cpuinfo") as f:
            flags = next((line.split() for line in f if line.startswith("flags")), [])
        if "avx2" in flags and "f16c" in flags and os.environ.get("KILN_MAX_ISA") != "scalar":
            self.assertIn("conv.half_as_float", kernels)
            self.assertIn("gemm.half_as_float", kernels)

    def test_bf16_logits_within_1e2_of_fp32(self):
        fp32 = self.logits(self.onnx_path)
        # The first guesses (the bf16 kernels): timing may keep fp32 kernels for layers this small.
        bf16 = self.logits(self.onnx_path, "--precision", "bf16", "--no-tune")
        rel = float(np.abs(bf16 - fp32).max()) / float(np.abs(fp32).max())
        print("digits bf16 logits: largest difference %.2e of the largest logit" % rel, file=sys.stderr)
        self.assertLessEqual(rel, 1e-2)
        self.assertEqual(self.accuracy(bf16), self.accuracy(fp32))

    def test_report_lists_every_quantized_tensor(self):
        q = self.out("digits_report.onnx")
        res = self.kiln_ok("quantize", self.onnx_path, "-O", q, "--calib", self.calib, "--report")
        lines = [l for l in res.stdout.splitlines() if l.strip().startswith(("input", "/"))]
        self.assertGreaterEqual(len(lines), 4, res.stdout)
        for line in lines:
            err = float(line.split()[-1])
            self.assertGreaterEqual(err, 0.0)
            self.assertLess(err, 0.2, line)

    def test_srcnn_int8_psnr_within_03_db_of_fp32(self):
        sys.path.insert(0, SRCNN_DIR)
        import train_srcnn as sr  # the training script's data: its image lists, the 3x shrink, PSNR
        model = os.path.join(SRCNN_DIR, "srcnn_dynamic.onnx")
        calib = self.out("srcnn_calib")
        os.makedirs(calib)
        for name in sr.TRAIN[:8]:  # 96x96 low-resolution crops (288x288 pixels before the shrink), one per image
            lr = sr.shrink(sr.crop_to_scale(sr.load_bgr(name)))[:96, :96]
            np.save(os.path.join(calib, name + ".npy"), lr.transpose(2, 0, 1)[None].astype(np.float32))
        held_out = []
        for name in sr.HELD_OUT:
            hr = sr.crop_to_scale(sr.load_bgr(name))
            npy = self.out(name + ".npy")
            np.save(npy, sr.shrink(hr).transpose(2, 0, 1)[None].astype(np.float32))
            held_out.append((name, hr, npy))

        def psnrs(m):
            out = []
            for name, hr, npy in held_out:
                d = self.out("%s_%s" % (os.path.basename(m), name))
                self.kiln_ok("run", m, "--input", "input=" + npy, "-d", d, timeout=600)
                y = np.load(os.path.join(d, "output.npy"))[0].transpose(1, 2, 0)
                out.append(sr.psnr(np.clip(y, 0, 255).round().astype(np.uint8), hr))
            return out

        fp32 = psnrs(model)
        for method in ("minmax", "entropy", "percentile"):
            with self.subTest(method=method):
                q = self.out("srcnn_%s.onnx" % method)
                res = self.kiln_ok("quantize", model, "-O", q, "--calib", calib, "--method", method)
                self.assertIn("3 nodes quantized", res.stdout)
                for (name, _, _), f, i in zip(held_out, fp32, psnrs(q)):
                    print("SRCNN %s: fp32 %.3f dB, int8 %s %.3f dB (%+.3f)" % (name, f, method, i, i - f),
                          file=sys.stderr)
                    self.assertGreaterEqual(i - f, -0.3, "%s, %s: int8 %.3f dB against fp32 %.3f dB" % (
                        method, name, i, f))

    def test_dynamic_quantization_of_an_encoder(self):
        torch.manual_seed(0)
        layer = torch.nn.TransformerEncoderLayer(d_model=64, nhead=4, dim_feedforward=128, batch_first=True)
        enc = torch.nn.TransformerEncoder(layer, num_layers=12).eval()  # BERT-base depth, small width
        x = torch.randn(1, 16, 64)
        path = self.out("encoder.onnx")
        with torch.set_grad_enabled(True):  # torch 1.13's fast path (eval + no_grad) cannot be exported
            torch.onnx.export(enc, x, path, opset_version=13, input_names=["input"], output_names=["output"])
        q = self.out("encoder.dyn.onnx")
        res = self.kiln_ok("quantize", path, "-O", q, "--dynamic")
        self.assertIn("(dynamic)", res.stdout)
        self.onnx_check(q)
        self.assertIn("MatMulInteger", [n.op_type for n in onnx.load(q).graph.node])
        npy = self.out("x.npy")
        np.save(npy, x.numpy())
        outs = []
        for m in (path, q):
            d = self.out(os.path.basename(m) + ".out")
            self.kiln_ok("run", m, "--input", "input=" + npy, "-d", d)
            outs.append(np.load(os.path.join(d, "output.npy")).ravel())
        cos = float(np.dot(outs[0], outs[1]) / (np.linalg.norm(outs[0]) * np.linalg.norm(outs[1])))
        print("encoder dynamic int8: cosine similarity to fp32 %.5f" % cos, file=sys.stderr)
        self.assertGreaterEqual(cos, 0.99)

    def test_torch_qat_export_runs_on_int8_kernels_and_matches_ort(self):
        # torch 1.13 quantization-aware training (FakeQuantize modules, per-channel symmetric weights), exported at
        # opset 13 as QuantizeLinear/DequantizeLinear pairs: kiln fuses them into QLinearConv and matches ORT 1.30
        # within one step of the output's scale.
        import torch.ao.quantization as tq

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.quant, self.dequant = tq.QuantStub(), tq.DeQuantStub()
                self.c1 = torch.nn.Conv2d(3, 16, 3, padding=1)
                self.r1 = torch.nn.ReLU()
                self.c2 = torch.nn.Conv2d(16, 8, 3, padding=1)

            def forward(self, x):
                return self.dequant(self.c2(self.r1(self.c1(self.quant(x)))))

        torch.manual_seed(0)
        net = Net().train()
        net.qconfig = tq.QConfig(
            activation=tq.FakeQuantize.with_args(observer=tq.MovingAverageMinMaxObserver, quant_min=0, quant_max=255,
                                                 dtype=torch.quint8),
            weight=tq.FakeQuantize.with_args(observer=tq.MovingAveragePerChannelMinMaxObserver, quant_min=-128,
                                             quant_max=127, dtype=torch.qint8, qscheme=torch.per_channel_symmetric))
        tq.fuse_modules_qat(net, [["c1", "r1"]], inplace=True)
        tq.prepare_qat(net, inplace=True)
        opt = torch.optim.SGD(net.parameters(), lr=0.01)
        for _ in range(20):
            x = torch.rand(4, 3, 16, 16)
            loss = (net(x) - x.mean()).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        net.apply(tq.disable_observer)
        path = self.out("qat.onnx")
        x = torch.rand(2, 3, 16, 16)
        torch.onnx.export(net, x, path, opset_version=13, input_names=["input"], output_names=["output"])
        model = onnx.load(path)
        self.assertIn("QuantizeLinear", [n.op_type for n in model.graph.node])
        res = self.kiln_ok("optimize", path, "-O", self.out("qat.opt.onnx"), "--print-kernels")
        self.assertEqual(res.stdout.count("QLinearConv"), 2, res.stdout)
        npy = self.out("x.npy")
        np.save(npy, x.numpy())
        kout, oout = self.out("kiln"), self.out("ort")
        self.kiln_ok("run", path, "--input", "input=" + npy, "-d", kout)
        subprocess.run(["node", ORT_RUN, path, oout, "input=" + npy], env=ku.ort_env(), check=True,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
        k = np.load(os.path.join(kout, "output.npy"))
        o = np.load(os.path.join(oout, "output.npy"))
        inits = {i.name: i for i in model.graph.initializer}
        last = [n for n in model.graph.node if n.op_type == "DequantizeLinear"][-1]
        step = float(onnx.numpy_helper.to_array(inits[last.input[1]]).ravel()[0]) if last.input[1] in inits else None
        self.assertIsNotNone(step, "the output's scale is not an initializer")
        diff = float(np.abs(k - o).max())
        print("torch QAT export: largest difference to ORT %.3g (output step %.3g)" % (diff, step), file=sys.stderr)
        self.assertLessEqual(diff, step * 1.001)

    def test_image_calibration_through_a_pipeline_json(self):
        # Calibration images (the training digits as 8-bit grayscale PNGs) put through the preprocessing of a
        # pipeline.json, the SDK's (LoadImage grayscale, Normalize to the 0-1 the model was trained on,
        # ImageToTensor): the same top-1 bar as .npy calibration.
        import cv2
        images = self.out("digit_images")
        os.makedirs(images)
        for i in range(100):
            cv2.imwrite(os.path.join(images, "%03d.png" % i), np.round(self.x_train[i, 0] * 255).astype(np.uint8))
        pipeline = self.out("pipeline.json")
        with open(pipeline, "w") as f:
            f.write('{"preprocess": [{"type": "LoadImage", "color_type": "grayscale"}, '
                    '{"type": "Normalize", "mean": [0], "std": [255]}, {"type": "ImageToTensor"}]}')
        q = self.out("digits_images.onnx")
        res = self.kiln_ok("quantize", self.onnx_path, "-O", q, "--calib", images, "--preprocess", pipeline,
                           "--per-channel")
        self.assertIn("100 calibration batches", res.stdout)
        fp32, int8 = self.accuracy(self.logits(self.onnx_path)), self.accuracy(self.logits(q))
        print("digits top-1 calibrated on PNGs through pipeline.json: fp32 %.2f%%, int8 %.2f%%" % (fp32, int8),
              file=sys.stderr)
        self.assertLessEqual(abs(int8 - fp32), 1.0)
        # The whole preprocessing comes from the file: options beside it are refused, as are wrong fields.
        res = self.kiln("quantize", self.onnx_path, "-O", self.out("x.onnx"), "--calib", images, "--preprocess",
                        pipeline, "--resize", "8x8", expect=2)
        self.assertIn("--preprocess gives the whole preprocessing", res.stderr)
        bad = self.out("bad_pipeline.json")
        with open(bad, "w") as f:
            f.write('{"preprocess": [{"type": "Normalize", "mean": [0], "std": [0]}, {"type": "ImageToTensor"}]}')
        res = self.kiln("quantize", self.onnx_path, "-O", self.out("x.onnx"), "--calib", images, "--preprocess", bad,
                        expect=2)
        self.assertIn("bad_pipeline.json: preprocess[0] (Normalize): 'std'", res.stderr)
        res = self.kiln("quantize", self.onnx_path, "-O", self.out("x.onnx"), "--calib", images, "--preprocess",
                        self.out("missing.json"), expect=2)
        self.assertIn("missing.json: cannot open it", res.stderr)
        # An NHWC layout for this NCHW model: the batches no longer fit its input, and the error says so.
        res = self.kiln("quantize", self.onnx_path, "-O", self.out("x.onnx"), "--calib", images, "--preprocess",
                        pipeline, "--layout", "nhwc", expect=1)
        self.assertIn("input 'input' has shape [1,8,8,1]", res.stderr)
        self.assertFalse(os.path.exists(self.out("x.onnx")))

    def test_errors_name_what_is_wrong(self):
        res = self.kiln("quantize", self.onnx_path, "-O", self.out("x.onnx"), expect=2)
        self.assertIn("--calib", res.stderr)
        res = self.kiln("quantize", self.onnx_path, "-O", self.out("x.onnx"), "--calib", self.out("nothing"),
                        expect=2)
        self.assertIn("does not exist", res.stderr)
        empty = self.out("empty")
        os.makedirs(empty)
        res = self.kiln("quantize", self.onnx_path, "-O", self.out("x.onnx"), "--calib", empty, expect=1)
        self.assertIn("no .npy, .png or .jpg files", res.stderr)
        res = self.kiln("quantize", self.onnx_path, "-O", self.out("x.onnx"), "--calib", self.calib, "--resize", "8",
                        expect=2)
        self.assertIn("HxW", res.stderr)
        self.assertFalse(os.path.exists(self.out("x.onnx")))


if __name__ == "__main__":
    unittest.main()
