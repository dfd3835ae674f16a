"""Shared helpers for kiln's python (unittest) tests.

Environment:
  KILN_BIN     path of the kiln executable (required)
  KILN_MODELS  directory produced by tests/models/gen_models.py; if unset the
               models are generated once into a temporary directory
  KILN_TMP     scratch directory (default: the system temp dir); every test
               works in its own fresh sub-directory of it
"""

import atexit
import copy
import difflib
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import warnings

import numpy as np

# onnx 1.12 still references numpy aliases that numpy 1.24 removed.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    for _name, _val in (("float", float), ("int", int), ("bool", bool),
                        ("object", object), ("complex", complex),
                        ("str", str)):
        if not hasattr(np, _name):
            setattr(np, _name, _val)

import onnx  # noqa: E402
from onnx import numpy_helper, TensorProto, AttributeProto  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
GEN_SCRIPT = os.path.join(os.path.dirname(HERE), "models", "gen_models.py")

# Every well-formed model gen_models.py writes.
GOOD_MODELS = [
    "srcnn.onnx",
    "resnet18.onnx",
    "mobilenet_v2.onnx",
    "squeezenet.onnx",
    "transformer.onnx",
    "dynamic_conv.onnx",
    "model_static.onnx",
    "model_dynamic_0.onnx",
    "model_dynamic_23.onnx",
    "linear_func.onnx",
    "if_loop.onnx",
    "with_function.onnx",
    "external.onnx",
    "attrs.onnx",
]

# Models exported by torch (used for extract tests).
TORCH_MODELS = ["srcnn.onnx", "resnet18.onnx", "mobilenet_v2.onnx",
                "squeezenet.onnx", "transformer.onnx"]

# Files that are not loadable ONNX models at all -> exit 2 ("I/O error").
BAD_IO_MODELS = ["bad_empty.onnx", "bad_truncated.onnx", "bad_random.onnx",
                 "bad_not_model.onnx", "bad_missing_external.onnx"]

# Loadable but invalid models -> exit 1.
BAD_INVALID_MODELS = ["bad_cycle.onnx", "bad_unknown_op.onnx"]

CRASH_MARKERS = ("AddressSanitizer", "LeakSanitizer",
                 "UndefinedBehaviorSanitizer", "ThreadSanitizer",
                 "runtime error", "terminate called",
                 "Segmentation fault", "core dumped")

KILN_TIMEOUT = float(os.environ.get("KILN_TIMEOUT", "180"))


# ---------------------------------------------------------------------------
# environment
# ---------------------------------------------------------------------------

_generated_models_dir = None


def ort_env():
    """os.environ with NODE_PATH on the onnxruntime-node that tests/peer/install-ort.sh put in KILN_ORT_DIR;
    skips the test when it is not there."""
    d = os.environ.get("KILN_ORT_DIR")
    if not d or not os.path.isdir(os.path.join(d, "node_modules", "onnxruntime-node")):
        raise unittest.SkipTest("KILN_ORT_DIR does not hold onnxruntime-node (tests/peer/install-ort.sh)")
    env = dict(os.environ)
    env["NODE_PATH"] = os.path.join(d, "node_modules")
    return env


def kiln_bin():
    return os.environ.get("KILN_BIN", "")


def config_error():
    """Return a human readable reason why kiln can't be run, or None."""
    b = kiln_bin()
    if not b:
        return ("KILN_BIN is not set; set it to the path of the kiln "
                "executable (e.g. KILN_BIN=build/kiln)")
    if not os.path.isfile(b):
        return "KILN_BIN=%r does not exist (build kiln first?)" % b
    if not os.access(b, os.X_OK):
        return "KILN_BIN=%r is not executable" % b
    return None


def tmp_root():
    d = os.environ.get("KILN_TMP") or tempfile.gettempdir()
    os.makedirs(d, exist_ok=True)
    return d


def models_dir():
    """KILN_MODELS, or a directory generated on first use."""
    global _generated_models_dir
    d = os.environ.get("KILN_MODELS")
    if d:
        if not os.path.isdir(d):
            raise AssertionError("KILN_MODELS=%r is not a directory (run "
                                 "tests/models/gen_models.py DIR first)" % d)
        return d
    if _generated_models_dir is None:
        d = tempfile.mkdtemp(prefix="kiln_models_", dir=tmp_root())
        atexit.register(shutil.rmtree, d, True)
        subprocess.run([sys.executable, GEN_SCRIPT, d], check=True,
                       stdout=subprocess.DEVNULL)
        _generated_models_dir = d
    return _generated_models_dir


def model_path(name):
    p = os.path.join(models_dir(), name)
    if not os.path.exists(p):
        raise AssertionError("test model %s is missing (KILN_MODELS=%s); "
                             "re-run tests/models/gen_models.py" % (p,
                                                                    models_dir()))
    return p


# ---------------------------------------------------------------------------
# running kiln
# ---------------------------------------------------------------------------

class KilnResult(object):
    def __init__(self, args, returncode, stdout, stderr):
        self.args = args
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    @property
    def output(self):
        """stdout and stderr together (messages may go to either)."""
        return self.stdout + "\n" + self.stderr

    def describe(self, limit=3000):
        def cut(s):
            return s if len(s) <= limit else s[:limit] + "\n...[truncated]"
        return ("command: %s\nexit code: %s\n--- stdout ---\n%s\n"
                "--- stderr ---\n%s" % (" ".join(self.args), self.returncode,
                                        cut(self.stdout), cut(self.stderr)))


def run_kiln(args, timeout=None):
    cmd = [kiln_bin()] + [str(a) for a in args]
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout or KILN_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        raise AssertionError("kiln timed out after %ss: %s\nstderr:\n%s" % (
            e.timeout, " ".join(cmd),
            (e.stderr or b"").decode("utf-8", "replace")[-3000:]))
    except OSError as e:
        raise AssertionError("could not run %s: %s" % (" ".join(cmd), e))
    return KilnResult(cmd, p.returncode,
                      p.stdout.decode("utf-8", "replace"),
                      p.stderr.decode("utf-8", "replace"))


class KilnTestCase(unittest.TestCase):
    maxDiff = 8000

    def setUp(self):
        err = config_error()
        if err:
            self.fail(err)
        self.tmp = tempfile.mkdtemp(prefix=self.id().split(".")[-1] + "_",
                                    dir=tmp_root())
        if not os.environ.get("KILN_KEEP_TMP"):
            self.addCleanup(shutil.rmtree, self.tmp, True)

    # -- kiln invocation -----------------------------------------------------
    def assertNoCrash(self, res):
        if res.returncode < 0:
            self.fail("kiln was killed by signal %d\n%s"
                      % (-res.returncode, res.describe()))
        for marker in CRASH_MARKERS:
            if marker in res.stderr or marker in res.stdout:
                self.fail("kiln output contains %r (crash / sanitizer "
                          "report)\n%s" % (marker, res.describe()))

    def kiln(self, *args, expect=None, timeout=None):
        """Run kiln; check it did not crash and (if given) the exit code.

        expect: an int or a collection of ints.
        """
        res = run_kiln(args, timeout=timeout)
        self.assertNoCrash(res)
        if expect is not None:
            allowed = (expect,) if isinstance(expect, int) else tuple(expect)
            if res.returncode not in allowed:
                self.fail("unexpected exit code %d (expected %s)\n%s" % (
                    res.returncode, " or ".join(map(str, allowed)),
                    res.describe()))
        return res

    def kiln_ok(self, *args, **kw):
        return self.kiln(*args, expect=0, **kw)

    def model(self, name):
        return model_path(name)

    def out(self, name):
        return os.path.join(self.tmp, name)

    # -- onnx helpers ----------------------------------------------------------
    def onnx_check(self, path_or_model, what=""):
        try:
            onnx_full_check(path_or_model)
        except Exception as e:
            self.fail("onnx.checker (full_check=True) rejected %s: %s"
                      % (what or path_or_model, e))

    def load(self, path):
        try:
            return onnx.load(path)
        except Exception as e:
            self.fail("python onnx could not load %s: %s: %s"
                      % (path, type(e).__name__, e))


def onnx_full_check(path_or_model):
    """onnx.checker.check_model(..., full_check=True) without side effects.

    In onnx 1.12, check_model(path, full_check=True) runs
    infer_shapes_path(path) with output_path defaulting to *path*, i.e. it
    overwrites the checked file with a shape-inferred copy.  Do the same
    checks but write the inferred model to a throw-away file next to it
    (same directory, so relative external-data locations still resolve).
    """
    if isinstance(path_or_model, str):
        onnx.checker.check_model(path_or_model)  # C.check_model_path
        fd, tmp = tempfile.mkstemp(suffix=".inferred.onnx",
                                   dir=os.path.dirname(
                                       os.path.abspath(path_or_model)))
        os.close(fd)
        try:
            onnx.shape_inference.infer_shapes_path(path_or_model, tmp,
                                                   check_type=True,
                                                   strict_mode=True)
        finally:
            os.unlink(tmp)
    else:
        onnx.checker.check_model(path_or_model, full_check=True)


# ---------------------------------------------------------------------------
# model normalisation / comparison
# ---------------------------------------------------------------------------

def dtype_name(elem_type):
    return TensorProto.DataType.Name(elem_type).lower()


def shape_list(vi):
    """[int | str | None] for a ValueInfoProto (None if it has no shape)."""
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return None
    dims = []
    for d in t.shape.dim:
        if d.HasField("dim_value"):
            dims.append(d.dim_value)
        elif d.HasField("dim_param"):
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return dims


def tensor_array(t):
    return numpy_helper.to_array(t)


def canonical_tensor(t):
    """Same tensor, stored in numpy_helper.from_array's canonical layout."""
    arr = numpy_helper.to_array(t)
    n = numpy_helper.from_array(arr, t.name)
    if n.data_type != t.data_type:
        # keep the declared element type (e.g. bfloat16) if from_array maps
        # the numpy dtype differently
        n = copy.deepcopy(t)
        n.ClearField("data_location")
        del n.external_data[:]
    if t.doc_string:
        n.doc_string = t.doc_string
    return n


def _canon_graph(g):
    for i, t in enumerate(list(g.initializer)):
        g.initializer[i].CopyFrom(canonical_tensor(t))
    for n in g.node:
        _canon_node(n)


def _canon_node(n):
    for a in n.attribute:
        if a.type == AttributeProto.TENSOR or a.HasField("t"):
            a.t.CopyFrom(canonical_tensor(a.t))
        for i, t in enumerate(list(a.tensors)):
            a.tensors[i].CopyFrom(canonical_tensor(t))
        if a.HasField("g"):
            _canon_graph(a.g)
        for sg in a.graphs:
            _canon_graph(sg)


def strip_defaults(msg):
    """Clear singular scalar fields explicitly set to their default value.

    proto2 keeps presence, so `doc_string: ""` set explicitly and an absent
    doc_string compare unequal although they mean the same thing.  oneof
    members are kept (a dim_value of 0 is not the same as an unknown dim).
    """
    for field, value in list(msg.ListFields()):
        if field.label == field.LABEL_REPEATED:
            if field.message_type is not None:
                for v in value:
                    strip_defaults(v)
        elif field.message_type is not None:
            strip_defaults(value)
        elif field.containing_oneof is None and value == field.default_value:
            msg.ClearField(field.name)
    return msg


def normalize_model(m):
    """Deep copy of m with canonical tensor storage and no explicit defaults."""
    m = copy.deepcopy(m)
    _canon_graph(m.graph)
    for f in m.functions:
        for n in f.node:
            _canon_node(n)
    return strip_defaults(m)


def normalize(msg):
    msg = copy.deepcopy(msg)
    if isinstance(msg, onnx.NodeProto):
        _canon_node(msg)
    elif isinstance(msg, onnx.GraphProto):
        _canon_graph(msg)
    return strip_defaults(msg)


def proto_diff(a, b, label_a="expected", label_b="actual", limit=80):
    la = str(a).splitlines()
    lb = str(b).splitlines()
    d = list(difflib.unified_diff(la, lb, label_a, label_b, lineterm="", n=2))
    if len(d) > limit:
        d = d[:limit] + ["... (%d more diff lines)" % (len(d) - limit)]
    return "\n".join(d)


def _summ(x, n=300):
    s = str(x)
    return s if len(s) <= n else s[:n] + "..."


def assert_protos_equal(tc, a, b, what):
    na, nb = normalize(a), normalize(b)
    if na != nb:
        tc.fail("%s differs:\n%s" % (what, proto_diff(na, nb)))


def assert_tensors_equal(tc, ta, tb, what):
    tc.assertEqual(ta.name, tb.name, "%s: tensor name" % what)
    tc.assertEqual(dtype_name(ta.data_type), dtype_name(tb.data_type),
                   "%s: data_type of tensor %r" % (what, ta.name))
    tc.assertEqual(list(ta.dims), list(tb.dims),
                   "%s: dims of tensor %r" % (what, ta.name))
    aa, ab = tensor_array(ta), tensor_array(tb)
    tc.assertEqual(aa.dtype, ab.dtype, "%s: dtype of %r" % (what, ta.name))
    if aa.dtype == object:
        ok = aa.shape == ab.shape and list(aa.ravel()) == list(ab.ravel())
    else:
        ok = aa.shape == ab.shape and aa.tobytes() == ab.tobytes()
    if not ok:
        tc.fail("%s: values of tensor %r differ\nexpected: %s\nactual:   %s"
                % (what, ta.name, _summ(aa.ravel()[:20]), _summ(ab.ravel()[:20])))


def assert_value_infos_equal(tc, la, lb, what):
    names_a = [v.name for v in la]
    names_b = [v.name for v in lb]
    tc.assertEqual(names_a, names_b, "%s: names" % what)
    for va, vb in zip(la, lb):
        assert_protos_equal(tc, va, vb, "%s %r" % (what, va.name))


def assert_graphs_equal(tc, ga, gb, what="graph"):
    tc.assertEqual(ga.name, gb.name, "%s name" % what)
    tc.assertEqual(ga.doc_string, gb.doc_string, "%s doc_string" % what)
    assert_value_infos_equal(tc, ga.input, gb.input, what + " inputs")
    assert_value_infos_equal(tc, ga.output, gb.output, what + " outputs")
    assert_value_infos_equal(tc, ga.value_info, gb.value_info,
                             what + " value_info")
    tc.assertEqual([t.name for t in ga.initializer],
                   [t.name for t in gb.initializer],
                   "%s initializer names" % what)
    for ta, tb in zip(ga.initializer, gb.initializer):
        assert_tensors_equal(tc, ta, tb, what + " initializer")
        tc.assertEqual(ta.doc_string, tb.doc_string,
                       "%s initializer %r doc_string" % (what, ta.name))
    tc.assertEqual(len(ga.node), len(gb.node), "%s node count" % what)
    for i, (na, nb) in enumerate(zip(ga.node, gb.node)):
        assert_protos_equal(tc, na, nb, "%s node #%d (%s %r)"
                            % (what, i, na.op_type, na.name))
    assert_protos_equal(tc, ga, gb, what + " (whole graph)")


def opsets(m):
    return [(o.domain, o.version) for o in m.opset_import]


def assert_models_equal(tc, ma, mb, what="model"):
    """Full structural equality (tensor storage layout ignored)."""
    for f in ("ir_version", "producer_name", "producer_version", "domain",
              "model_version", "doc_string"):
        tc.assertEqual(getattr(ma, f), getattr(mb, f), "%s %s" % (what, f))
    tc.assertEqual(opsets(ma), opsets(mb), what + " opset_import")
    tc.assertEqual([(p.key, p.value) for p in ma.metadata_props],
                   [(p.key, p.value) for p in mb.metadata_props],
                   what + " metadata_props")
    tc.assertEqual([(f.domain, f.name) for f in ma.functions],
                   [(f.domain, f.name) for f in mb.functions],
                   what + " functions")
    for fa, fb in zip(ma.functions, mb.functions):
        assert_protos_equal(tc, fa, fb, "%s function %s" % (what, fa.name))
    assert_graphs_equal(tc, ma.graph, mb.graph, what + " graph")
    na, nb = normalize_model(ma), normalize_model(mb)
    if na != nb:
        na.graph.ClearField("initializer")
        nb.graph.ClearField("initializer")
        tc.fail("%s differs:\n%s" % (what, proto_diff(na, nb)))


def assert_extract_equal(tc, exp, act, what="extracted model"):
    """Compare kiln extract's result with onnx.utils.extract_model's."""
    tc.assertEqual(act.ir_version, exp.ir_version, what + " ir_version")
    tc.assertEqual(opsets(act), opsets(exp), what + " opset_import")
    tc.assertEqual(act.producer_name, exp.producer_name,
                   what + " producer_name")
    tc.assertEqual(act.graph.name, exp.graph.name, what + " graph name")
    ge, ga = exp.graph, act.graph
    tc.assertEqual([n.name for n in ga.node], [n.name for n in ge.node],
                   what + " node names (in order)")
    for i, (ne, na) in enumerate(zip(ge.node, ga.node)):
        assert_protos_equal(tc, ne, na, "%s node #%d (%s %r)"
                            % (what, i, ne.op_type, ne.name))
    for kind in ("input", "output"):
        le, la = getattr(ge, kind), getattr(ga, kind)
        tc.assertEqual([v.name for v in la], [v.name for v in le],
                       "%s graph %s names" % (what, kind))
        for ve, va in zip(le, la):
            assert_protos_equal(tc, ve.type, va.type, "%s graph %s %r type"
                                % (what, kind, ve.name))
    tc.assertEqual(sorted(t.name for t in ga.initializer),
                   sorted(t.name for t in ge.initializer),
                   what + " initializer names")
    act_init = {t.name: t for t in ga.initializer}
    for te in ge.initializer:
        assert_tensors_equal(tc, te, act_init[te.name], what + " initializer")
    tc.assertEqual(sorted(v.name for v in ga.value_info),
                   sorted(v.name for v in ge.value_info),
                   what + " value_info names")
    tc.assertEqual([(f.domain, f.name) for f in act.functions],
                   [(f.domain, f.name) for f in exp.functions],
                   what + " functions")


def infer_value_types(model):
    """name -> ValueInfoProto from onnx shape inference (+ graph io)."""
    inf = onnx.shape_inference.infer_shapes(model)
    d = {}
    for v in list(inf.graph.input) + list(inf.graph.output) + \
            list(inf.graph.value_info):
        d.setdefault(v.name, v)
    return d
