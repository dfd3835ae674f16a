// Reading a .kplan: the header's checks, the FlatBuffers verifier, then kiln's own bounds checks while the graph is
// rebuilt as an ir::Model whose tensors view the file's weights section.
#include <cstring>

#include "kiln/core/dtype.h"
#include "plan_generated.h"
#include "runtime/plan_format.h"

namespace kiln::plan {
namespace {

namespace fb = kiln::plan_format;

std::string s(const flatbuffers::String* v) { return v ? v->str() : std::string(); }
std::string s(const flatbuffers::Vector<uint8_t>* v) {
  return v ? std::string(reinterpret_cast<const char*>(v->data()), v->size()) : std::string();
}

// FlatBuffers vectors of scalars are read element by element (the verifier checks their length, not that an
// int64 vector is 8-byte aligned in the file).
template <typename T>
std::vector<T> vec(const flatbuffers::Vector<T>* v) {
  std::vector<T> out;
  if (!v) return out;
  out.resize(v->size());
  if (!out.empty()) std::memcpy(out.data(), v->Data(), out.size() * sizeof(T));
  return out;
}

std::vector<std::string> strs(const flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>* v) {
  std::vector<std::string> out;
  if (v) {
    for (const auto* x : *v) out.push_back(s(x));
  }
  return out;
}

struct Reader {
  std::shared_ptr<Buffer> file;
  size_t weights_at = 0;
  uint64_t weight_bytes = 0;
  std::string what;
  std::vector<NodeKernels>* kernels = nullptr;
  int64_t tensors = 0;

  Status fail(const std::string& msg) const { return invalid_model(what + ": " + msg); }

  StatusOr<ir::Type> type(const fb::Type* t, int depth) {
    ir::Type out;
    if (!t) return out;
    if (depth > 64) return fail("a type nests more than 64 levels");
    const int kind = t->kind();
    if (kind < 0 || kind > static_cast<int>(ir::Type::Kind::kOptional)) {
      return fail("a type has kind " + std::to_string(kind));
    }
    out.kind = static_cast<ir::Type::Kind>(kind);
    for (const int32_t code : {t->elem_type(), t->key_type()}) {
      if (code != 0 && !dtype_is_valid(code)) return fail("a type has element type " + std::to_string(code));
    }
    out.elem_type = static_cast<DType>(t->elem_type());
    out.key_type = static_cast<DType>(t->key_type());
    if (t->has_shape()) {
      Shape shape;
      if (t->shape()) {
        for (const fb::Dim* d : *t->shape()) {
          if (d->kind() == fb::DimKind_Known) {
            shape.push_back(Dim(d->value()));
          } else if (d->kind() == fb::DimKind_Symbolic) {
            shape.push_back(Dim::symbolic(s(d->symbol())));
          } else {
            shape.push_back(Dim());
          }
        }
      }
      out.shape = std::move(shape);
    }
    out.dim_denotations = strs(t->dim_denotations());
    if (t->value_type()) {
      KILN_ASSIGN_OR_RETURN(auto inner, type(t->value_type(), depth + 1));
      out.value_type = std::make_shared<ir::Type>(std::move(inner));
    }
    out.denotation = s(t->denotation());
    return out;
  }

  StatusOr<ir::NamedTensor> tensor(const fb::Tensor* t) {
    ir::NamedTensor out;
    if (!t) return out;
    out.name = s(t->name());
    out.doc_string = s(t->doc_string());
    out.stored_as_raw = t->stored_as_raw();
    const std::string which = "tensor '" + out.name + "'";
    const int code = t->dtype();
    if (!dtype_is_valid(code) || code == static_cast<int>(DType::kUndefined)) {
      return fail(which + " has data type " + std::to_string(code));
    }
    const auto dtype = static_cast<DType>(code);
    std::vector<int64_t> dims = vec(t->dims());
    const auto n = checked_num_elements(dims);
    if (!n) return fail(which + " has shape " + dims_to_string(dims));
    if (dtype == DType::kString) {
      const size_t have = t->strings() ? t->strings()->size() : 0;
      if (static_cast<int64_t>(have) != *n) {
        return fail(which + " has " + std::to_string(have) + " strings for shape " + dims_to_string(dims));
      }
      std::vector<std::string> values;
      values.reserve(have);
      for (const fb::Bytes* b : *t->strings()) values.push_back(b ? s(b->data()) : std::string());
      out.tensor = Tensor::from_strings(std::move(dims), std::move(values));
      return out;
    }
    const size_t want = dtype_storage_bytes(dtype, *n);
    if (t->nbytes() != want) {
      return fail(which + " (" + dtype_name(dtype) + dims_to_string(dims) + ") records " + std::to_string(t->nbytes()) +
                  " bytes; expected " + std::to_string(want));
    }
    if (t->offset() % kWeightAlign != 0 ||
        (want && (t->offset() > weight_bytes || want > weight_bytes - t->offset()))) {
      return fail(which + " lies outside the weights section (offset " + std::to_string(t->offset()) + ", " +
                  std::to_string(want) + " bytes, section of " + std::to_string(weight_bytes) +
                  " bytes): the file is truncated or corrupt");
    }
    if (want == 0) {  // no bytes to view (an empty roi, a zero-size dimension)
      KILN_ASSIGN_OR_RETURN(out.tensor, Tensor::allocate(dtype, std::move(dims)));
      return out;
    }
    out.tensor = Tensor::from_buffer(dtype, std::move(dims), file, weights_at + t->offset());
    ++tensors;
    return out;
  }

  // What `read` makes of each table of `v` (null: none), in order; the first error stops it.
  template <typename Out, typename In, typename Read>
  StatusOr<std::vector<Out>> list(const flatbuffers::Vector<flatbuffers::Offset<In>>* v, Read read) {
    std::vector<Out> out;
    if (!v) return out;
    for (const In* x : *v) {
      KILN_ASSIGN_OR_RETURN(Out item, read(x));
      out.push_back(std::move(item));
    }
    return out;
  }

  StatusOr<std::vector<ir::NamedTensor>> tensor_list(const flatbuffers::Vector<flatbuffers::Offset<fb::Tensor>>* v) {
    return list<ir::NamedTensor>(v, [this](const fb::Tensor* t) { return tensor(t); });
  }

  StatusOr<ir::SparseTensor> sparse(const fb::SparseTensor* st) {
    ir::SparseTensor out;
    if (!st) return out;
    KILN_ASSIGN_OR_RETURN(out.values, tensor(st->values()));
    KILN_ASSIGN_OR_RETURN(out.indices, tensor(st->indices()));
    out.dims = vec(st->dims());
    return out;
  }

  StatusOr<std::vector<ir::SparseTensor>> sparse_list(
      const flatbuffers::Vector<flatbuffers::Offset<fb::SparseTensor>>* v) {
    return list<ir::SparseTensor>(v, [this](const fb::SparseTensor* x) { return sparse(x); });
  }

  StatusOr<std::vector<ir::ValueInfo>> value_infos(const flatbuffers::Vector<flatbuffers::Offset<fb::ValueInfo>>* v) {
    std::vector<ir::ValueInfo> out;
    if (!v) return out;
    for (const auto* x : *v) {
      ir::ValueInfo vi;
      vi.name = s(x->name());
      KILN_ASSIGN_OR_RETURN(vi.type, type(x->type(), 0));
      vi.doc_string = s(x->doc_string());
      out.push_back(std::move(vi));
    }
    return out;
  }

  StatusOr<ir::Attribute> attribute(const fb::Attribute* a, int depth) {
    ir::Attribute out;
    out.name = s(a->name());
    const int code = a->type();
    if (code < 0 || code > static_cast<int>(ir::AttrType::kTypeProtos)) {
      return fail("attribute '" + out.name + "' has type " + std::to_string(code));
    }
    out.type = static_cast<ir::AttrType>(code);
    out.doc_string = s(a->doc_string());
    out.ref_attr_name = s(a->ref_attr_name());
    out.f = a->f();
    out.i = a->i();
    out.s = s(a->s());
    if (a->t()) {
      KILN_ASSIGN_OR_RETURN(out.t, tensor(a->t()));
    }
    if (a->g()) {
      KILN_ASSIGN_OR_RETURN(auto g, graph(a->g(), depth + 1));
      out.g = std::make_shared<ir::Graph>(std::move(g));
    }
    if (a->sparse_tensor()) {
      KILN_ASSIGN_OR_RETURN(out.sparse_tensor, sparse(a->sparse_tensor()));
    }
    if (a->tp()) {
      KILN_ASSIGN_OR_RETURN(out.tp, type(a->tp(), 0));
    }
    out.floats = vec(a->floats());
    out.ints = vec(a->ints());
    if (a->strings()) {
      for (const auto* b : *a->strings()) out.strings.push_back(b ? s(b->data()) : std::string());
    }
    KILN_ASSIGN_OR_RETURN(out.tensors, tensor_list(a->tensors()));
    if (a->graphs()) {
      for (const auto* g : *a->graphs()) {
        KILN_ASSIGN_OR_RETURN(auto sub, graph(g, depth + 1));
        out.graphs.push_back(std::make_shared<ir::Graph>(std::move(sub)));
      }
    }
    KILN_ASSIGN_OR_RETURN(out.sparse_tensors, sparse_list(a->sparse_tensors()));
    if (a->tps()) {
      for (const auto* t : *a->tps()) {
        KILN_ASSIGN_OR_RETURN(auto x, type(t, 0));
        out.tps.push_back(std::move(x));
      }
    }
    return out;
  }

  StatusOr<std::vector<ir::Node>> nodes(const flatbuffers::Vector<flatbuffers::Offset<fb::Node>>* v, int depth) {
    std::vector<ir::Node> out;
    if (!v) return out;
    for (const fb::Node* n : *v) {
      ir::Node node;
      node.name = s(n->name());
      node.op_type = s(n->op_type());
      node.domain = s(n->domain());
      node.inputs = strs(n->inputs());
      node.outputs = strs(n->outputs());
      node.doc_string = s(n->doc_string());
      if (kernels) {
        NodeKernels k{strs(n->kernels()), strs(n->kernel_details()), {}};
        if (n->input_shapes()) {
          for (const fb::InputDims* d : *n->input_shapes()) k.input_shapes.push_back(vec(d->dims()));
        }
        kernels->push_back(std::move(k));
      }
      if (n->attributes()) {
        for (const auto* a : *n->attributes()) {
          KILN_ASSIGN_OR_RETURN(auto attr, attribute(a, depth));
          node.attributes.push_back(std::move(attr));
        }
      }
      out.push_back(std::move(node));
    }
    return out;
  }

  StatusOr<ir::Graph> graph(const fb::Graph* g, int depth) {
    ir::Graph out;
    if (!g) return out;
    if (depth > 64) return fail("subgraphs nest more than 64 levels");
    out.name = s(g->name());
    out.doc_string = s(g->doc_string());
    KILN_ASSIGN_OR_RETURN(out.nodes, nodes(g->nodes(), depth));
    KILN_ASSIGN_OR_RETURN(out.inputs, value_infos(g->inputs()));
    KILN_ASSIGN_OR_RETURN(out.outputs, value_infos(g->outputs()));
    KILN_ASSIGN_OR_RETURN(out.value_info, value_infos(g->value_info()));
    KILN_ASSIGN_OR_RETURN(out.initializers, tensor_list(g->initializers()));
    KILN_ASSIGN_OR_RETURN(out.sparse_initializers, sparse_list(g->sparse_initializers()));
    return out;
  }

  std::vector<ir::OpsetImport> opsets(const flatbuffers::Vector<flatbuffers::Offset<fb::OpsetImport>>* v) {
    std::vector<ir::OpsetImport> out;
    if (v) {
      for (const auto* o : *v) out.push_back({s(o->domain()), o->version()});
    }
    return out;
  }

  StatusOr<ir::Model> model(const fb::Model* m) {
    ir::Model out;
    if (!m || !m->graph()) return fail("the plan holds no graph");
    out.ir_version = m->ir_version();
    out.opset_import = opsets(m->opset_import());
    out.producer_name = s(m->producer_name());
    out.producer_version = s(m->producer_version());
    out.domain = s(m->domain());
    out.model_version = m->model_version();
    out.doc_string = s(m->doc_string());
    if (m->functions()) {
      std::vector<NodeKernels>* saved = kernels;
      kernels = nullptr;  // functions record no kernels
      for (const auto* f : *m->functions()) {
        ir::Function fn;
        fn.name = s(f->name());
        fn.domain = s(f->domain());
        fn.doc_string = s(f->doc_string());
        fn.inputs = strs(f->inputs());
        fn.outputs = strs(f->outputs());
        fn.attributes = strs(f->attributes());
        KILN_ASSIGN_OR_RETURN(fn.nodes, nodes(f->nodes(), 1));
        fn.opset_import = opsets(f->opset_import());
        out.functions.push_back(std::move(fn));
      }
      kernels = saved;
    }
    KILN_ASSIGN_OR_RETURN(out.graph, graph(m->graph(), 0));
    if (m->metadata_props()) {
      for (const auto* p : *m->metadata_props()) out.metadata_props.emplace_back(s(p->key()), s(p->value()));
    }
    return out;
  }
};

// The header's checks, then the FlatBuffer's: the verified root, and the weights section's place.
struct Sections {
  const fb::Plan* plan = nullptr;
  size_t weights_at = 0;
  uint64_t weight_bytes = 0;
  uint64_t graph_bytes = 0;
};

StatusOr<Sections> open_sections(const std::shared_ptr<Buffer>& file, const std::string& what) {
  auto fail = [&](const std::string& msg) { return invalid_model(what + ": " + msg); };
  const uint8_t* p = file->data();
  const size_t size = file->size();
  if (size < sizeof kMagic || std::memcmp(p, kMagic, sizeof kMagic) != 0) {
    return invalid_argument(what +
                            ": not a kiln plan (expected the magic \"KILNPLAN\" at byte 0; build one with "
                            "kiln build MODEL.onnx -O MODEL.kplan)");
  }
  if (size < kHeaderBytes) {
    return fail("truncated: " + std::to_string(size) + " bytes, shorter than the " + std::to_string(kHeaderBytes) +
                "-byte header");
  }
  const auto version = header_field<uint32_t>(p, kVersionAt);
  if (version != kFormatVersion) {
    return invalid_model(what + ": plan format version " + std::to_string(version) + "; this kiln reads version " +
                         std::to_string(kFormatVersion) + " (rebuild the plan with this kiln's kiln build)");
  }
  if (checksum64(p, kHeaderSumAt) != header_field<uint64_t>(p, kHeaderSumAt)) {
    return fail("the header is corrupt (its checksum does not match)");
  }
  Sections out;
  const auto graph_at = header_field<uint64_t>(p, kGraphAt);
  out.graph_bytes = header_field<uint64_t>(p, kGraphBytesAt);
  const auto weights_at = header_field<uint64_t>(p, kWeightsAt);
  out.weight_bytes = header_field<uint64_t>(p, kWeightBytesAt);
  if (graph_at != kHeaderBytes || out.graph_bytes > size - graph_at || weights_at < graph_at + out.graph_bytes ||
      weights_at % kWeightAlign != 0) {
    return fail("the header's sections do not fit its " + std::to_string(size) + " bytes");
  }
  if (weights_at > size || out.weight_bytes > size - weights_at) {
    return fail("truncated: the weights section needs " + std::to_string(weights_at + out.weight_bytes) +
                " bytes, the file has " + std::to_string(size));
  }
  const uint8_t* graph = p + graph_at;
  if (checksum64(graph, out.graph_bytes) != header_field<uint64_t>(p, kGraphSumAt)) {
    return fail("the graph section is corrupt (its checksum does not match)");
  }
  if (out.graph_bytes < 8 || !fb::PlanBufferHasIdentifier(graph)) {
    return fail("the graph section is not a plan (file identifier \"KPLN\")");
  }
  flatbuffers::Verifier verifier(graph, out.graph_bytes, /*max_depth=*/512, /*max_tables=*/1 << 26);
  if (!fb::VerifyPlanBuffer(verifier)) return fail("the graph section's structure is corrupt (FlatBuffers verifier)");
  out.plan = fb::GetPlan(graph);
  out.weights_at = weights_at;
  return out;
}

}  // namespace

StatusOr<Contents> read(const std::shared_ptr<Buffer>& file, const std::string& what, bool metadata_only) {
  KILN_ASSIGN_OR_RETURN(Sections sec, open_sections(file, what));
  Contents out;
  PlanInfo& info = out.info;
  info.format_version = kFormatVersion;
  info.file_bytes = file->size();
  info.graph_bytes = sec.graph_bytes;
  info.weight_bytes = sec.weight_bytes;
  if (const fb::BuildInfo* b = sec.plan->build()) {
    info.kiln_version = s(b->kiln_version());
    info.source_name = s(b->source_name());
    info.source_hash = b->source_hash();
    info.isa = s(b->isa());
    info.cpu_features = strs(b->cpu_features());
    info.cpu_name = s(b->cpu_name());
    info.threads = b->threads();
    info.precision = s(b->precision());
    info.portable = b->portable();
    info.optimization_level = b->optimization_level();
    info.tuned = b->tuned();
    info.build_ms = b->build_ms();
    info.tune_ms = b->tune_ms();
    info.tuned_configs = b->tuned_configs();
    info.created = s(b->created());
  }
  if (sec.plan->profiles()) {
    for (const fb::Profile* p : *sec.plan->profiles()) {
      ShapeProfile profile;
      profile.name = s(p->name());
      if (p->inputs()) {
        for (const fb::ProfileInput* i : *p->inputs()) {
          ShapeProfile::Input in{s(i->name()), vec(i->min()), vec(i->opt()), vec(i->max())};
          if (in.min.size() != in.opt.size() || in.min.size() != in.max.size()) {
            return invalid_model(what + ": profile '" + profile.name + "' input '" + in.name +
                                 "' has shapes of different ranks");
          }
          profile.inputs.push_back(std::move(in));
        }
      }
      info.profiles.push_back(std::move(profile));
    }
  }
  if (metadata_only) return out;
  Reader r{file, sec.weights_at, sec.weight_bytes, what, &out.kernels, 0};
  KILN_ASSIGN_OR_RETURN(out.model, r.model(sec.plan->model()));
  info.weight_tensors = r.tensors;
  if (sec.plan->memory()) {
    for (const fb::MemoryPlan* m : *sec.plan->memory()) {
      MemoryPlanEntry e;
      if (m->signature()) {
        for (const fb::InputDims* d : *m->signature()) e.signature.push_back(vec(d->dims()));
      }
      e.total = m->total();
      const size_t n = m->blocks() ? m->blocks()->size() : 0;
      std::vector<uint8_t> seen(n, 0);
      uint64_t sizes = 0;
      for (size_t i = 0; i < n; ++i) {
        fb::MemoryBlock blk;
        std::memcpy(&blk, m->blocks()->Data() + i * sizeof(fb::MemoryBlock), sizeof blk);
        // Every block inside the arena, the indices 0..n-1 once each: a wrong plan may waste the arena, never
        // reach past it.
        if (blk.offset() > m->total() || blk.size() > m->total() - blk.offset() || blk.index() >= n ||
            seen[blk.index()]++) {
          return invalid_model(what + ": a memory plan's block lies outside its arena");
        }
        e.blocks.push_back({blk.key(), blk.size(), blk.offset(), blk.index()});
        sizes = blk.size() > ~uint64_t{0} - sizes ? ~uint64_t{0} : sizes + blk.size();
      }
      // The planner packs blocks into at most the sum of their sizes (fuzzing: a 64 GiB arena for a few blocks
      // would be allocated on the first run).
      if (e.total > sizes) {
        return invalid_model(what + ": a memory plan's arena of " + std::to_string(e.total) +
                             " bytes is larger than its blocks together (" + std::to_string(sizes) + ")");
      }
      out.memory.push_back(std::move(e));
    }
  }
  if (sec.plan->prepared()) {
    for (const fb::Prepared* p : *sec.plan->prepared()) {
      Prepared out_p;
      out_p.kind = p->kind();
      out_p.weight = s(p->weight());
      out_p.fields = vec(p->fields());
      out_p.meta = vec(p->meta());
      if (p->arrays()) {
        for (const fb::PreparedArray* a : *p->arrays()) {
          const uint64_t count = a->count();
          if (a->offset() % kWeightAlign != 0 || count > sec.weight_bytes / sizeof(float) ||
              a->offset() > sec.weight_bytes - count * sizeof(float)) {
            return invalid_model(what + ": the weights prepared from '" + out_p.weight +
                                 "' lie outside the weights section: the file is truncated or corrupt");
          }
          out_p.arrays.emplace_back(reinterpret_cast<const float*>(file->data() + sec.weights_at + a->offset()),
                                    static_cast<int64_t>(count));
        }
      }
      out.prepared.push_back(std::move(out_p));
    }
  }
  for (const NodeKernels& k : out.kernels) {
    if (!k.kernels.empty() && k.kernels.size() != info.profiles.size()) {
      return invalid_model(what + ": a node records " + std::to_string(k.kernels.size()) + " kernels for " +
                           std::to_string(info.profiles.size()) + " profiles");
    }
    if (!k.input_shapes.empty() && k.input_shapes.size() != info.profiles.size()) {
      return invalid_model(what + ": a node records its input shapes for " + std::to_string(k.input_shapes.size()) +
                           " profiles, the plan has " + std::to_string(info.profiles.size()));
    }
  }
  return out;
}

namespace {

// Every tensor table of a graph (initializers, attribute tensors, subgraphs') in order.
void collect_tensors(const fb::Graph* g, std::vector<const fb::Tensor*>& out) {
  if (!g) return;
  auto add_list = [&out](const flatbuffers::Vector<flatbuffers::Offset<fb::Tensor>>* v) {
    if (v) {
      for (const auto* t : *v) out.push_back(t);
    }
  };
  auto add_sparse = [&out](const fb::SparseTensor* st) {
    if (st) {
      out.push_back(st->values());
      out.push_back(st->indices());
    }
  };
  add_list(g->initializers());
  if (g->sparse_initializers()) {
    for (const auto* st : *g->sparse_initializers()) add_sparse(st);
  }
  if (!g->nodes()) return;
  for (const fb::Node* n : *g->nodes()) {
    if (!n->attributes()) continue;
    for (const fb::Attribute* a : *n->attributes()) {
      if (a->t()) out.push_back(a->t());
      add_list(a->tensors());
      add_sparse(a->sparse_tensor());
      if (a->sparse_tensors()) {
        for (const auto* st : *a->sparse_tensors()) add_sparse(st);
      }
      collect_tensors(a->g(), out);
      if (a->graphs()) {
        for (const auto* sub : *a->graphs()) collect_tensors(sub, out);
      }
    }
  }
}

}  // namespace

Status verify_weights(const std::shared_ptr<Buffer>& file, const std::string& what) {
  KILN_ASSIGN_OR_RETURN(Sections sec, open_sections(file, what));
  if (!sec.plan->model()) return invalid_model(what + ": the plan holds no graph");
  std::vector<const fb::Tensor*> tensors;
  collect_tensors(sec.plan->model()->graph(), tensors);
  const uint8_t* weights = file->data() + sec.weights_at;
  if (sec.plan->prepared()) {
    for (const fb::Prepared* p : *sec.plan->prepared()) {
      if (!p->arrays()) continue;
      for (const fb::PreparedArray* a : *p->arrays()) {
        const uint64_t bytes = a->count() * sizeof(float);
        if (a->count() > sec.weight_bytes / sizeof(float) || a->offset() > sec.weight_bytes - bytes ||
            checksum64(weights + a->offset(), bytes) != a->checksum()) {
          return invalid_model(what + ": the weights prepared from '" + s(p->weight()) +
                               "' are corrupt (checksum or bounds)");
        }
      }
    }
  }
  for (const fb::Tensor* t : tensors) {
    if (!t || t->dtype() == static_cast<int>(DType::kString) || t->nbytes() == 0) continue;
    const std::string name = s(t->name());
    if (t->offset() > sec.weight_bytes || t->nbytes() > sec.weight_bytes - t->offset()) {
      return invalid_model(what + ": tensor '" + name + "' lies outside the weights section");
    }
    if (checksum64(weights + t->offset(), t->nbytes()) != t->checksum()) {
      return invalid_model(what + ": tensor '" + name + "' is corrupt: its " + std::to_string(t->nbytes()) +
                           " bytes at offset " + std::to_string(sec.weights_at + t->offset()) +
                           " do not match their checksum");
    }
  }
  return Status::ok();
}

}  // namespace kiln::plan
