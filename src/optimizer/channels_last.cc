#include "optimizer/channels_last.h"

namespace kiln::opt {

bool nhwc_maxpool(const ir::Node& n) {
  if (!is_onnx(n, "MaxPool") || n.inputs.size() != 1 || attr_ints(n, "kernel_shape").size() != 2) return false;
  if (n.outputs.size() > 1 && !n.outputs[1].empty()) return false;
  const ir::Attribute* pad = n.attr("auto_pad");
  return !pad || pad->s.empty() || pad->s == "NOTSET";
}

ChannelsLast::ChannelsLast(ir::Graph& g, Convert to_nhwc, Convert to_plain)
    : g_(g), view_(g), to_nhwc_(std::move(to_nhwc)), to_plain_(std::move(to_plain)) {}

std::string ChannelsLast::need_nhwc(const std::string& v) {
  auto it = nhwc_.find(v);
  if (it != nhwc_.end()) return it->second;
  const std::string t = fresh_name(g_, v + "_nhwc");
  out_.push_back(to_nhwc_(v, t));
  nhwc_[v] = t;
  return t;
}

void ChannelsLast::need_plain(const std::string& v) {
  if (!plain_missing_.count(v)) return;
  out_.push_back(to_plain_(nhwc_.at(v), v));
  plain_missing_.erase(v);
}

void ChannelsLast::rewritten(ir::Node c, const std::string& op) {
  const std::string y = c.outputs[0];
  const std::string t = fresh_name(g_, y + "_nhwc");
  nhwc_[y] = t;
  plain_missing_.insert(y);
  c.op_type = op;
  c.domain = kKilnDomain;
  c.outputs = {t};
  out_.push_back(std::move(c));
  ++rewrites_;
  if (view_.is_graph_output(y) || view_.read_by_subgraph(y)) need_plain(y);
}

bool ChannelsLast::maxpool(const ir::Node& n) {
  if (!nhwc_maxpool(n) || !has(n.inputs[0])) return false;
  ir::Node p = n;
  p.inputs[0] = nhwc(n.inputs[0]);
  p.outputs.resize(1);
  rewritten(std::move(p), "NhwcMaxPool");
  return true;
}

void ChannelsLast::emit(ir::Node c) {
  out_.push_back(std::move(c));
  ++rewrites_;
}

void ChannelsLast::keep(const ir::Node& n) {
  for_each_read(n, [this](const std::string& v) { need_plain(v); });
  out_.push_back(n);
}

int ChannelsLast::finish(ir::Model& m) {
  for (const auto& o : g_.outputs) need_plain(o.name);
  if (rewrites_ == 0) return 0;
  g_.nodes = std::move(out_);
  import_kiln_domain(m);
  return rewrites_;
}

}  // namespace kiln::opt
