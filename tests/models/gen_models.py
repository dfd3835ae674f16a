#!/usr/bin/python3
"""Generate the ONNX test models used by kiln's tests.

Usage: gen_models.py OUTDIR

Writes a set of small, deterministic ONNX models (torch-exported and
onnx.helper-built) plus a set of deliberately broken files into OUTDIR,
printing one line per file written.  Must be run with an interpreter that
has torch, torchvision and onnx (on the dev machine: /usr/bin/python3).
"""

import os
import random
import sys
import time
import warnings

import numpy as np

# onnx 1.12 still references numpy aliases removed in numpy 1.24.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    for _name, _val in (("float", float), ("int", int), ("bool", bool),
                        ("object", object), ("complex", complex),
                        ("str", str)):
        if not hasattr(np, _name):
            setattr(np, _name, _val)

import onnx  # noqa: E402
from onnx import helper, numpy_helper, TensorProto  # noqa: E402

warnings.filterwarnings("ignore")

OUTDIR = None


def out(name):
    return os.path.join(OUTDIR, name)


def report(name):
    path = out(name)
    print("wrote %s (%d bytes)" % (path, os.path.getsize(path)))
    sys.stdout.flush()


# ---------------------------------------------------------------------------
# torch-exported models
# ---------------------------------------------------------------------------

def torch_models():
    import torch
    import torch.nn as nn
    import torchvision

    torch.set_num_threads(2)

    def export(model, args, name, opset, input_names=("input",),
               output_names=("output",), dynamic_axes=None, no_grad=True):
        torch.manual_seed(0)
        kwargs = dict(opset_version=opset, input_names=list(input_names),
                      output_names=list(output_names))
        if dynamic_axes is not None:
            kwargs["dynamic_axes"] = dynamic_axes
        if no_grad:
            with torch.no_grad():
                torch.onnx.export(model, args, out(name), **kwargs)
        else:
            torch.onnx.export(model, args, out(name), **kwargs)
        report(name)

    def reference(model, stem, samples):
        """Saves inputs and torch's outputs (<stem>.refK.in.npy / .out.npy) for comparing runtimes."""
        for k, x in enumerate(samples):
            with torch.no_grad():
                y = model(x)
            np.save(out("%s.ref%d.in.npy" % (stem, k)), x.numpy())
            np.save(out("%s.ref%d.out.npy" % (stem, k)), y.detach().numpy())

    # --- SuperResolutionNet: the tutorial's model, shared with examples/srcnn --
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "srcnn"))
    from srcnn_model import SuperResolutionNet

    torch.manual_seed(0)
    m = SuperResolutionNet(upscale_factor=3).eval()
    export(m, torch.randn(1, 3, 32, 32), "srcnn.onnx", 11)
    reference(m, "srcnn", [torch.rand(1, 3, 32, 32) * 255])

    # --- torchvision classifiers -------------------------------------------
    def tv(fn):
        torch.manual_seed(0)
        try:
            return fn(weights=None).eval()
        except TypeError:
            return fn(pretrained=False).eval()

    # Full-size resnet18 (47 MB) + mobilenet_v2 (14 MB) would blow the
    # < 20 MB budget for the generated directory, so by default resnet18 is
    # built at 1/4 channel width (same torchvision module tree, so the same
    # graph topology and node names) and mobilenet_v2 with width_mult=0.5 and
    # 10 classes.  Set KILN_FULL_MODELS=1 to get the stock architectures.
    full = os.environ.get("KILN_FULL_MODELS", "") not in ("", "0")

    def small_resnet18():
        from torchvision.models.resnet import BasicBlock
        m = tv(torchvision.models.resnet18)
        if full:
            return m
        torch.manual_seed(0)
        w = 16
        m.inplanes = w
        m.conv1 = nn.Conv2d(3, w, kernel_size=7, stride=2, padding=3,
                            bias=False)
        m.bn1 = nn.BatchNorm2d(w)
        m.layer1 = m._make_layer(BasicBlock, w, 2)
        m.layer2 = m._make_layer(BasicBlock, 2 * w, 2, stride=2)
        m.layer3 = m._make_layer(BasicBlock, 4 * w, 2, stride=2)
        m.layer4 = m._make_layer(BasicBlock, 8 * w, 2, stride=2)
        m.fc = nn.Linear(8 * w, 1000)
        return m.eval()

    def small_mobilenet_v2():
        fn = torchvision.models.mobilenet_v2
        if full:
            return tv(fn)
        torch.manual_seed(0)
        try:
            return fn(weights=None, width_mult=0.5, num_classes=10).eval()
        except TypeError:
            return fn(pretrained=False, width_mult=0.5, num_classes=10).eval()

    x64 = torch.randn(1, 3, 64, 64)
    for fn, name, opset in ((small_resnet18, "resnet18", 13), (small_mobilenet_v2, "mobilenet_v2", 13),
                            (lambda: tv(torchvision.models.squeezenet1_1), "squeezenet", 11)):
        net = fn()
        export(net, x64, name + ".onnx", opset)
        torch.manual_seed(1)
        reference(net, name, [torch.randn(1, 3, 64, 64)])

    # --- small transformer encoder -----------------------------------------
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(d_model=32, nhead=4,
                                       dim_feedforward=64,
                                       activation="gelu", batch_first=True)
    enc = nn.TransformerEncoder(layer, num_layers=2).eval()
    # Exported with grad enabled: torch 1.13's "fast path" (taken under
    # no_grad in eval mode) is not exportable.
    export(enc, torch.randn(1, 8, 32), "transformer.onnx", 14, no_grad=False)
    torch.manual_seed(1)
    reference(enc, "transformer", [torch.randn(1, 8, 32)])

    # --- dynamic axes (tutorial) --------------------------------------------
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 3, 3).eval()
    dummy = torch.randn(1, 3, 10, 10)
    io_names = dict(input_names=["in"], output_names=["out"])
    export(conv, dummy, "model_static.onnx", 13, **io_names)
    export(conv, dummy, "model_dynamic_0.onnx", 13,
           dynamic_axes={"in": [0], "out": [0]}, **io_names)
    export(conv, dummy, "model_dynamic_23.onnx", 13,
           dynamic_axes={"in": [2, 3], "out": [2, 3]}, **io_names)
    export(conv, dummy, "dynamic_conv.onnx", 13,
           dynamic_axes={"in": {0: "batch", 2: "h", 3: "w"},
                         "out": {0: "batch", 2: "h", 3: "w"}}, **io_names)
    torch.manual_seed(1)
    reference(conv, "dynamic_conv", [torch.randn(2, 3, 10, 10), torch.randn(1, 3, 17, 23)])

    # --- control flow (If + Loop) via scripting -----------------------------
    try:
        make_if_loop_scripted(torch, nn)
    except Exception as e:  # pragma: no cover - fallback path
        print("note: scripted If/Loop export failed (%s: %s); "
              "building if_loop.onnx with onnx.helper" % (type(e).__name__, e))
        make_if_loop_helper()


def make_if_loop_scripted(torch, nn):
    class IfLoop(nn.Module):
        def forward(self, x, n):
            # data-dependent if
            if bool(x.sum() > 0):
                y = x * 2.0
            else:
                y = x - 1.0
            # loop with a data-dependent trip count
            for i in range(int(n)):
                y = y + x * 0.5
            return y

    m = torch.jit.script(IfLoop())
    x = torch.randn(2, 3)
    n = torch.tensor(3, dtype=torch.int64)
    path = out("if_loop.onnx")
    torch.onnx.export(m, (x, n), path, opset_version=13,
                      input_names=["x", "n"], output_names=["y"])
    model = onnx.load(path)
    ops = {nd.op_type for nd in model.graph.node}
    if "If" not in ops or "Loop" not in ops:
        raise RuntimeError("scripted export lacks If/Loop (ops: %s)"
                           % sorted(ops))
    onnx.checker.check_model(model)
    report("if_loop.onnx")


def make_if_loop_helper():
    F = TensorProto.FLOAT
    then_g = helper.make_graph(
        [helper.make_node("Mul", ["x", "two"], ["then_y"], name="then_mul")],
        "then_branch", [], [helper.make_tensor_value_info("then_y", F, [2, 3])],
        initializer=[numpy_helper.from_array(np.array(2.0, np.float32), "two")])
    else_g = helper.make_graph(
        [helper.make_node("Sub", ["x", "one"], ["else_y"], name="else_sub")],
        "else_branch", [], [helper.make_tensor_value_info("else_y", F, [2, 3])],
        initializer=[numpy_helper.from_array(np.array(1.0, np.float32), "one")])
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"], name="body_cond"),
         helper.make_node("Mul", ["x", "half"], ["xh"], name="body_mul"),
         helper.make_node("Add", ["y_in", "xh"], ["y_out"], name="body_add")],
        "loop_body",
        [helper.make_tensor_value_info("iter", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("y_in", F, [2, 3])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("y_out", F, [2, 3])],
        initializer=[numpy_helper.from_array(np.array(0.5, np.float32), "half")])
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["s"], name="sum", keepdims=0),
        helper.make_node("Greater", ["s", "zero"], ["c"], name="gt"),
        helper.make_node("If", ["c"], ["y0"], name="if0",
                         then_branch=then_g, else_branch=else_g),
        helper.make_node("Loop", ["n", "", "y0"], ["y"], name="loop0",
                         body=body),
    ]
    g = helper.make_graph(
        nodes, "if_loop",
        [helper.make_tensor_value_info("x", F, [2, 3]),
         helper.make_tensor_value_info("n", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("y", F, [2, 3])],
        initializer=[numpy_helper.from_array(np.array(0.0, np.float32), "zero")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(m)
    onnx.save(m, out("if_loop.onnx"))
    report("if_loop.onnx")


# ---------------------------------------------------------------------------
# helper-built models
# ---------------------------------------------------------------------------

def make_linear_func():
    # Exactly as in the onnx python API tutorial.
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [10, 10])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [10, 10])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [10, 10])
    output = helper.make_tensor_value_info("output", TensorProto.FLOAT,
                                           [10, 10])
    mul = helper.make_node("Mul", ["a", "x"], ["c"])
    add = helper.make_node("Add", ["c", "b"], ["output"])
    graph = helper.make_graph([mul, add], "linear_func", [a, x, b], [output])
    model = helper.make_model(graph)
    onnx.checker.check_model(model)
    onnx.save(model, out("linear_func.onnx"))
    report("linear_func.onnx")


def make_with_function():
    F = TensorProto.FLOAT
    opsets = [helper.make_opsetid("", 15), helper.make_opsetid("custom", 1)]
    # custom.LinearFunc(X, A, B) = X @ A + B ; custom.Relu6ish(X) = Clip(X)
    fn = helper.make_function(
        "custom", "LinearFunc", ["X", "A", "B"], ["Y"],
        [helper.make_node("MatMul", ["X", "A"], ["XA"]),
         helper.make_node("Add", ["XA", "B"], ["Y"])],
        [helper.make_opsetid("", 15)],
        doc_string="Y = X @ A + B")
    fn2 = helper.make_function(
        "custom", "ScaledRelu", ["X"], ["Y"],
        [helper.make_node("Relu", ["X"], ["R"]),
         helper.make_node("Constant", [], ["S"],
                          value=numpy_helper.from_array(
                              np.array(0.5, np.float32))),
         helper.make_node("Mul", ["R", "S"], ["Y"])],
        [helper.make_opsetid("", 15)])
    rng = np.random.RandomState(0)
    A = numpy_helper.from_array(rng.randn(4, 3).astype(np.float32), "A")
    B = numpy_helper.from_array(rng.randn(3).astype(np.float32), "B")
    nodes = [
        helper.make_node("LinearFunc", ["X", "A", "B"], ["H"], name="lin",
                         domain="custom"),
        helper.make_node("ScaledRelu", ["H"], ["Y"], name="act",
                         domain="custom"),
    ]
    g = helper.make_graph(nodes, "with_function",
                          [helper.make_tensor_value_info("X", F, [2, 4])],
                          [helper.make_tensor_value_info("Y", F, [2, 3])],
                          initializer=[A, B])
    m = helper.make_model(g, opset_imports=opsets, functions=[fn, fn2],
                          producer_name="kiln-tests")
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, out("with_function.onnx"))
    report("with_function.onnx")


def make_external():
    m = onnx.load(out("srcnn.onnx"))
    path = out("external.onnx")
    # onnx appends to an existing data file (open(..., 'ab')), so a re-run
    # into the same OUTDIR would grow it: start from scratch.
    for stale in (path, out("external.onnx.data")):
        if os.path.exists(stale):
            os.remove(stale)
    onnx.save_model(m, path, save_as_external_data=True,
                    all_tensors_to_one_file=True,
                    location="external.onnx.data", size_threshold=1024)
    onnx.checker.check_model(path)
    report("external.onnx")
    report("external.onnx.data")


def make_attrs():
    F = TensorProto.FLOAT
    # If with both branches as GRAPH attributes
    then_g = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["then_out"], name="then_id")],
        "then_g", [], [helper.make_tensor_value_info("then_out", F, [2, 3])])
    else_g = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["else_out"], name="else_neg")],
        "else_g", [], [helper.make_tensor_value_info("else_out", F, [2, 3])])

    nodes = [
        # FLOAT + INT attributes
        helper.make_node("LeakyRelu", ["x"], ["lr"], name="leaky",
                         alpha=0.125, doc_string="leaky relu node"),
        helper.make_node("Flatten", ["lr"], ["flat"], name="flatten", axis=1),
        # TENSOR attribute
        helper.make_node("Constant", [], ["cst"], name="const_tensor",
                         value=numpy_helper.from_array(
                             np.arange(6, dtype=np.float32).reshape(2, 3))),
        # FLOATS attribute
        helper.make_node("Constant", [], ["cst_fs"], name="const_floats",
                         value_floats=[1.5, -2.25, 3.0]),
        # INTS attribute
        helper.make_node("Constant", [], ["cst_is"], name="const_ints",
                         value_ints=[1, -2, 3, 1 << 40]),
        # STRING attribute
        helper.make_node("Constant", [], ["cst_s"], name="const_string",
                         value_string="hello kiln"),
        # STRINGS attribute
        helper.make_node("Constant", [], ["cst_ss"], name="const_strings",
                         value_strings=["a", "bc", "d\u00e9f"]),
        # INTS attribute on a regular op
        helper.make_node("Transpose", ["x"], ["xt"], name="transpose",
                         perm=[1, 0]),
        helper.make_node("Add", ["lr", "cst"], ["s1"], name="add_cst"),
        helper.make_node("Mul", ["s1", "w"], ["s2"], name="mul_w"),
        helper.make_node("Cast", ["wh"], ["wh32"], name="cast_half",
                         to=TensorProto.FLOAT),
        helper.make_node("Add", ["s2", "wh32"], ["s3"], name="add_half"),
        helper.make_node("Reshape", ["s3", "shape"], ["s4"], name="reshape"),
        helper.make_node("ReduceSum", ["x"], ["xs"], name="rsum", keepdims=0),
        helper.make_node("Greater", ["xs", "zero"], ["cond"], name="gt"),
        # GRAPH attributes
        helper.make_node("If", ["cond"], ["if_out"], name="if_node",
                         then_branch=then_g, else_branch=else_g),
        helper.make_node("Add", ["s4", "if_out"], ["y"], name="final_add"),
        helper.make_node("Identity", ["names"], ["names_out"], name="id_str"),
    ]
    inits = [
        numpy_helper.from_array(np.full((2, 3), 0.5, np.float32), "w"),
        numpy_helper.from_array(np.array([2, 3], np.int64), "shape"),
        numpy_helper.from_array(
            np.array([[1, 2, 3], [4, 5, 6]], np.float16), "wh"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        numpy_helper.from_array(np.array([b"alpha", b"beta", b"gamma"],
                                         dtype=object), "names"),
    ]
    inits[0].doc_string = "weight initializer"
    g = helper.make_graph(
        nodes, "attrs_graph",
        [helper.make_tensor_value_info("x", F, [2, 3], doc_string="input x")],
        [helper.make_tensor_value_info("y", F, [2, 3], doc_string="output y"),
         helper.make_tensor_value_info("names_out", TensorProto.STRING, [3])],
        initializer=inits,
        doc_string="graph exercising every attribute type",
        value_info=[
            helper.make_tensor_value_info("lr", F, [2, 3]),
            helper.make_tensor_value_info("flat", F, [2, 3]),
            helper.make_tensor_value_info("xt", F, [3, 2]),
            helper.make_tensor_value_info("cst_is", TensorProto.INT64, [4]),
            helper.make_tensor_value_info("s4", F, ["d0", None]),
        ])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)],
                          producer_name="kiln-attrs-gen",
                          producer_version="1.2.3",
                          doc_string="model doc string",
                          domain="ai.kiln.test", model_version=7)
    helper.set_model_props(m, {"author": "kiln", "license": "MIT",
                               "note": "metadata \u2713"})
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, out("attrs.onnx"))
    report("attrs.onnx")


# ---------------------------------------------------------------------------
# bad inputs
# ---------------------------------------------------------------------------

def parses_as(data, cls):
    msg = cls()
    try:
        msg.ParseFromString(data)
    except Exception:
        return False
    return True


def make_bad():
    def write(name, data):
        with open(out(name), "wb") as f:
            f.write(data)
        report(name)

    write("bad_empty.onnx", b"")
    with open(out("srcnn.onnx"), "rb") as f:
        src = f.read()
    write("bad_truncated.onnx", src[: len(src) // 2])
    r = random.Random(0)
    write("bad_random.onnx", bytes(r.getrandbits(8) for _ in range(4096)))

    t = numpy_helper.from_array(
        np.arange(24, dtype=np.float32).reshape(2, 3, 4), "not_a_model")
    tdata = t.SerializeToString()
    write("bad_not_model.onnx", tdata)
    if parses_as(tdata, onnx.ModelProto):
        print("note: bad_not_model.onnx (TensorProto) also parses as a "
              "ModelProto; writing bad_not_model2.onnx (GraphProto)")
        gr = helper.make_graph(
            [helper.make_node("Relu", ["x"], ["y"], name="relu")], "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
        write("bad_not_model2.onnx", gr.SerializeToString())

    # model referencing a missing external data file
    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "W")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "missing.data"), ("offset", "0"),
                 ("length", "64")):
        e = w.external_data.add()
        e.key, e.value = k, v
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"], name="matmul")],
        "missing_external",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 4])],
        initializer=[w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    write("bad_missing_external.onnx", m.SerializeToString())

    # cycle: n1: (x, t2) -> t1 ; n2: (t1, x) -> t2
    F = TensorProto.FLOAT
    g = helper.make_graph(
        [helper.make_node("Add", ["x", "t2"], ["t1"], name="n1"),
         helper.make_node("Add", ["t1", "x"], ["t2"], name="n2")],
        "cycle",
        [helper.make_tensor_value_info("x", F, [2])],
        [helper.make_tensor_value_info("t1", F, [2])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    write("bad_cycle.onnx", m.SerializeToString())

    g = helper.make_graph(
        [helper.make_node("FooBarOp", ["x"], ["y"], name="mystery")],
        "unknown_op",
        [helper.make_tensor_value_info("x", F, [2])],
        [helper.make_tensor_value_info("y", F, [2])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    write("bad_unknown_op.onnx", m.SerializeToString())


def make_huge_external():
    """A model whose one initializer holds 2 GiB + 64 bytes of float, in a sparse external-data file: it
    costs no disk space, and a loader that maps the file (as kiln does) reads only what it touches."""
    from onnx import helper, TensorProto
    n = (1 << 29) + 16
    data_name = "huge_external.onnx.data"
    t = TensorProto()
    t.name = "big"
    t.data_type = TensorProto.FLOAT
    t.dims.append(n)
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", data_name), ("offset", "0"), ("length", str(4 * n))):
        e = t.external_data.add()
        e.key, e.value = k, v
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [n])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [n])
    g = helper.make_graph([helper.make_node("Add", ["x", "big"], ["y"])], "huge", [x], [y], [t])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    with open(out("huge_external.onnx"), "wb") as f:
        f.write(m.SerializeToString())
    with open(out(data_name), "wb") as f:
        f.truncate(4 * n)
        f.seek(4 * (n - 1))
        f.write(np.array([7.5], dtype="<f4").tobytes())
    report("huge_external.onnx")


def main(argv):
    global OUTDIR
    if len(argv) != 2:
        sys.stderr.write("usage: %s OUTDIR\n" % argv[0])
        return 2
    OUTDIR = argv[1]
    os.makedirs(OUTDIR, exist_ok=True)
    t0 = time.time()
    torch_models()
    make_linear_func()
    make_with_function()
    make_external()
    make_attrs()
    make_bad()
    make_huge_external()
    print("done in %.1fs" % (time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
