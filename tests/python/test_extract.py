"""kiln extract must produce what onnx.utils.extract_model produces."""

import os
import random
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kiln_test_util as ku  # noqa: E402
from kiln_test_util import onnx  # noqa: E402
import onnx.utils  # noqa: E402

CUTS_PER_MODEL = 3
MIN_CUTS = 10
MIN_MODELS = 3


def _graph_facts(model):
    g = model.graph
    producer = {}
    for i, n in enumerate(g.node):
        for o in n.output:
            if o:
                producer[o] = i
    inits = {t.name for t in g.initializer}
    graph_inputs = [v.name for v in g.input if v.name not in inits]
    return g, producer, inits, graph_inputs


def _cut_ok(model, facts, inputs, outputs):
    """Cheap pre-check that (inputs, outputs) is a closed cut: every value
    the outputs depend on comes from a cut input, an initializer or a node
    inside the cut, and every cut input is actually used."""
    g, producer, inits, graph_inputs = facts
    if set(inputs) & set(outputs):
        return False
    seen, used, stack, nodes = set(), set(), list(outputs), set()
    while stack:
        name = stack.pop()
        if name in seen or name == "":
            continue
        seen.add(name)
        if name in inputs:
            used.add(name)
            continue
        if name in inits:
            continue
        if name in graph_inputs or name not in producer:
            return False
        idx = producer[name]
        nodes.add(idx)
        stack.extend(g.node[idx].input)
    return used == set(inputs) and len(nodes) >= 1


def pick_cuts(model_name, model_path, n_cuts, seed, tmpdir):
    """Pick n_cuts (inputs, outputs) cuts of a model, validated by running
    onnx.utils.extract_model on each; deterministic for a given seed."""
    model = onnx.load(model_path)
    facts = _graph_facts(model)
    g, producer, inits, graph_inputs = facts
    cand = [i for i, n in enumerate(g.node)
            if n.op_type not in ("Constant", "Identity") and n.output
            and n.output[0] not in [o.name for o in g.output]]
    rng = random.Random(seed)
    cuts, tried = [], set()
    attempts = 0
    while len(cuts) < n_cuts and attempts < 3000:
        attempts += 1
        j = rng.choice(cand[len(cand) // 4:])
        outs = [g.node[j].output[0]]
        kind = rng.random()
        if kind < 0.2:
            ins = list(graph_inputs)
        else:
            back = rng.randint(1, 25)
            earlier = [i for i in cand if j - back <= i < j]
            if not earlier:
                continue
            ins = [g.node[rng.choice(earlier)].output[0]]
        if kind > 0.75:
            # a second output, between input and first output
            later = [i for i in cand if i > j and i <= j + 6]
            if later:
                outs.append(g.node[rng.choice(later)].output[0])
        key = (tuple(ins), tuple(outs))
        if key in tried:
            continue
        tried.add(key)
        if not _cut_ok(model, facts, ins, outs):
            # maybe the cut needs a second input (e.g. a residual branch)
            continue
        sub = os.path.join(tmpdir, "%s_cut%d.onnx" % (model_name, len(cuts)))
        try:
            onnx.utils.extract_model(model_path, sub, ins, outs)
        except Exception:
            continue
        ref = onnx.load(sub)
        if len(ref.graph.node) < 1:
            continue
        cuts.append((ins, outs, sub))
    return cuts


_CUT_CACHE = {}
_CUT_DIRS = []


def cuts_for(model_name):
    if model_name not in _CUT_CACHE:
        d = tempfile.mkdtemp(prefix="kiln_cuts_", dir=ku.tmp_root())
        _CUT_DIRS.append(d)
        seed = sum(map(ord, model_name))
        _CUT_CACHE[model_name] = pick_cuts(
            model_name[:-5], ku.model_path(model_name), CUTS_PER_MODEL, seed, d)
    return _CUT_CACHE[model_name]


def tearDownModule():
    if os.environ.get("KILN_KEEP_TMP"):
        return
    for d in _CUT_DIRS:
        shutil.rmtree(d, True)


class ExtractTest(ku.KilnTestCase):

    def run_extract(self, model_name, ins, outs, ref_path):
        sub = self.out("kiln_sub.onnx")
        args = ["extract", self.model(model_name)]
        if ins:
            args += ["-i", ",".join(ins)]
        if outs:
            args += ["-o", ",".join(outs)]
        args += ["-O", sub]
        res = self.kiln_ok(*args)
        self.assertTrue(os.path.isfile(sub), "kiln extract wrote no file\n%s"
                        % res.describe())
        got = self.load(sub)
        exp = onnx.load(ref_path)
        what = "%s cut %s -> %s" % (model_name, ins, outs)
        ku.assert_extract_equal(self, exp, got, what)
        self.onnx_check(sub, what)
        os.unlink(sub)

    def check_model_cuts(self, model_name):
        cuts = cuts_for(model_name)
        self.assertGreaterEqual(len(cuts), 1,
                                "no valid cut point found in " + model_name)
        for ins, outs, ref in cuts:
            with self.subTest(model=model_name, inputs=ins, outputs=outs):
                self.run_extract(model_name, ins, outs, ref)

    def test_enough_cut_points(self):
        total = 0
        models = 0
        for m in ku.TORCH_MODELS:
            n = len(cuts_for(m))
            total += n
            models += 1 if n else 0
        self.assertGreaterEqual(total, MIN_CUTS)
        self.assertGreaterEqual(models, MIN_MODELS)

    def test_extract_whole_model(self):
        """Cutting at the original graph inputs/outputs gives the whole
        (shape-inferred) model back."""
        for name in ("srcnn.onnx", "squeezenet.onnx"):
            with self.subTest(model=name):
                p = self.model(name)
                m = onnx.load(p)
                ins = [v.name for v in m.graph.input]
                outs = [v.name for v in m.graph.output]
                ref = self.out("ref_" + name)
                onnx.utils.extract_model(p, ref, ins, outs)
                self.run_extract(name, ins, outs, ref)

    def test_extract_multi_input_residual(self):
        """resnet18: a residual Add needs both of its branch inputs."""
        p = self.model("resnet18.onnx")
        m = onnx.load(p)
        adds = [n for n in m.graph.node if n.op_type == "Add"]
        self.assertTrue(adds)
        add = adds[1]
        ins = list(add.input)
        outs = list(add.output)
        ref = self.out("ref_residual.onnx")
        onnx.utils.extract_model(p, ref, ins, outs)
        self.run_extract("resnet18.onnx", ins, outs, ref)
        # and one step further: the Relu after the Add
        relu = next(n for n in m.graph.node
                    if n.op_type == "Relu" and n.input[0] == outs[0])
        ref2 = self.out("ref_residual2.onnx")
        onnx.utils.extract_model(p, ref2, ins, list(relu.output))
        self.run_extract("resnet18.onnx", ins, list(relu.output), ref2)

    # --add-outputs ---------------------------------------------------------
    def test_add_outputs_alone(self):
        for name, pick in (("srcnn.onnx", (4,)), ("resnet18.onnx", (3, 10)),
                           ("transformer.onnx", (40,))):
            with self.subTest(model=name):
                p = self.model(name)
                m = onnx.load(p)
                real = [n for n in m.graph.node
                        if n.op_type not in ("Constant", "Identity")]
                extra = [real[k].output[0] for k in pick]
                sub = self.out("addout_" + name)
                self.kiln_ok("extract", p, "--add-outputs", ",".join(extra),
                             "-O", sub)
                got = self.load(sub)
                self.onnx_check(sub, "--add-outputs result")
                orig_outs = [v.name for v in m.graph.output]
                self.assertEqual([v.name for v in got.graph.output],
                                 orig_outs + extra, "graph outputs")
                types = ku.infer_value_types(m)
                for v in got.graph.output[len(orig_outs):]:
                    ku.assert_protos_equal(self, types[v.name].type, v.type,
                                           "type of added output %r" % v.name)
                    self.assertTrue(
                        v.type.tensor_type.HasField("shape"),
                        "added output %r has no shape" % v.name)
                # nothing else changes
                self.assertEqual(len(got.graph.node), len(m.graph.node))
                for a, b in zip(m.graph.node, got.graph.node):
                    ku.assert_protos_equal(self, a, b, "node %r" % a.name)
                self.assertEqual(sorted(t.name for t in got.graph.initializer),
                                 sorted(t.name for t in m.graph.initializer))
                self.assertEqual(ku.opsets(got), ku.opsets(m))
                self.assertEqual(got.ir_version, m.ir_version)

    def test_add_outputs_with_cut(self):
        """-i/-o plus --add-outputs == extract_model(inputs, outputs+added)."""
        name = "srcnn.onnx"
        p = self.model(name)
        m = onnx.load(p)
        by_op = [n for n in m.graph.node if n.op_type in ("Conv", "Relu")]
        ins = [by_op[0].output[0]]          # conv1 output
        outs = [by_op[-1].output[0]]        # conv3 output (= graph output)
        added = [by_op[2].output[0]]        # conv2 output
        ref = self.out("ref_addout_cut.onnx")
        onnx.utils.extract_model(p, ref, ins, outs + added)
        sub = self.out("kiln_addout_cut.onnx")
        self.kiln_ok("extract", p, "-i", ",".join(ins), "-o", ",".join(outs),
                     "--add-outputs", ",".join(added), "-O", sub)
        got = self.load(sub)
        ku.assert_extract_equal(self, onnx.load(ref), got,
                                "cut + --add-outputs")
        self.onnx_check(sub)

    # bad names -----------------------------------------------------------------
    def assert_bad_name(self, args, bad):
        sub = self.out("should_not_exist.onnx")
        res = self.kiln("extract", self.model("srcnn.onnx"), *args, "-O", sub,
                        expect=1)
        self.assertIn(bad, res.output,
                      "error message should name the missing value %r\n%s"
                      % (bad, res.describe()))
        self.assertFalse(os.path.exists(sub),
                         "%s was created although extract failed" % sub)
        leftovers = [f for f in os.listdir(self.tmp)]
        self.assertEqual(leftovers, [], "extract left files behind")

    def test_bad_output_name(self):
        self.assert_bad_name(["-i", "input", "-o", "no_such_value_xyz"],
                             "no_such_value_xyz")

    def test_bad_input_name(self):
        self.assert_bad_name(["-i", "no_such_input_abc", "-o", "output"],
                             "no_such_input_abc")

    def test_bad_name_among_good(self):
        self.assert_bad_name(["-i", "input", "-o",
                              "/relu/Relu_output_0,missing_out_42"],
                             "missing_out_42")

    def test_bad_add_outputs_name(self):
        self.assert_bad_name(["--add-outputs", "not_a_tensor_77"],
                             "not_a_tensor_77")


def _add_model_test(model_name):
    def test(self):
        self.check_model_cuts(model_name)
    test.__doc__ = "kiln extract vs onnx.utils.extract_model on %s" % model_name
    setattr(ExtractTest, "test_extract_" + model_name[:-5], test)


for _m in ku.TORCH_MODELS:
    _add_model_test(_m)


if __name__ == "__main__":
    unittest.main()
