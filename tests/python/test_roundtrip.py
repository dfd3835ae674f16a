"""kiln convert: load into kiln's IR and save back; the result must be a
valid ONNX model equal to the original."""

import os
import shutil
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kiln_test_util as ku  # noqa: E402
from kiln_test_util import onnx, numpy_helper, TensorProto  # noqa: E402


class RoundTripTest(ku.KilnTestCase):

    def roundtrip(self, name):
        src = self.model(name)
        dst = self.out("rt_" + name)
        res = self.kiln_ok("convert", src, "-O", dst)
        self.assertTrue(os.path.isfile(dst),
                        "kiln convert exited 0 but wrote no %s\n%s"
                        % (dst, res.describe()))
        orig = self.load(src)
        got = self.load(dst)
        # compare before running the checker on the path form
        ku.assert_models_equal(self, orig, got, "round-tripped " + name)
        self.onnx_check(dst, "kiln convert output for " + name)
        # the in-memory form too (external data already loaded)
        self.onnx_check(got, "kiln convert output for %s (in memory)" % name)


def _add_roundtrip_test(name):
    def test(self):
        self.roundtrip(name)
    test.__doc__ = "kiln convert round trip of %s" % name
    attr = "test_roundtrip_" + name[:-len(".onnx")]
    setattr(RoundTripTest, attr, test)


for _m in ku.GOOD_MODELS:
    _add_roundtrip_test(_m)


class HugeModelTest(ku.KilnTestCase):
    def test_over_2gib_needs_external_data(self):
        """huge_external.onnx holds 2 GiB + 64 bytes of weights (a sparse file): saving it inline cannot
        work (protobuf's 2 GiB limit) and must fail at once with a clear message, writing nothing."""
        out = os.path.join(self.tmp, "huge_inline.onnx")
        res = self.kiln("convert", self.model("huge_external.onnx"), "-O", out, expect=1)
        self.assertIn("2 GiB", res.output, res.describe())
        self.assertIn("external data", res.output, res.describe())
        self.assertFalse(os.path.exists(out))
        self.assertEqual([f for f in os.listdir(self.tmp) if f.startswith("huge_inline")], [])


class RoundTripAllModelsTest(ku.KilnTestCase):
    def test_every_good_model_is_covered(self):
        """Any extra good model in KILN_MODELS gets a round trip too."""
        d = ku.models_dir()
        names = sorted(f for f in os.listdir(d)
                       if f.endswith(".onnx") and not f.startswith(("bad_", "huge_")))
        missing = [m for m in ku.GOOD_MODELS if m not in names]
        self.assertEqual(missing, [], "models missing from %s" % d)
        extra = [m for m in names if m not in ku.GOOD_MODELS]
        for name in extra:
            with self.subTest(model=name):
                RoundTripTest.roundtrip(self, name)

    def test_roundtrip_twice_is_stable(self):
        """convert(convert(m)) == convert(m) for a model with everything."""
        for name in ("attrs.onnx", "if_loop.onnx", "with_function.onnx"):
            with self.subTest(model=name):
                a = self.out("a_" + name)
                b = self.out("b_" + name)
                self.kiln_ok("convert", self.model(name), "-O", a)
                self.kiln_ok("convert", a, "-O", b)
                ku.assert_models_equal(self, self.load(a), self.load(b),
                                       "second round trip of " + name)


class ExternalDataTest(ku.KilnTestCase):
    THRESHOLD = 1024

    def convert_external(self, name, extra_args=()):
        src = self.model(name)
        dst = self.out("ext_" + name)
        res = self.kiln_ok("convert", src, "-O", dst, "--external-data",
                           *extra_args)
        self.assertTrue(os.path.isfile(dst), "no %s\n%s"
                        % (dst, res.describe()))
        return src, dst

    def test_external_data_resnet18(self):
        src, dst = self.convert_external(
            "resnet18.onnx", ("--size-threshold", str(self.THRESHOLD)))
        data = dst + ".data"
        self.assertTrue(os.path.isfile(data),
                        "--external-data did not create %s (dir has: %s)"
                        % (data, os.listdir(self.tmp)))
        src_size = os.path.getsize(src)
        dst_size = os.path.getsize(dst)
        self.assertLess(dst_size, min(256 * 1024, src_size // 10),
                        "model file with external data is not small: %d "
                        "bytes (original %d)" % (dst_size, src_size))

        orig = self.load(src)
        # raw view: which tensors went where
        raw = onnx.load(dst, load_external_data=False)
        big_bytes = 0
        for t in raw.graph.initializer:
            o = next(x for x in orig.graph.initializer if x.name == t.name)
            nbytes = numpy_helper.to_array(o).nbytes
            if nbytes >= self.THRESHOLD:
                big_bytes += nbytes
                self.assertEqual(t.data_location, TensorProto.EXTERNAL,
                                 "tensor %r (%d bytes >= threshold) is not "
                                 "external" % (t.name, nbytes))
                ext = {e.key: e.value for e in t.external_data}
                self.assertEqual(ext.get("location"),
                                 os.path.basename(dst) + ".data",
                                 "tensor %r: external data location must be "
                                 "the relative file name" % t.name)
                self.assertFalse(t.HasField("raw_data"),
                                 "external tensor %r also has raw_data"
                                 % t.name)
            else:
                self.assertNotEqual(t.data_location, TensorProto.EXTERNAL,
                                    "tensor %r (%d bytes < threshold) was "
                                    "moved to external data" % (t.name, nbytes))
        self.assertGreater(big_bytes, 0)
        self.assertGreaterEqual(os.path.getsize(data), big_bytes)

        got = self.load(dst)
        ku.assert_models_equal(self, orig, got, "external-data round trip")
        self.onnx_check(dst, "external-data output")

        # the location must be relative: moving both files keeps it loadable
        moved = os.path.join(self.tmp, "moved")
        os.makedirs(moved)
        shutil.move(dst, os.path.join(moved, os.path.basename(dst)))
        shutil.move(data, os.path.join(moved, os.path.basename(data)))
        got2 = self.load(os.path.join(moved, os.path.basename(dst)))
        for ta, tb in zip(orig.graph.initializer, got2.graph.initializer):
            ku.assert_tensors_equal(self, ta, tb, "moved external data")

    def test_external_data_default_threshold(self):
        src, dst = self.convert_external("srcnn.onnx")
        self.assertTrue(os.path.isfile(dst + ".data"))
        self.assertLess(os.path.getsize(dst), os.path.getsize(src) // 2)
        ku.assert_models_equal(self, self.load(src), self.load(dst),
                               "srcnn external-data round trip")
        self.onnx_check(dst)

    def test_external_data_input_model(self):
        """A model that already uses external data, re-saved both ways."""
        src = self.model("external.onnx")
        inline = self.out("inline.onnx")
        self.kiln_ok("convert", src, "-O", inline)
        ku.assert_models_equal(self, self.load(src), self.load(inline),
                               "external.onnx converted")
        src2, ext = self.convert_external("external.onnx",
                                          ("--size-threshold", "1024"))
        self.assertTrue(os.path.isfile(ext + ".data"))
        ku.assert_models_equal(self, self.load(src), self.load(ext),
                               "external.onnx converted with external data")
        self.onnx_check(ext)

    def test_external_data_small_threshold_attrs(self):
        """All-dtype initializers (float16, int64, string) with threshold 1:
        string tensors cannot live in external data, everything else may."""
        src, dst = self.convert_external("attrs.onnx",
                                         ("--size-threshold", "1"))
        got = self.load(dst)
        ku.assert_models_equal(self, self.load(src), got,
                               "attrs.onnx with external data")
        # onnx 1.12's shape inference cannot read an external Reshape 'shape'
        # input from the path form, so: plain path check + full in-memory one.
        try:
            onnx.checker.check_model(dst)
        except Exception as e:
            self.fail("onnx.checker rejected %s: %s" % (dst, e))
        self.onnx_check(got, dst + " (loaded)")


if __name__ == "__main__":
    unittest.main()
