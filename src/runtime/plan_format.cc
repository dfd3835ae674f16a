// The .kplan file through the FlatBuffers code flatc generates from schema/plan.fbs.
#include "runtime/plan_format.h"

#include <cstring>
#include <map>
#include <utility>

#include "kiln/core/dtype.h"
#include "plan_generated.h"

namespace kiln {

uint64_t checksum64(const void* data, size_t size) {
  // Four independent lanes of 8-byte words (xxHash64's round), merged; then the tail. Fast enough to check a
  // plan's weights at memory speed.
  constexpr uint64_t kP1 = 0x9E3779B185EBCA87ULL, kP2 = 0xC2B2AE3D27D4EB4FULL, kP3 = 0x165667B19E3779F9ULL;
  auto rotl = [](uint64_t x, int r) { return (x << r) | (x >> (64 - r)); };
  auto round = [&](uint64_t acc, uint64_t in) { return rotl(acc + in * kP2, 31) * kP1; };
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t lane[4] = {kP1 + kP2, kP2, 0, 0 - kP1};
  size_t i = 0;
  for (; i + 32 <= size; i += 32) {
    for (int l = 0; l < 4; ++l) {
      uint64_t w;
      std::memcpy(&w, p + i + 8 * l, 8);
      lane[l] = round(lane[l], w);
    }
  }
  uint64_t h = rotl(lane[0], 1) + rotl(lane[1], 7) + rotl(lane[2], 12) + rotl(lane[3], 18);
  for (uint64_t l : lane) h = (h ^ round(0, l)) * kP1 + kP3;
  h += size;
  for (; i + 8 <= size; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = rotl(h ^ round(0, w), 27) * kP1 + kP3;
  }
  for (; i < size; ++i) h = rotl(h ^ (p[i] * kP3), 11) * kP1;
  h ^= h >> 33;
  h *= kP2;
  h ^= h >> 29;
  h *= kP3;
  h ^= h >> 32;
  return h;
}

uint32_t plan_format_version() { return plan::kFormatVersion; }

namespace plan {
namespace {

namespace fb = kiln::plan_format;
using flatbuffers::FlatBufferBuilder;
using flatbuffers::Offset;
using flatbuffers::String;
using flatbuffers::Vector;

template <typename T>
void put(std::string& out, size_t at, T v) {
  std::memcpy(out.data() + at, &v, sizeof v);
}

size_t align_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

struct Writer {
  FlatBufferBuilder b{1 << 16};
  std::string weights;
  const std::vector<NodeKernels>* kernels = nullptr;
  size_t next_node = 0;
  int64_t tensors = 0;
  std::map<std::pair<const void*, size_t>, uint64_t> written;  // tensor bytes already in `weights`: their offset

  // A vector of the tables (or strings) `make` writes for each element of `v`.
  template <typename T, typename Make>
  auto list(const std::vector<T>& v, Make make) {
    std::vector<decltype(make(std::declval<const T&>()))> o;
    o.reserve(v.size());
    for (const auto& x : v) o.push_back(make(x));
    return b.CreateVector(o);
  }

  Offset<String> str(const std::string& s) { return b.CreateString(s); }
  Offset<Vector<Offset<String>>> strs(const std::vector<std::string>& v) {
    return list(v, [this](const std::string& x) { return str(x); });
  }
  Offset<fb::Bytes> bytes(const std::string& s) {
    return fb::CreateBytes(b, b.CreateVector(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
  }
  Offset<Vector<Offset<fb::Bytes>>> bytes_list(const std::vector<std::string>& v) {
    return list(v, [this](const std::string& x) { return bytes(x); });
  }

  Offset<fb::Type> type(const ir::Type& t) {
    std::vector<Offset<fb::Dim>> dims;
    if (t.shape) {
      for (const Dim& d : t.shape->dims()) {
        const fb::DimKind kind = d.is_known()      ? fb::DimKind_Known
                                 : d.is_symbolic() ? fb::DimKind_Symbolic
                                                   : fb::DimKind_Unknown;
        dims.push_back(fb::CreateDim(b, kind, d.is_known() ? d.value() : 0, d.is_symbolic() ? str(d.symbol()) : 0));
      }
    }
    const auto shape = b.CreateVector(dims);
    const auto denotations = strs(t.dim_denotations);
    const Offset<fb::Type> value = t.value_type ? type(*t.value_type) : 0;
    const auto denotation = str(t.denotation);
    return fb::CreateType(b, static_cast<fb::TypeKind>(t.kind), static_cast<int32_t>(t.elem_type), t.shape.has_value(),
                          shape, denotations, static_cast<int32_t>(t.key_type), value, denotation);
  }
  Offset<Vector<Offset<fb::Type>>> types(const std::vector<ir::Type>& v) {
    return list(v, [this](const ir::Type& t) { return type(t); });
  }

  Offset<fb::Tensor> tensor(const ir::NamedTensor& nt) {
    const Tensor& t = nt.tensor;
    uint64_t offset = 0, nbytes = 0, sum = 0;
    Offset<Vector<Offset<fb::Bytes>>> strings = 0;
    if (t.dtype() == DType::kString) {
      strings = bytes_list(t.strings());
    } else {
      nbytes = t.nbytes();
      sum = checksum64(t.raw_data(), nbytes);
      // Tensors that share their bytes (the optimizer's views of one initializer, a weight the layers of a model
      // share) share them in the file too.
      const auto [at, fresh] = written.try_emplace({t.raw_data(), nbytes}, 0);
      if (fresh) {
        if (nbytes) weights.resize(align_up(weights.size(), kWeightAlign));  // an empty tensor takes no padding
        at->second = align_up(weights.size(), kWeightAlign);
        if (nbytes) weights.append(static_cast<const char*>(t.raw_data()), nbytes);
      }
      offset = at->second;
      ++tensors;
    }
    const auto name = str(nt.name);
    const auto dims = b.CreateVector(t.dims());
    const auto doc = str(nt.doc_string);
    return fb::CreateTensor(b, name, static_cast<int32_t>(t.dtype()), dims, offset, nbytes, sum, strings, doc,
                            nt.stored_as_raw);
  }
  Offset<Vector<Offset<fb::Tensor>>> tensor_list(const std::vector<ir::NamedTensor>& v) {
    return list(v, [this](const ir::NamedTensor& t) { return tensor(t); });
  }
  Offset<fb::SparseTensor> sparse(const ir::SparseTensor& s) {
    const auto values = tensor(s.values);
    const auto indices = tensor(s.indices);
    return fb::CreateSparseTensor(b, values, indices, b.CreateVector(s.dims));
  }
  Offset<Vector<Offset<fb::SparseTensor>>> sparse_list(const std::vector<ir::SparseTensor>& v) {
    return list(v, [this](const ir::SparseTensor& x) { return sparse(x); });
  }
  Offset<Vector<Offset<fb::ValueInfo>>> value_infos(const std::vector<ir::ValueInfo>& v) {
    return list(v, [this](const ir::ValueInfo& vi) {
      const auto name = str(vi.name);
      const auto t = type(vi.type);
      const auto doc = str(vi.doc_string);
      return fb::CreateValueInfo(b, name, t, doc);
    });
  }

  Offset<fb::Attribute> attribute(const ir::Attribute& a) {
    const auto name = str(a.name);
    const auto doc = str(a.doc_string);
    const auto ref = str(a.ref_attr_name);
    const auto s = b.CreateVector(reinterpret_cast<const uint8_t*>(a.s.data()), a.s.size());
    const Offset<fb::Tensor> t = a.type == ir::AttrType::kTensor ? tensor(a.t) : 0;
    const Offset<fb::Graph> g = a.g ? graph(*a.g) : 0;
    const Offset<fb::SparseTensor> st = a.type == ir::AttrType::kSparseTensor ? sparse(a.sparse_tensor) : 0;
    const Offset<fb::Type> tp = a.type == ir::AttrType::kTypeProto ? type(a.tp) : 0;
    const auto floats = b.CreateVector(a.floats);
    const auto ints = b.CreateVector(a.ints);
    const auto strings = bytes_list(a.strings);
    const auto tensors = tensor_list(a.tensors);
    std::vector<Offset<fb::Graph>> gs;
    for (const auto& sub : a.graphs) gs.push_back(sub ? graph(*sub) : 0);
    const auto graphs = b.CreateVector(gs);
    const auto sparse_tensors = sparse_list(a.sparse_tensors);
    const auto tps = types(a.tps);
    return fb::CreateAttribute(b, name, static_cast<int32_t>(a.type), doc, ref, a.f, a.i, s, t, g, st, tp, floats, ints,
                               strings, tensors, graphs, sparse_tensors, tps);
  }

  Offset<fb::Node> node(const ir::Node& n) {
    // The node's kernels first: its subgraphs' nodes come after it (for_each_node's order).
    const size_t index = next_node++;
    Offset<Vector<Offset<String>>> ks = 0, ds = 0;
    Offset<Vector<Offset<fb::InputDims>>> shapes = 0;
    if (kernels && index < kernels->size()) {
      ks = strs((*kernels)[index].kernels);
      ds = strs((*kernels)[index].details);
      shapes = list((*kernels)[index].input_shapes,
                    [this](const std::vector<int64_t>& s) { return fb::CreateInputDims(b, b.CreateVector(s)); });
    }
    const auto name = str(n.name);
    const auto op = str(n.op_type);
    const auto domain = str(n.domain);
    const auto inputs = strs(n.inputs);
    const auto outputs = strs(n.outputs);
    const auto attributes = list(n.attributes, [this](const ir::Attribute& a) { return attribute(a); });
    const auto doc = str(n.doc_string);
    return fb::CreateNode(b, name, op, domain, inputs, outputs, attributes, doc, ks, ds, shapes);
  }
  Offset<Vector<Offset<fb::Node>>> nodes(const std::vector<ir::Node>& v) {
    return list(v, [this](const ir::Node& n) { return node(n); });
  }

  Offset<fb::Graph> graph(const ir::Graph& g) {
    const auto name = str(g.name);
    const auto doc = str(g.doc_string);
    const auto ns = nodes(g.nodes);
    const auto inputs = value_infos(g.inputs);
    const auto outputs = value_infos(g.outputs);
    const auto vi = value_infos(g.value_info);
    const auto inits = tensor_list(g.initializers);
    const auto sparse_inits = sparse_list(g.sparse_initializers);
    return fb::CreateGraph(b, name, doc, ns, inputs, outputs, vi, inits, sparse_inits);
  }

  Offset<Vector<Offset<fb::OpsetImport>>> opsets(const std::vector<ir::OpsetImport>& v) {
    return list(v, [this](const ir::OpsetImport& op) {
      const auto d = str(op.domain);
      return fb::CreateOpsetImport(b, d, op.version);
    });
  }

  Offset<fb::Model> model(const ir::Model& m) {
    const auto opset = opsets(m.opset_import);
    const auto producer = str(m.producer_name);
    const auto producer_version = str(m.producer_version);
    const auto domain = str(m.domain);
    const auto doc = str(m.doc_string);
    // Functions before the graph: the node order of for_each_node covers the main graph only (a session runs a
    // function's nodes inlined, with kernels chosen at run time).
    const size_t saved = next_node;
    const auto* saved_kernels = kernels;
    kernels = nullptr;
    std::vector<Offset<fb::Function>> fs;
    for (const auto& f : m.functions) {
      const auto fname = str(f.name);
      const auto fdomain = str(f.domain);
      const auto fdoc = str(f.doc_string);
      const auto fin = strs(f.inputs);
      const auto fout = strs(f.outputs);
      const auto fattrs = strs(f.attributes);
      const auto fnodes = nodes(f.nodes);
      const auto fopsets = opsets(f.opset_import);
      fs.push_back(fb::CreateFunction(b, fname, fdomain, fdoc, fin, fout, fattrs, fnodes, fopsets));
    }
    kernels = saved_kernels;
    next_node = saved;
    const auto functions = b.CreateVector(fs);
    const auto g = graph(m.graph);
    std::vector<Offset<fb::StringPair>> props;
    for (const auto& [k, v] : m.metadata_props) {
      const auto key = str(k);
      const auto value = str(v);
      props.push_back(fb::CreateStringPair(b, key, value));
    }
    const auto metadata = b.CreateVector(props);
    return fb::CreateModel(b, m.ir_version, opset, producer, producer_version, domain, m.model_version, doc, g,
                           metadata, functions);
  }

  Offset<Vector<Offset<fb::Profile>>> profiles(const std::vector<ShapeProfile>& v) {
    std::vector<Offset<fb::Profile>> o;
    for (const auto& p : v) {
      std::vector<Offset<fb::ProfileInput>> ins;
      for (const auto& i : p.inputs) {
        const auto name = str(i.name);
        ins.push_back(
            fb::CreateProfileInput(b, name, b.CreateVector(i.min), b.CreateVector(i.opt), b.CreateVector(i.max)));
      }
      const auto name = str(p.name);
      o.push_back(fb::CreateProfile(b, name, b.CreateVector(ins)));
    }
    return b.CreateVector(o);
  }
};

}  // namespace

void for_each_node(const ir::Graph& g, const std::function<void(const ir::Node&)>& fn) {
  for (const auto& n : g.nodes) {
    fn(n);
    for (const auto& a : n.attributes) {
      if (a.g) for_each_node(*a.g, fn);
      for (const auto& sub : a.graphs) {
        if (sub) for_each_node(*sub, fn);
      }
    }
  }
}

StatusOr<std::string> write(const ir::Model& model, PlanInfo& info, const std::vector<NodeKernels>& kernels,
                            const std::vector<Prepared>& prepared, const std::vector<MemoryPlanEntry>& memory) {
  Writer w;
  w.kernels = &kernels;
  const auto m = w.model(model);
  const auto profiles = w.profiles(info.profiles);
  auto& b = w.b;
  std::vector<Offset<fb::Prepared>> prepared_list;
  for (const Prepared& p : prepared) {
    std::vector<Offset<fb::PreparedArray>> arrays;
    for (const auto& [data, count] : p.arrays) {
      const size_t bytes = static_cast<size_t>(count) * sizeof(float);
      w.weights.resize(align_up(w.weights.size(), kWeightAlign));
      const uint64_t offset = w.weights.size();
      w.weights.append(reinterpret_cast<const char*>(data), bytes);
      arrays.push_back(fb::CreatePreparedArray(b, offset, static_cast<uint64_t>(count), checksum64(data, bytes)));
    }
    const auto weight = w.str(p.weight);
    const auto fields = b.CreateVector(p.fields);
    const auto meta = b.CreateVector(p.meta);
    const auto list = b.CreateVector(arrays);
    prepared_list.push_back(fb::CreatePrepared(b, p.kind, weight, fields, meta, list));
  }
  const auto prepared_vec = b.CreateVector(prepared_list);
  const auto memory_vec = w.list(memory, [&b](const MemoryPlanEntry& e) {
    std::vector<Offset<fb::InputDims>> sig;
    for (const auto& d : e.signature) sig.push_back(fb::CreateInputDims(b, b.CreateVector(d)));
    const auto sig_vec = b.CreateVector(sig);
    std::vector<fb::MemoryBlock> blocks;
    for (const auto& k : e.blocks) blocks.emplace_back(k.key, k.size, k.offset, k.index);
    const auto block_vec = b.CreateVectorOfStructs(blocks);
    return fb::CreateMemoryPlan(b, sig_vec, e.total, block_vec);
  });
  const auto kiln_version = w.str(info.kiln_version);
  const auto source = w.str(info.source_name);
  const auto isa = w.str(info.isa);
  const auto features = w.strs(info.cpu_features);
  const auto cpu = w.str(info.cpu_name);
  const auto precision = w.str(info.precision);
  const auto created = w.str(info.created);
  const auto build = fb::CreateBuildInfo(b, kiln_version, source, info.source_hash, isa, features, cpu, info.threads,
                                         precision, info.portable, info.optimization_level, info.tuned, info.build_ms,
                                         info.tune_ms, info.tuned_configs, created);
  b.Finish(fb::CreatePlan(b, build, m, profiles, prepared_vec, memory_vec), fb::PlanIdentifier());

  const size_t graph_bytes = b.GetSize();
  const size_t weights_at = align_up(kHeaderBytes + graph_bytes, 4096);
  std::string out(weights_at, '\0');
  std::memcpy(out.data() + kHeaderBytes, b.GetBufferPointer(), graph_bytes);
  out += w.weights;
  std::memcpy(out.data(), kMagic, sizeof kMagic);
  put<uint32_t>(out, kVersionAt, kFormatVersion);
  put<uint32_t>(out, kHeaderSizeAt, static_cast<uint32_t>(kHeaderBytes));
  put<uint64_t>(out, kGraphAt, kHeaderBytes);
  put<uint64_t>(out, kGraphBytesAt, graph_bytes);
  put<uint64_t>(out, kWeightsAt, weights_at);
  put<uint64_t>(out, kWeightBytesAt, w.weights.size());
  put<uint64_t>(out, kGraphSumAt, checksum64(b.GetBufferPointer(), graph_bytes));
  put<uint64_t>(out, kHeaderSumAt, checksum64(out.data(), kHeaderSumAt));
  info.format_version = kFormatVersion;
  info.file_bytes = out.size();
  info.graph_bytes = graph_bytes;
  info.weight_bytes = w.weights.size();
  info.weight_tensors = w.tensors;
  return out;
}

}  // namespace plan
}  // namespace kiln
