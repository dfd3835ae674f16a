// The bookkeeping shared by the passes that move values to a channels-last form (layout_nhwc_int8,
// layout_nhwc_bf16): which values have that form, the conversions at the boundaries (made once per value, by the
// pass's own node builders), and the rewritten node list.
#pragma once

#include <functional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "optimizer/graph_util.h"

namespace kiln::opt {

// A MaxPool that ai.kiln NhwcMaxPool computes on a channels-last input: 2-D, without the Indices output, explicit
// pads.
bool nhwc_maxpool(const ir::Node& n);

class ChannelsLast {
 public:
  // A node that converts value `from` into value `to` (named by the caller).
  using Convert = std::function<ir::Node(const std::string& from, const std::string& to)>;

  ChannelsLast(ir::Graph& g, Convert to_nhwc, Convert to_plain);

  // Whether value v has a channels-last form, and its name.
  bool has(const std::string& v) const { return nhwc_.count(v) > 0; }
  const std::string& nhwc(const std::string& v) const { return nhwc_.at(v); }
  // v's channels-last form, converted here the first time it is asked for.
  std::string need_nhwc(const std::string& v);
  // Converts v back where it so far exists only channels-last.
  void need_plain(const std::string& v);
  // Emits `c` as op `op` of the kiln domain, its output 0 the channels-last form of the original output (converted
  // back at once where a graph output or a subgraph reads it).
  void rewritten(ir::Node c, const std::string& op);
  // A MaxPool that nhwc_maxpool() takes, of a value with a channels-last form: emits it as ai.kiln NhwcMaxPool of
  // that form and returns true; else false (nothing emitted).
  bool maxpool(const ir::Node& n);
  // Emits `c`, a node that reads channels-last values and writes plain ones (counted as a rewrite).
  void emit(ir::Node c);
  // Emits a node unchanged, after the conversions back of the values it reads.
  void keep(const ir::Node& n);
  // Converts the graph outputs back, installs the rewritten nodes when there was a rewrite, and returns how many.
  int finish(ir::Model& m);

 private:
  ir::Graph& g_;
  GraphView view_;
  Convert to_nhwc_, to_plain_;
  std::unordered_map<std::string, std::string> nhwc_;  // value -> its channels-last form
  std::unordered_set<std::string> plain_missing_;      // values that so far exist only channels-last
  std::vector<ir::Node> out_;
  int rewrites_ = 0;
};

}  // namespace kiln::opt
