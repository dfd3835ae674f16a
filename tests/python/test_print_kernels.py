"""kiln optimize --print-kernels: every node of the written graph with the kernel that ran it (and the candidates'
times where they were timed; --no-tune times none); --reference chooses the reference kernels; dynamic dims come from --shape, and an unknown one is a usage error naming the
input."""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kiln_test_util as ku  # noqa: E402
from kiln_test_util import onnx  # noqa: E402


def kernel_lines(stdout):
    # The pass counts are indented; the node lines ("NODE  OP  KERNEL[  DETAIL]") are not.
    return [line.split("  ") for line in stdout.splitlines()
            if line and not line.startswith(" ") and not line.startswith("nodes ")]


class PrintKernelsTest(ku.KilnTestCase):
    def test_every_node_is_listed_with_its_kernel(self):
        for name in ("resnet18.onnx", "transformer.onnx"):
            target = self.out("opt_" + name)
            res = self.kiln_ok("optimize", self.model(name), "-O", target, "--print-kernels")
            written = onnx.load(target)
            rows = kernel_lines(res.stdout)
            self.assertEqual([r[0] for r in rows], [n.name or "-" for n in written.graph.node], name)
            for row in rows:
                self.assertIn(len(row), (3, 4, 5), row)
                self.assertNotEqual(row[2], "(not run)", row)
            # Every kernel is "ref" or a fast kernel's name (family.variant).
            self.assertTrue(all(r[2] == "ref" or "." in r[2] for r in rows), rows)

    def test_timed_choices_show_every_candidate_and_no_tune_times_none(self):
        # The transformer's MatMuls by constant weights have two fast kernels (the packed SGEMM and oneDNN's).
        res = self.kiln_ok("optimize", self.model("transformer.onnx"), "-O", self.out("tuned.onnx"), "--print-kernels")
        timed = [r for r in kernel_lines(res.stdout) if len(r) == 5]
        self.assertTrue(timed, res.stdout)
        for row in timed:
            self.assertTrue(row[4].startswith("(timed: "), row)
            self.assertIn(row[2] + " ", row[4], row)  # the chosen kernel is among the timed ones
        self.assertIn("  tuning: ", res.stdout)
        res = self.kiln_ok("optimize", self.model("transformer.onnx"), "-O", self.out("untuned.onnx"),
                           "--print-kernels", "--no-tune")
        self.assertFalse([r for r in kernel_lines(res.stdout) if len(r) == 5], res.stdout)
        self.assertNotIn("tuning: ", res.stdout)

    def test_disabled_kernels_are_never_chosen(self):
        # The first guess for the transformer's MatMuls by constant weights; disabled, the next candidate runs.
        args = ("optimize", self.model("transformer.onnx"), "-O", self.out("first.onnx"), "--print-kernels",
                "--no-tune")
        products = ("MatMul", "ai.kiln::FusedMatMul")
        first = {r[2] for r in kernel_lines(self.kiln_ok(*args).stdout) if r[1] in products}
        self.assertEqual(len(first), 1, first)
        kernel = first.pop()
        self.assertNotEqual(kernel, "ref")
        rows = kernel_lines(self.kiln_ok(*args, "--disable-kernel", kernel).stdout)
        chosen = {r[2] for r in rows if r[1] in products}
        self.assertTrue(chosen, rows)
        self.assertNotIn(kernel, chosen)

    def test_bf16_writes_the_channels_last_bfloat16_graph(self):
        # Where the CPU has bfloat16 instructions, a bf16 session's graph: convolutions on bfloat16 NHWC tensors.
        self.kiln_ok("bench", self.model("resnet18.onnx"), "--precision", "bf16", "--iterations", "1", "--warmup", "0",
                     "--json", self.out("bf16.json"))
        with open(self.out("bf16.json")) as f:
            bf16 = json.load(f)["precision"] == "bf16"
        target = self.out("bf16.onnx")
        res = self.kiln_ok("optimize", self.model("resnet18.onnx"), "-O", target, "--precision", "bf16",
                           "--print-kernels", "--no-tune")
        ops = [n.op_type for n in onnx.load(target).graph.node]
        rows = kernel_lines(res.stdout)
        if bf16:
            self.assertIn("NhwcConv", ops)
            self.assertNotIn("NchwcConv", ops)
            self.assertEqual(ops[0], "ToNhwc")
            self.assertEqual({r[2] for r in rows if r[1] == "ai.kiln::NhwcConv"}, {"nhwc_conv.dnnl"})
        else:
            self.assertNotIn("NhwcConv", ops)
            self.assertIn("NchwcConv", ops)

    def test_reference_lists_only_reference_kernels(self):
        res = self.kiln_ok("optimize", self.model("resnet18.onnx"), "-O", self.out("ref.onnx"), "--print-kernels",
                           "--reference")
        rows = kernel_lines(res.stdout)
        self.assertTrue(rows)
        self.assertEqual({r[2] for r in rows}, {"ref"})
        self.assertTrue(all(len(r) == 3 for r in rows), rows)

    def test_dynamic_dims_come_from_shape(self):
        res = self.kiln("optimize", self.model("dynamic_conv.onnx"), "-O", self.out("dyn.onnx"), "--print-kernels",
                        expect=2)
        self.assertIn("input 'in'", res.stderr)
        self.assertIn("--shape in=", res.stderr)
        res = self.kiln_ok("optimize", self.model("dynamic_conv.onnx"), "-O", self.out("dyn.onnx"),
                           "--print-kernels", "--shape", "in=1x3x16x16")
        self.assertEqual(len(kernel_lines(res.stdout)), len(onnx.load(self.out("dyn.onnx")).graph.node))


if __name__ == "__main__":
    unittest.main()
