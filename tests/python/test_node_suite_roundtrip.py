"""Every model of the ONNX node test suite (KILN_NODE_TESTS/node/*/model.onnx) goes through
`kiln convert` and comes back equal to the original, as python-onnx reads both."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kiln_test_util as ku  # noqa: E402
from kiln_test_util import onnx  # noqa: E402


class NodeSuiteRoundTripTest(ku.KilnTestCase):
    def test_every_node_model_round_trips(self):
        root = os.environ.get("KILN_NODE_TESTS")
        self.assertTrue(root and os.path.isdir(os.path.join(root, "node")),
                        "KILN_NODE_TESTS must name the generated node test suite")
        cases = sorted(os.listdir(os.path.join(root, "node")))
        self.assertGreaterEqual(len(cases), 900)
        failed = []
        for case in cases:
            src = os.path.join(root, "node", case, "model.onnx")
            dst = self.out(case + ".onnx")
            res = ku.run_kiln(["convert", src, "-O", dst])
            self.assertNoCrash(res)
            if res.returncode != 0:
                failed.append("%s: exit %d: %s" % (case, res.returncode, res.stderr.strip()))
                continue
            try:
                ku.assert_models_equal(self, onnx.load(src), onnx.load(dst), case)
            except AssertionError as e:
                failed.append("%s: %s" % (case, str(e)[:300]))
            os.remove(dst)
        self.assertEqual(failed, [], "%d of %d node models did not round-trip:\n%s"
                         % (len(failed), len(cases), "\n".join(failed)))
        print("%d node models round-tripped through kiln convert" % len(cases))


if __name__ == "__main__":
    unittest.main()
