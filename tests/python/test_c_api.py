"""libkiln.so and the C API from outside: it exports exactly the functions kiln_c.h declares under the SONAME
libkiln.so.<major>, and the C99 example (examples/c_api/run_model.c) reproduces the reference outputs (torch's)
of the test models and reports bad input with the file or name at fault.

Environment (besides kiln_test_util's): KILN_LIBKILN (libkiln.so), KILN_C_EXAMPLE (run_model_c), KILN_C_HEADER."""
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kiln_test_util as ku  # noqa: E402
from kiln_test_util import onnx  # noqa: E402
import numpy as np  # noqa: E402

LIB = os.environ["KILN_LIBKILN"]
EXAMPLE = os.environ["KILN_C_EXAMPLE"]
HEADER = os.environ["KILN_C_HEADER"]


def declared_functions():
    text = open(HEADER).read() + open(os.path.join(os.path.dirname(HEADER), "kiln_tasks.h")).read()
    return set(re.findall(r"KILN_API\s+[^;{]*?\b(kiln_\w+)\s*\(", text))


class ExportsTest(unittest.TestCase):
    def test_exports_are_exactly_the_header(self):
        nm = subprocess.run(["nm", "-D", "--defined-only", LIB], capture_output=True, text=True, check=True).stdout
        exported = set()
        for line in nm.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] in "TtWwDdBbRr" and parts[2] != "KILN_0":
                exported.add(parts[2].split("@")[0])
        declared = declared_functions()
        self.assertGreater(len(declared), 30)
        self.assertEqual(exported - declared, set(), "exported but not in kiln_c.h")
        self.assertEqual(declared - exported, set(), "declared in kiln_c.h but not exported")

    def test_soname_is_versioned(self):
        major = re.search(r"#define KILN_VERSION_MAJOR (\d+)", open(HEADER).read()).group(1)
        dyn = subprocess.run(["readelf", "-d", LIB], capture_output=True, text=True, check=True).stdout
        self.assertIn("Library soname: [libkiln.so.%s]" % major, dyn)


class ExampleTest(ku.KilnTestCase):
    def run_example(self, *args):
        return subprocess.run([EXAMPLE] + list(args), capture_output=True, text=True, timeout=300)

    def test_reference_outputs(self):
        for name, tol in (("srcnn", 1e-3), ("mobilenet_v2", 1e-3), ("resnet18", 1e-3), ("transformer", 1e-3)):
            with self.subTest(model=name):
                path = ku.model_path(name + ".onnx")
                model = onnx.load(path)
                inits = {i.name for i in model.graph.initializer}
                inputs = [i.name for i in model.graph.input if i.name not in inits]
                self.assertEqual(len(inputs), 1)
                out_dir = os.path.join(self.tmp, name)
                os.makedirs(out_dir)
                ref_in = os.path.join(os.path.dirname(path), name + ".ref0.in.npy")
                r = self.run_example(path, "%s=%s" % (inputs[0], ref_in), "-o", out_dir, "-t", "2")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("input  %s: dtype 1" % inputs[0], r.stdout)
                got = np.load(os.path.join(out_dir, model.graph.output[0].name + ".npy"))
                want = np.load(os.path.join(os.path.dirname(path), name + ".ref0.out.npy"))
                self.assertEqual(got.shape, want.shape)
                self.assertLess(float(np.abs(got - want).max()), tol * max(1.0, float(np.abs(want).max())))

    def test_symbolic_dims_are_printed_by_name(self):
        r = self.run_example(ku.model_path("dynamic_conv.onnx"), "-o", self.tmp)
        self.assertIn("input  in: dtype 1, shape batchx3xhxw", r.stdout)
        # Without its input the run fails, naming it.
        self.assertEqual(r.returncode, 1)
        self.assertIn("input 'in'", r.stderr)

    def test_bad_input_names_the_fault(self):
        x = os.path.join(self.tmp, "x.npy")
        np.save(x, np.zeros((1, 3, 8, 8), np.int64))
        r = self.run_example(ku.model_path("dynamic_conv.onnx"), "in=" + x, "-o", self.tmp)
        self.assertEqual(r.returncode, 1)
        self.assertIn("'in'", r.stderr)
        self.assertIn("code 1", r.stderr)
        r = self.run_example(ku.model_path("dynamic_conv.onnx"), "nope=" + x, "-o", self.tmp)
        self.assertIn("'nope' is not an input of the model (inputs: 'in')", r.stderr)
        r = self.run_example(os.path.join(self.tmp, "missing.onnx"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("missing.onnx", r.stderr)
        self.assertIn("code 3", r.stderr)


if __name__ == "__main__":
    unittest.main()
