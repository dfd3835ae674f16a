// Scaled dot-product attention as transformer exports write it (torch's MultiheadAttention, BERT-style
// encoders):
//   Y = [Transpose] MatMul(Softmax(MatMul(Transpose(Q) [* or / c], Transpose(K)) [* or / c]), Transpose(V))
// becomes one ai.kiln Attention that reads Q, K and V through the Transposes' permutations and writes its
// output through the last one: no transposed copies, and the scores of one head stay in cache.
#include "optimizer/graph_util.h"
#include "optimizer/passes.h"

namespace kiln::opt {
namespace {

// A scalar float constant c of a Mul or Div reading `from` (Div: from / c): the factor it applies, or 0.
float scale_of(const ir::Graph& g, const ir::Node& n, const std::string& from) {
  const bool mul = is_onnx(n, "Mul"), div = is_onnx(n, "Div");
  if ((!mul && !div) || n.inputs.size() != 2 || (div && n.inputs[0] != from)) return 0.0f;
  const std::string c = other_input(n, from);
  const Tensor* t = constant_tensor(g, c);
  const auto v = constant_values(g, c);
  if (!t || !v || t->num_elements() != 1 || t->dtype() != DType::kFloat32 || (*v)[0] == 0.0) return 0.0f;
  return static_cast<float>(mul ? (*v)[0] : 1.0 / (*v)[0]);
}

}  // namespace

int fuse_attention(ir::Model& m) {
  ir::Graph& g = m.graph;
  int rewrites = 0;
  GraphView view(g);
  auto producer = [&](const std::string& name) -> ir::Node* {
    const int p = view.producer(name);
    return p < 0 ? nullptr : &g.nodes[static_cast<size_t>(p)];
  };
  auto only_reader = [&](const std::string& name) -> ir::Node* {
    const int r = view.single_reader(name);
    return r < 0 || view.read_by_subgraph(name) ? nullptr : &g.nodes[static_cast<size_t>(r)];
  };
  // The Transpose producing `name` for `reader` alone (its permutation), else nullptr.
  auto transpose_into = [&](const std::string& name, const ir::Node* reader) -> ir::Node* {
    ir::Node* t = producer(name);
    if (!t || !is_onnx(*t, "Transpose") || only_reader(name) != reader || attr_ints(*t, "perm").empty()) {
      return nullptr;
    }
    return t;
  };
  const int64_t opset = m.opset("").value_or(0);
  for (auto& sm : g.nodes) {
    if (!is_onnx(sm, "Softmax")) continue;
    // Scores -> [scale] -> Softmax -> MatMul with V.
    ir::Node* mm2 = only_reader(sm.outputs[0]);
    if (!mm2 || !is_onnx(*mm2, "MatMul") || mm2->inputs[0] != sm.outputs[0]) continue;
    float scale = 1.0f;
    ir::Node* post_scale = producer(sm.inputs[0]);
    ir::Node* mm1 = post_scale;
    if (post_scale && only_reader(post_scale->outputs[0]) == &sm) {
      const std::string in = post_scale->inputs.empty() ? "" : post_scale->inputs[0];
      const float s = scale_of(g, *post_scale, in);
      if (s != 0.0f) {
        scale = s;
        mm1 = producer(in);
      } else {
        post_scale = nullptr;
      }
    } else {
      post_scale = nullptr;
    }
    if (!mm1 || !is_onnx(*mm1, "MatMul") || only_reader(mm1->outputs[0]) != (post_scale ? post_scale : &sm)) continue;
    // Q may be scaled before the product instead.
    ir::Node* pre_scale = producer(mm1->inputs[0]);
    std::string q_in = mm1->inputs[0];
    if (pre_scale && only_reader(pre_scale->outputs[0]) == mm1 && !pre_scale->inputs.empty()) {
      const float s = scale_of(g, *pre_scale, pre_scale->inputs[0]);
      if (s != 0.0f) {
        scale *= s;
        q_in = pre_scale->inputs[0];
      } else {
        pre_scale = nullptr;
      }
    } else {
      pre_scale = nullptr;
    }
    ir::Node* tq = transpose_into(q_in, pre_scale ? pre_scale : mm1);
    ir::Node* tk = transpose_into(mm1->inputs[1], mm1);
    ir::Node* tv = transpose_into(mm2->inputs[1], mm2);
    if (!tq || !tk || !tv) continue;
    const std::vector<int64_t> q_perm = attr_ints(*tq, "perm"), k_perm = attr_ints(*tk, "perm"),
                               v_perm = attr_ints(*tv, "perm");
    const int64_t rank = static_cast<int64_t>(q_perm.size());
    if (rank < 3 || static_cast<int64_t>(k_perm.size()) != rank || static_cast<int64_t>(v_perm.size()) != rank) {
      continue;
    }
    const int64_t axis = attr_int(sm, "axis", opset >= 13 ? -1 : 1);
    if (axis != -1 && axis != rank - 1) continue;
    ir::Node* to = only_reader(mm2->outputs[0]);
    if (to && (!is_onnx(*to, "Transpose") || static_cast<int64_t>(attr_ints(*to, "perm").size()) != rank)) {
      to = nullptr;
    }
    ir::Node* last = to ? to : mm2;
    ir::Node att;
    att.op_type = "Attention";
    att.domain = kKilnDomain;
    att.name = mm1->name.empty() ? "" : mm1->name + "_attention";
    att.inputs = {tq->inputs[0], tk->inputs[0], tv->inputs[0]};
    att.outputs = {last->outputs[0]};
    ir::Attribute a;
    a.name = "scale";
    a.type = ir::AttrType::kFloat;
    a.f = scale;
    att.attributes.push_back(a);
    for (const auto& [name, node] :
         {std::pair<const char*, ir::Node*>{"q_perm", tq}, {"k_perm", tk}, {"v_perm", tv}, {"out_perm", to}}) {
      if (!node) continue;
      ir::Attribute p;
      p.name = name;
      p.type = ir::AttrType::kInts;
      p.ints = attr_ints(*node, "perm");
      att.attributes.push_back(p);
    }
    for (ir::Node* n : {tq, tk, tv, pre_scale, mm1, post_scale, &sm, mm2}) {
      if (n && n != last) mark_removed(*n);
    }
    *last = std::move(att);
    ++rewrites;
  }
  sweep_removed(g);
  if (rewrites) import_kiln_domain(m);
  return rewrites;
}

}  // namespace kiln::opt
