"""kiln check / kiln show."""

import json
import os
import sys
import unittest
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kiln_test_util as ku  # noqa: E402
from kiln_test_util import onnx, numpy_helper  # noqa: E402


def has_subgraphs(model):
    return any(a.HasField("g") or len(a.graphs)
               for n in model.graph.node for a in n.attribute)


def all_nodes(graph):
    for n in graph.node:
        yield n
        for a in n.attribute:
            if a.HasField("g"):
                yield from all_nodes(a.g)
            for g in a.graphs:
                yield from all_nodes(g)


# ---------------------------------------------------------------------------
# kiln check
# ---------------------------------------------------------------------------

class CheckTest(ku.KilnTestCase):

    def test_check_good_models(self):
        for name in ku.GOOD_MODELS:
            with self.subTest(model=name):
                res = self.kiln("check", self.model(name), expect=0)
                self.assertIn("valid", res.stdout.lower(),
                              "kiln check should print a line containing "
                              "'valid'\n" + res.describe())
                self.assertNotIn("invalid", res.output.lower(),
                                 res.describe())

    def test_check_bad_io_files(self):
        for name in ku.BAD_IO_MODELS:
            with self.subTest(model=name):
                res = self.kiln("check", self.model(name), expect=2)
                if name == "bad_missing_external.onnx":
                    needle = "missing.data"
                else:
                    needle = name
                self.assertIn(needle, res.output,
                              "error message should name %r\n%s"
                              % (needle, res.describe()))

    def test_check_warns_about_ops_kiln_cannot_run(self):
        from onnx import helper, TensorProto
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
        node = helper.make_node("MyOp", ["x"], ["y"], name="custom_node", domain="com.example")
        m = helper.make_model(helper.make_graph([node], "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.example", 1)])
        path = self.out("custom.onnx")
        onnx.save(m, path)
        res = self.kiln("check", path, expect=0)
        self.assertIn("warning: node 'custom_node' (com.example::MyOp): kiln's CPU runtime has no kernel for "
                      "com.example::MyOp at opset 1", res.stdout, res.describe())
        self.assertIn("valid", res.stdout)

    def test_check_cycle(self):
        res = self.kiln("check", self.model("bad_cycle.onnx"), expect=1)
        self.assertIn("cycle", res.output.lower(),
                      "message should mention the cycle\n" + res.describe())

    def test_check_unknown_op(self):
        res = self.kiln("check", self.model("bad_unknown_op.onnx"), expect=1)
        lines = [l for l in res.output.splitlines()
                 if "mystery" in l and "FooBarOp" in l]
        self.assertTrue(lines, "expected a line naming node 'mystery' and op "
                        "'FooBarOp'\n" + res.describe())

    def test_check_nonexistent_path(self):
        p = os.path.join(self.tmp, "does_not_exist_123.onnx")
        res = self.kiln("check", p, expect=2)
        self.assertIn("does_not_exist_123.onnx", res.output, res.describe())

    def test_check_directory(self):
        res = self.kiln("check", self.tmp, expect=2)
        self.assertIn(os.path.basename(self.tmp), res.output, res.describe())

    def test_usage_errors(self):
        self.kiln("check", expect=2)
        self.kiln("no-such-subcommand", expect=2)
        self.kiln(expect=2)

    def test_other_commands_on_bad_files_do_not_crash(self):
        """Not only check: every command must fail cleanly on broken input."""
        for name in ku.BAD_IO_MODELS:
            p = self.model(name)
            with self.subTest(model=name, cmd="show"):
                self.kiln("show", p, expect=(1, 2))
            with self.subTest(model=name, cmd="show json"):
                self.kiln("show", p, "--format", "json", expect=(1, 2))
            with self.subTest(model=name, cmd="convert"):
                self.kiln("convert", p, "-O", self.out("c.onnx"),
                          expect=(1, 2))
            with self.subTest(model=name, cmd="extract"):
                self.kiln("extract", p, "--add-outputs", "x", "-O",
                          self.out("e.onnx"), expect=(1, 2))
        for name in ku.BAD_INVALID_MODELS:
            p = self.model(name)
            for fmt in ("summary", "text", "json"):
                with self.subTest(model=name, cmd="show " + fmt):
                    self.kiln("show", p, "--format", fmt, expect=(0, 1, 2))


# ---------------------------------------------------------------------------
# kiln show
# ---------------------------------------------------------------------------

class ShowTextTest(ku.KilnTestCase):
    """--format text must equal python's print(model)."""

    def assert_text(self, name):
        p = self.model(name)
        res = self.kiln("show", p, "--format", "text", expect=0)
        expected = str(onnx.load(p))
        got = res.stdout
        if got.rstrip() != expected.rstrip():
            self.fail("kiln show --format text differs from print(model) for "
                      "%s:\n%s" % (name, ku.proto_diff(expected, got,
                                                       "print(model)",
                                                       "kiln show")))

    def test_text_linear_func(self):
        self.assert_text("linear_func.onnx")

    def test_text_dynamic_conv(self):
        self.assert_text("dynamic_conv.onnx")

    def test_text_if_loop(self):
        self.assert_text("if_loop.onnx")

    def test_text_with_function(self):
        self.assert_text("with_function.onnx")

    def test_text_attrs(self):
        self.assert_text("attrs.onnx")

    def test_text_srcnn(self):
        """raw_data bytes escaped like protobuf's text format."""
        self.assert_text("srcnn.onnx")


def expected_json(model):
    g = model.graph
    inits = list(g.initializer)

    def vi(v):
        return {"name": v.name,
                "dtype": ku.dtype_name(v.type.tensor_type.elem_type),
                "shape": ku.shape_list(v)}
    return {
        "producer_name": model.producer_name,
        "producer_version": model.producer_version,
        "ir_version": model.ir_version,
        "opset_import": [{"domain": o.domain, "version": o.version}
                         for o in model.opset_import],
        "inputs": [vi(v) for v in g.input],
        "outputs": [vi(v) for v in g.output],
        "op_counts": dict(Counter(qualified_op(n) for n in g.node)),
        "node_count": len(g.node),
        "parameter_count": int(sum(numpy_helper.to_array(t).size
                                   for t in inits)),
        "parameter_bytes": (int(sum(numpy_helper.to_array(t).nbytes
                                    for t in inits))
                            if all(t.data_type != onnx.TensorProto.STRING
                                   for t in inits) else None),
        "nodes": [{"name": n.name, "op_type": n.op_type, "domain": n.domain,
                   "inputs": list(n.input), "outputs": list(n.output)}
                  for n in g.node],
    }


def qualified_op(node):
    """kiln counts ops of other domains as 'domain::op' (ai.onnx ones plain)."""
    if node.domain in ("", "ai.onnx"):
        return node.op_type
    return node.domain + "::" + node.op_type


def only_expected_keys(got, exp):
    """kiln's JSON may carry more fields than the test derives from onnx;
    compare the ones both have (recursively through lists of objects)."""
    if isinstance(got, dict) and isinstance(exp, dict):
        return {k: only_expected_keys(got[k], exp[k]) if k in got else None
                for k in exp}
    if isinstance(got, list) and isinstance(exp, list) and len(got) == len(exp):
        return [only_expected_keys(g, e) for g, e in zip(got, exp)]
    return got


class ShowJsonTest(ku.KilnTestCase):
    JSON_MODELS = ["srcnn.onnx", "resnet18.onnx", "transformer.onnx",
                   "dynamic_conv.onnx", "model_dynamic_23.onnx",
                   "model_static.onnx", "linear_func.onnx", "attrs.onnx",
                   "with_function.onnx", "if_loop.onnx", "external.onnx",
                   "squeezenet.onnx", "mobilenet_v2.onnx"]

    def show_json(self, path):
        res = self.kiln("show", path, "--format", "json", expect=0)
        try:
            return json.loads(res.stdout)
        except ValueError as e:
            self.fail("kiln show --format json printed invalid JSON (%s)\n%s"
                      % (e, res.describe()))

    def check_json(self, name):
        p = self.model(name)
        m = onnx.load(p)
        exp = expected_json(m)
        got = self.show_json(p)
        self.assertIsInstance(got, dict)
        for key in ("producer_name", "producer_version", "ir_version",
                    "opset_import", "inputs", "outputs", "node_count",
                    "parameter_count", "nodes"):
            self.assertIn(key, got, "json lacks key %r" % key)
            self.assertEqual(only_expected_keys(got[key], exp[key]), exp[key],
                             "%s: json[%r]" % (name, key))
        self.assertIn("op_counts", got)
        self.assertIn("parameter_bytes", got)
        if has_subgraphs(m):
            # top-level only, or including nested graphs: both acceptable
            everything = dict(Counter(qualified_op(n) for n in all_nodes(m.graph)))
            self.assertIn(got["op_counts"], (exp["op_counts"], everything),
                          "%s: op_counts" % name)
        else:
            self.assertEqual(got["op_counts"], exp["op_counts"],
                             "%s: op_counts" % name)
        if exp["parameter_bytes"] is not None:
            self.assertEqual(got["parameter_bytes"], exp["parameter_bytes"],
                             "%s: parameter_bytes" % name)

    def test_json_models(self):
        for name in self.JSON_MODELS:
            with self.subTest(model=name):
                self.check_json(name)

    def test_json_symbolic_dims(self):
        got = self.show_json(self.model("dynamic_conv.onnx"))
        self.assertEqual([{k: v[k] for k in ("name", "dtype", "shape")}
                          for v in got["inputs"]],
                         [{"name": "in", "dtype": "float",
                           "shape": ["batch", 3, "h", "w"]}])
        self.assertEqual(got["outputs"][0]["name"], "out")
        self.assertEqual(got["outputs"][0]["shape"], ["batch", 3, "h", "w"])
        got = self.show_json(self.model("model_dynamic_0.onnx"))
        self.assertIsInstance(got["inputs"][0]["shape"][0], str)
        self.assertEqual(got["inputs"][0]["shape"][1:], [3, 10, 10])
        got = self.show_json(self.model("model_static.onnx"))
        self.assertEqual(got["inputs"][0]["shape"], [1, 3, 10, 10])

    def test_json_types_are_json_types(self):
        got = self.show_json(self.model("resnet18.onnx"))
        for key in ("ir_version", "node_count", "parameter_count",
                    "parameter_bytes"):
            self.assertIsInstance(got[key], int, key)
            self.assertNotIsInstance(got[key], bool, key)
        for o in got["opset_import"]:
            self.assertIsInstance(o["version"], int)
            self.assertIsInstance(o["domain"], str)


class ShowSummaryTest(ku.KilnTestCase):
    SUMMARY_MODELS = ["srcnn.onnx", "resnet18.onnx", "transformer.onnx",
                      "dynamic_conv.onnx", "linear_func.onnx", "attrs.onnx",
                      "if_loop.onnx", "with_function.onnx"]

    def test_summary(self):
        for name in self.SUMMARY_MODELS:
            with self.subTest(model=name):
                p = self.model(name)
                m = onnx.load(p)
                res = self.kiln("show", p, expect=0)
                out = res.stdout
                if m.producer_name:
                    self.assertIn(m.producer_name, out, res.describe())
                for v in m.graph.input:
                    self.assertIn(v.name, out, "input %r not mentioned\n%s"
                                  % (v.name, res.describe()))
                for op in sorted({n.op_type for n in m.graph.node}):
                    self.assertIn(op, out, "op type %r not mentioned\n%s"
                                  % (op, res.describe()))

    def test_summary_is_default_format(self):
        p = self.model("srcnn.onnx")
        a = self.kiln("show", p, expect=0)
        b = self.kiln("show", p, "--format", "summary", expect=0)
        self.assertEqual(a.stdout, b.stdout)

    def test_bad_format(self):
        self.kiln("show", self.model("srcnn.onnx"), "--format", "yaml",
                  expect=2)


if __name__ == "__main__":
    unittest.main()
