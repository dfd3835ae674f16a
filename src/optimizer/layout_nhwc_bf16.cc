// Level "all", bf16 sessions on a CPU with bfloat16 instructions (opt::Options::bf16): convolutions keep their
// activations in bfloat16, channels-last, from one to the next. oneDNN's bfloat16 convolutions run on AMX (or
// AVX512-BF16) only on NHWC tensors; taking float32 NCHWc tensors, as NchwcConv's bf16 kernel does, they pay a
// conversion and a reorder of X and Y on every call, and the float32 tensors cost twice the memory traffic. This
// pass turns each 2-D float32 Conv or ai.kiln FusedConv with constant weights into ai.kiln NhwcConv, whose X, Z and
// Y are bfloat16 [N, H, W, C] (W and B stay float32; the kernels convert them once), and a 2-D MaxPool of such a
// value into ai.kiln NhwcMaxPool on the bfloat16 tensor (exact: the maximum commutes with rounding), and a
// GlobalAveragePool of one into ai.kiln NhwcGlobalAveragePool (float32 [N, C, 1, 1] out). ai.kiln ToNhwc
// (to bfloat16, rounding to nearest even) converts at the boundaries once per value, FromNhwc (to float32) where a
// plain consumer, a subgraph or a graph output needs the value. Everything else stays float32.
#include "kiln/ir/builder.h"
#include "optimizer/channels_last.h"
#include "optimizer/graph_util.h"
#include "optimizer/passes.h"

namespace kiln::opt {
namespace {

using ir::helper::make_attribute;

// A 2-D Conv or FusedConv with constant float32 weights (and bias).
bool bf16_conv(const ir::Graph& g, const ir::Node& n) {
  if (!(is_onnx(n, "Conv") || is_kiln(n, "FusedConv")) || n.inputs.size() < 2 || n.outputs.size() != 1) return false;
  const Tensor* w = constant_tensor(g, n.inputs[1]);
  if (!w || w->dtype() != DType::kFloat32 || w->rank() != 4) return false;
  if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
    const Tensor* b = constant_tensor(g, n.inputs[2]);
    if (!b || b->dtype() != DType::kFloat32) return false;
  }
  return true;
}

}  // namespace

int layout_nhwc_bf16(ir::Model& m, const Options& o) {
  if (!o.bf16) return 0;
  ir::Graph& g = m.graph;
  auto convert = [&g](const char* op, DType to) {
    return [&g, op, to](const std::string& from, const std::string& out) {
      ir::Node c;
      c.op_type = op;
      c.domain = kKilnDomain;
      c.name = fresh_name(g, out + "_" + op);
      c.inputs = {from};
      c.outputs = {out};
      c.attributes = {make_attribute("to", static_cast<int64_t>(to))};
      return c;
    };
  };
  ChannelsLast cl(g, convert("ToNhwc", DType::kBFloat16), convert("FromNhwc", DType::kFloat32));
  for (auto& n : g.nodes) {
    if (bf16_conv(g, n)) {
      ir::Node c = n;
      c.inputs[0] = cl.need_nhwc(n.inputs[0]);
      if (c.inputs.size() > 3 && !c.inputs[3].empty()) c.inputs[3] = cl.need_nhwc(n.inputs[3]);
      cl.rewritten(std::move(c), "NhwcConv");
      continue;
    }
    if (cl.maxpool(n)) continue;
    if (is_onnx(n, "GlobalAveragePool") && n.inputs.size() == 1 && cl.has(n.inputs[0])) {
      ir::Node p = n;
      p.op_type = "NhwcGlobalAveragePool";
      p.domain = kKilnDomain;
      p.inputs[0] = cl.nhwc(n.inputs[0]);
      cl.emit(std::move(p));
      continue;
    }
    cl.keep(n);
  }
  return cl.finish(m);
}

}  // namespace kiln::opt
