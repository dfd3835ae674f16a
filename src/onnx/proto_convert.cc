// ONNX protobuf <-> kiln IR. Tensors keep the storage form they had (raw_data or typed fields) so that a
// model written back by kiln has the same fields as the one read.
#include "onnx/proto_convert.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>

namespace kiln::onnx {
namespace {

using ::onnx::AttributeProto;
using ::onnx::GraphProto;
using ::onnx::NodeProto;
using ::onnx::TensorProto;
using ::onnx::TypeProto;

// A read-only memory mapping of a whole external-data file, shared by the tensors that point into it.
class MappedFile {
 public:
  ~MappedFile() {
    if (data_ && size_) munmap(data_, size_);
  }
  static StatusOr<std::shared_ptr<MappedFile>> open(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return not_found("cannot open external-data file '" + path + "': " + std::strerror(errno));
    struct stat st {};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      return io_error("external-data file '" + path + "' is not a regular file");
    }
    auto m = std::make_shared<MappedFile>();
    m->size_ = static_cast<size_t>(st.st_size);
    if (m->size_) {
      void* p = mmap(nullptr, m->size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        ::close(fd);
        return io_error("cannot map external-data file '" + path + "': " + std::strerror(errno));
      }
      m->data_ = p;
    }
    ::close(fd);
    return m;
  }
  uint8_t* data() const { return static_cast<uint8_t*>(data_); }
  size_t size() const { return size_; }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

struct Importer {
  const ImportContext& ctx;
  std::map<std::string, std::shared_ptr<MappedFile>> mapped;

  StatusOr<ir::NamedTensor> tensor(TensorProto& t, const std::string& where);
  StatusOr<ir::SparseTensor> sparse(::onnx::SparseTensorProto& s, const std::string& where);
  StatusOr<ir::Attribute> attribute(AttributeProto& a, const std::string& where);
  StatusOr<ir::Node> node(NodeProto& n, size_t index, const std::string& where);
  StatusOr<ir::Graph> graph(GraphProto& g, const std::string& where);
  Status external(const TensorProto& t, DType dtype, std::vector<int64_t> dims, ir::NamedTensor& out,
                  const std::string& where);
};

ir::ValueInfo value_info_from_proto(const ::onnx::ValueInfoProto& v) {
  ir::ValueInfo out;
  out.name = v.name();
  out.doc_string = v.doc_string();
  if (v.has_type()) out.type = type_from_proto(v.type());
  return out;
}

// Copies `count` values of a typed field (already checked against the shape) into the tensor's storage.
template <typename Field>
void copy_typed(const Field& field, size_t count, size_t elem_bytes, Tensor& t) {
  using Src = std::decay_t<decltype(field.Get(0))>;
  uint8_t* dst = static_cast<uint8_t*>(t.raw_data());
  for (size_t i = 0; i < count; ++i) {
    Src v = field.Get(static_cast<int>(i));
    // Narrowing from the proto's wider field to the element's storage (little-endian, as ONNX specifies).
    std::memcpy(dst + i * elem_bytes, &v, elem_bytes);
  }
}

StatusOr<ir::NamedTensor> Importer::tensor(TensorProto& t, const std::string& where_in) {
  ir::NamedTensor out;
  out.name = t.name();
  out.doc_string = t.doc_string();
  const std::string where = where_in + (t.name().empty() ? "" : " tensor '" + t.name() + "'");
  if (!dtype_is_valid(t.data_type())) {
    return invalid_model(where + " has unknown data_type " + std::to_string(t.data_type()));
  }
  DType dtype = static_cast<DType>(t.data_type());
  std::vector<int64_t> dims(t.dims().begin(), t.dims().end());
  auto numel = checked_num_elements(dims);
  if (!numel) return invalid_model(where + " has invalid dims " + dims_to_string(dims));
  const size_t n = static_cast<size_t>(*numel);

  if (t.data_location() == TensorProto::EXTERNAL) {
    KILN_RETURN_IF_ERROR(external(t, dtype, std::move(dims), out, where));
    return out;
  }

  if (dtype == DType::kString) {
    if (static_cast<size_t>(t.string_data_size()) != n) {
      return invalid_model(where + " has " + std::to_string(t.string_data_size()) + " strings but its shape " +
                           dims_to_string(dims) + " needs " + std::to_string(n));
    }
    std::vector<std::string> values(t.string_data().begin(), t.string_data().end());
    out.tensor = Tensor::from_strings(dims, std::move(values));
    out.stored_as_raw = false;
    return out;
  }

  const size_t nbytes = dtype_storage_bytes(dtype, static_cast<int64_t>(n));
  if (t.has_raw_data()) {
    if (t.raw_data().size() != nbytes) {
      return invalid_model(where + " has " + std::to_string(t.raw_data().size()) + " bytes of raw_data but " +
                           dtype_name(dtype) + dims_to_string(dims) + " needs " + std::to_string(nbytes));
    }
    // Take the bytes over from the proto instead of copying them.
    auto holder = std::make_shared<std::string>(std::move(*t.mutable_raw_data()));
    void* p = holder->data();
    out.tensor = Tensor::from_buffer(dtype, dims, Buffer::wrap(p, holder->size(), holder));
    out.stored_as_raw = true;
    return out;
  }

  out.stored_as_raw = false;
  // Check the value count against the shape before allocating: a corrupt file may claim any shape.
  size_t have = 0;
  size_t want = n;
  switch (dtype) {
    case DType::kFloat32: have = static_cast<size_t>(t.float_data_size()); break;
    case DType::kComplex64:
      have = static_cast<size_t>(t.float_data_size());
      want = 2 * n;
      break;
    case DType::kFloat64: have = static_cast<size_t>(t.double_data_size()); break;
    case DType::kComplex128:
      have = static_cast<size_t>(t.double_data_size());
      want = 2 * n;
      break;
    case DType::kInt64: have = static_cast<size_t>(t.int64_data_size()); break;
    case DType::kUInt32:
    case DType::kUInt64: have = static_cast<size_t>(t.uint64_data_size()); break;
    case DType::kInt4:
    case DType::kUInt4:
    case DType::kFloat4E2M1:
      have = static_cast<size_t>(t.int32_data_size());
      want = (n + 1) / 2;
      break;
    default: have = static_cast<size_t>(t.int32_data_size()); break;
  }
  if (have != want) {
    return invalid_model(where + " has " + std::to_string(have) + " values but its shape " + dims_to_string(dims) +
                         " (" + dtype_name(dtype) + ") needs " + std::to_string(want));
  }
  KILN_ASSIGN_OR_RETURN(Tensor tensor, Tensor::allocate(dtype, dims));
  switch (dtype) {
    case DType::kFloat32: copy_typed(t.float_data(), n, 4, tensor); break;
    case DType::kComplex64: copy_typed(t.float_data(), 2 * n, 4, tensor); break;
    case DType::kFloat64: copy_typed(t.double_data(), n, 8, tensor); break;
    case DType::kComplex128: copy_typed(t.double_data(), 2 * n, 8, tensor); break;
    case DType::kInt64: copy_typed(t.int64_data(), n, 8, tensor); break;
    case DType::kUInt32: copy_typed(t.uint64_data(), n, 4, tensor); break;
    case DType::kUInt64: copy_typed(t.uint64_data(), n, 8, tensor); break;
    case DType::kInt32: copy_typed(t.int32_data(), n, 4, tensor); break;
    case DType::kInt16:
    case DType::kUInt16:
    case DType::kFloat16:
    case DType::kBFloat16: copy_typed(t.int32_data(), n, 2, tensor); break;
    case DType::kInt8:
    case DType::kUInt8:
    case DType::kBool:
    case DType::kFloat8E4M3FN:
    case DType::kFloat8E4M3FNUZ:
    case DType::kFloat8E5M2:
    case DType::kFloat8E5M2FNUZ: copy_typed(t.int32_data(), n, 1, tensor); break;
    case DType::kInt4:
    case DType::kUInt4:
    case DType::kFloat4E2M1:
      // Two elements per int32_data entry's low byte, as ONNX packs them.
      copy_typed(t.int32_data(), (n + 1) / 2, 1, tensor);
      break;
    default: return invalid_model(where + " has unsupported data_type " + dtype_name(dtype));
  }
  out.tensor = std::move(tensor);
  return out;
}

Status Importer::external(const TensorProto& t, DType dtype, std::vector<int64_t> dims, ir::NamedTensor& out,
                          const std::string& where) {
  std::string location;
  int64_t offset = 0;
  int64_t length = -1;
  for (const auto& kv : t.external_data()) {
    try {
      if (kv.key() == "location")
        location = kv.value();
      else if (kv.key() == "offset")
        offset = std::stoll(kv.value());
      else if (kv.key() == "length")
        length = std::stoll(kv.value());
    } catch (const std::exception&) {
      return invalid_model(where + " has a non-numeric external_data '" + kv.key() + "': '" + kv.value() + "'");
    }
  }
  if (location.empty()) return invalid_model(where + " is stored externally but has no 'location'");
  if (location.front() == '/' || location.find("..") != std::string::npos) {
    return invalid_model(where + " has external-data location '" + location +
                         "', which must be a relative path inside the model's folder");
  }
  const auto nbytes = static_cast<int64_t>(dtype_storage_bytes(dtype, *checked_num_elements(dims)));
  if (length >= 0 && length != nbytes) {
    return invalid_model(where + " has external length " + std::to_string(length) + " but " + dtype_name(dtype) +
                         dims_to_string(dims) + " needs " + std::to_string(nbytes) + " bytes");
  }
  if (dtype == DType::kString) return invalid_model(where + ": string tensors cannot be stored externally");
  if (std::find(ctx.provided_initializers.begin(), ctx.provided_initializers.end(), out.name) !=
      ctx.provided_initializers.end()) {
    out.tensor = Tensor::borrow(dtype, std::move(dims), nullptr);
    out.external_location = location;
    return Status::ok();
  }
  std::string path = ctx.base_dir.empty() ? location : ctx.base_dir + "/" + location;
  auto it = mapped.find(path);
  if (it == mapped.end()) {
    auto m = MappedFile::open(path);
    if (!m.is_ok()) return m.status().with_context(where);
    it = mapped.emplace(path, std::move(m).value()).first;
  }
  const auto& file = it->second;
  if (offset < 0 || static_cast<uint64_t>(offset) + static_cast<uint64_t>(nbytes) > file->size()) {
    return invalid_model(where + " reads bytes " + std::to_string(offset) + ".." + std::to_string(offset + nbytes) +
                         " of external-data file '" + path + "', which has only " + std::to_string(file->size()));
  }
  auto buffer = Buffer::wrap(file->data() + offset, static_cast<size_t>(nbytes), file);
  out.tensor = Tensor::from_buffer(dtype, std::move(dims), std::move(buffer));
  out.external_location = location;
  out.stored_as_raw = true;
  return Status::ok();
}

StatusOr<ir::SparseTensor> Importer::sparse(::onnx::SparseTensorProto& s, const std::string& where) {
  ir::SparseTensor out;
  KILN_ASSIGN_OR_RETURN(out.values, tensor(*s.mutable_values(), where + " sparse values"));
  KILN_ASSIGN_OR_RETURN(out.indices, tensor(*s.mutable_indices(), where + " sparse indices"));
  out.dims.assign(s.dims().begin(), s.dims().end());
  return out;
}

StatusOr<ir::Attribute> Importer::attribute(AttributeProto& a, const std::string& where_in) {
  ir::Attribute out;
  out.name = a.name();
  out.doc_string = a.doc_string();
  out.ref_attr_name = a.ref_attr_name();
  out.type = static_cast<ir::AttrType>(a.type());
  const std::string where = where_in + " attribute '" + a.name() + "'";
  switch (a.type()) {
    case AttributeProto::FLOAT: out.f = a.f(); break;
    case AttributeProto::INT: out.i = a.i(); break;
    case AttributeProto::STRING: out.s = a.s(); break;
    case AttributeProto::TENSOR: {
      KILN_ASSIGN_OR_RETURN(out.t, tensor(*a.mutable_t(), where));
      break;
    }
    case AttributeProto::GRAPH: {
      KILN_ASSIGN_OR_RETURN(auto g, graph(*a.mutable_g(), where));
      out.g = std::make_shared<ir::Graph>(std::move(g));
      break;
    }
    case AttributeProto::SPARSE_TENSOR: {
      KILN_ASSIGN_OR_RETURN(out.sparse_tensor, sparse(*a.mutable_sparse_tensor(), where));
      break;
    }
    case AttributeProto::TYPE_PROTO: out.tp = type_from_proto(a.tp()); break;
    case AttributeProto::FLOATS: out.floats.assign(a.floats().begin(), a.floats().end()); break;
    case AttributeProto::INTS: out.ints.assign(a.ints().begin(), a.ints().end()); break;
    case AttributeProto::STRINGS: out.strings.assign(a.strings().begin(), a.strings().end()); break;
    case AttributeProto::TENSORS:
      for (auto& t : *a.mutable_tensors()) {
        KILN_ASSIGN_OR_RETURN(auto nt, tensor(t, where));
        out.tensors.push_back(std::move(nt));
      }
      break;
    case AttributeProto::GRAPHS:
      for (auto& g : *a.mutable_graphs()) {
        KILN_ASSIGN_OR_RETURN(auto sub, graph(g, where));
        out.graphs.push_back(std::make_shared<ir::Graph>(std::move(sub)));
      }
      break;
    case AttributeProto::SPARSE_TENSORS:
      for (auto& s : *a.mutable_sparse_tensors()) {
        KILN_ASSIGN_OR_RETURN(auto st, sparse(s, where));
        out.sparse_tensors.push_back(std::move(st));
      }
      break;
    case AttributeProto::TYPE_PROTOS:
      for (const auto& tp : a.type_protos()) out.tps.push_back(type_from_proto(tp));
      break;
    default:
      if (!a.ref_attr_name().empty()) break;
      return invalid_model(where + " has unknown attribute type " + std::to_string(a.type()));
  }
  return out;
}

StatusOr<ir::Node> Importer::node(NodeProto& n, size_t index, const std::string& where_in) {
  ir::Node out;
  out.name = n.name();
  out.op_type = n.op_type();
  out.domain = n.domain();
  out.doc_string = n.doc_string();
  out.inputs.assign(n.input().begin(), n.input().end());
  out.outputs.assign(n.output().begin(), n.output().end());
  const std::string where = where_in + out.describe(index);
  for (auto& a : *n.mutable_attribute()) {
    KILN_ASSIGN_OR_RETURN(auto attr, attribute(a, where));
    out.attributes.push_back(std::move(attr));
  }
  return out;
}

StatusOr<ir::Graph> Importer::graph(GraphProto& g, const std::string& where) {
  ir::Graph out;
  out.name = g.name();
  out.doc_string = g.doc_string();
  const std::string prefix = where.empty() ? "" : where + ", subgraph '" + g.name() + "' ";
  for (const auto& v : g.input()) out.inputs.push_back(value_info_from_proto(v));
  for (const auto& v : g.output()) out.outputs.push_back(value_info_from_proto(v));
  for (const auto& v : g.value_info()) out.value_info.push_back(value_info_from_proto(v));
  for (auto& t : *g.mutable_initializer()) {
    KILN_ASSIGN_OR_RETURN(auto nt, tensor(t, prefix + "initializer"));
    out.initializers.push_back(std::move(nt));
  }
  for (auto& s : *g.mutable_sparse_initializer()) {
    KILN_ASSIGN_OR_RETURN(auto st, sparse(s, prefix + "sparse initializer"));
    out.sparse_initializers.push_back(std::move(st));
  }
  for (int i = 0; i < g.node_size(); ++i) {
    KILN_ASSIGN_OR_RETURN(auto n, node(*g.mutable_node(i), static_cast<size_t>(i), prefix));
    out.nodes.push_back(std::move(n));
  }
  return out;
}

// ---- export ----

struct Exporter {
  const ExportOptions& opt;
  Status tensor(const ir::NamedTensor& t, TensorProto* p);
  Status sparse(const ir::SparseTensor& s, ::onnx::SparseTensorProto* p);
  Status attribute(const ir::Attribute& a, AttributeProto* p);
  Status node(const ir::Node& n, NodeProto* p);
  Status graph(const ir::Graph& g, GraphProto* p);
};

void value_info_to_proto(const ir::ValueInfo& v, ::onnx::ValueInfoProto* p) {
  p->set_name(v.name);
  if (!v.doc_string.empty()) p->set_doc_string(v.doc_string);
  if (v.type.kind != ir::Type::Kind::kNone) type_to_proto(v.type, p->mutable_type());
}

template <typename Dst>
void put_typed(const uint8_t* src, size_t count, size_t elem_bytes, google::protobuf::RepeatedField<Dst>* field) {
  field->Reserve(static_cast<int>(count));
  for (size_t i = 0; i < count; ++i) {
    Dst v{};
    std::memcpy(&v, src + i * elem_bytes, elem_bytes);
    field->Add(v);
  }
}

// Sign-extends the narrow signed integer types, which int32_data stores as int32 values.
void put_int32(const uint8_t* src, size_t count, size_t elem_bytes, bool is_signed, TensorProto* p) {
  auto* field = p->mutable_int32_data();
  field->Reserve(static_cast<int>(count));
  for (size_t i = 0; i < count; ++i) {
    int32_t v = 0;
    if (elem_bytes == 1)
      v = is_signed ? static_cast<int8_t>(src[i]) : src[i];
    else if (elem_bytes == 2) {
      uint16_t u;
      std::memcpy(&u, src + 2 * i, 2);
      v = is_signed ? static_cast<int16_t>(u) : u;
    } else {
      std::memcpy(&v, src + 4 * i, 4);
    }
    field->Add(v);
  }
}

Status Exporter::tensor(const ir::NamedTensor& nt, TensorProto* p) {
  const Tensor& t = nt.tensor;
  if (!nt.name.empty()) p->set_name(nt.name);
  if (!nt.doc_string.empty()) p->set_doc_string(nt.doc_string);
  for (int64_t d : t.dims()) p->add_dims(d);
  p->set_data_type(static_cast<int32_t>(t.dtype()));
  const DType dtype = t.dtype();
  if (dtype == DType::kString) {
    for (const auto& s : t.strings()) p->add_string_data(s);
    return Status::ok();
  }
  const size_t nbytes = t.nbytes();
  const auto* src = static_cast<const uint8_t*>(t.raw_data());
  if (nbytes && !src) return internal_error("tensor '" + nt.name + "' has no data");
  if (opt.external_out && nbytes >= opt.threshold && nbytes > 0) {
    // Align each tensor to 4 KiB in the data file so that a later mmap gives aligned tensors.
    std::string& out = *opt.external_out;
    size_t offset = (out.size() + 4095) / 4096 * 4096;
    out.resize(offset, '\0');
    out.append(reinterpret_cast<const char*>(src), nbytes);
    p->set_data_location(TensorProto::EXTERNAL);
    auto add = [&](const char* k, const std::string& v) {
      auto* e = p->add_external_data();
      e->set_key(k);
      e->set_value(v);
    };
    add("location", opt.location);
    add("offset", std::to_string(offset));
    add("length", std::to_string(nbytes));
    return Status::ok();
  }
  if (nt.stored_as_raw) {
    p->set_raw_data(src, nbytes);
    return Status::ok();
  }
  const size_t n = static_cast<size_t>(t.num_elements());
  switch (dtype) {
    case DType::kFloat32: put_typed<float>(src, n, 4, p->mutable_float_data()); break;
    case DType::kComplex64: put_typed<float>(src, 2 * n, 4, p->mutable_float_data()); break;
    case DType::kFloat64: put_typed<double>(src, n, 8, p->mutable_double_data()); break;
    case DType::kComplex128: put_typed<double>(src, 2 * n, 8, p->mutable_double_data()); break;
    case DType::kInt64: put_typed<int64_t>(src, n, 8, p->mutable_int64_data()); break;
    case DType::kUInt32: put_typed<uint64_t>(src, n, 4, p->mutable_uint64_data()); break;
    case DType::kUInt64: put_typed<uint64_t>(src, n, 8, p->mutable_uint64_data()); break;
    case DType::kInt32: put_int32(src, n, 4, true, p); break;
    case DType::kInt16: put_int32(src, n, 2, true, p); break;
    case DType::kInt8: put_int32(src, n, 1, true, p); break;
    case DType::kUInt16:
    case DType::kFloat16:
    case DType::kBFloat16: put_int32(src, n, 2, false, p); break;
    case DType::kUInt8:
    case DType::kBool:
    case DType::kFloat8E4M3FN:
    case DType::kFloat8E4M3FNUZ:
    case DType::kFloat8E5M2:
    case DType::kFloat8E5M2FNUZ: put_int32(src, n, 1, false, p); break;
    case DType::kInt4:
    case DType::kUInt4:
    case DType::kFloat4E2M1: put_int32(src, (n + 1) / 2, 1, false, p); break;
    default: return internal_error(std::string("cannot export dtype ") + dtype_name(dtype));
  }
  return Status::ok();
}

Status Exporter::sparse(const ir::SparseTensor& s, ::onnx::SparseTensorProto* p) {
  KILN_RETURN_IF_ERROR(tensor(s.values, p->mutable_values()));
  KILN_RETURN_IF_ERROR(tensor(s.indices, p->mutable_indices()));
  for (int64_t d : s.dims) p->add_dims(d);
  return Status::ok();
}

Status Exporter::attribute(const ir::Attribute& a, AttributeProto* p) {
  p->set_name(a.name);
  if (!a.doc_string.empty()) p->set_doc_string(a.doc_string);
  if (!a.ref_attr_name.empty()) p->set_ref_attr_name(a.ref_attr_name);
  if (a.type != ir::AttrType::kUndefined) p->set_type(static_cast<AttributeProto::AttributeType>(a.type));
  if (!a.ref_attr_name.empty()) return Status::ok();
  switch (a.type) {
    case ir::AttrType::kFloat: p->set_f(a.f); break;
    case ir::AttrType::kInt: p->set_i(a.i); break;
    case ir::AttrType::kString: p->set_s(a.s); break;
    case ir::AttrType::kTensor: return tensor(a.t, p->mutable_t());
    case ir::AttrType::kGraph:
      if (!a.g) return internal_error("attribute '" + a.name + "' has no graph");
      return graph(*a.g, p->mutable_g());
    case ir::AttrType::kSparseTensor: return sparse(a.sparse_tensor, p->mutable_sparse_tensor());
    case ir::AttrType::kTypeProto: type_to_proto(a.tp, p->mutable_tp()); break;
    case ir::AttrType::kFloats:
      for (float v : a.floats) p->add_floats(v);
      break;
    case ir::AttrType::kInts:
      for (int64_t v : a.ints) p->add_ints(v);
      break;
    case ir::AttrType::kStrings:
      for (const auto& v : a.strings) p->add_strings(v);
      break;
    case ir::AttrType::kTensors:
      for (const auto& t : a.tensors) KILN_RETURN_IF_ERROR(tensor(t, p->add_tensors()));
      break;
    case ir::AttrType::kGraphs:
      for (const auto& g : a.graphs) {
        if (!g) return internal_error("attribute '" + a.name + "' has a null graph");
        KILN_RETURN_IF_ERROR(graph(*g, p->add_graphs()));
      }
      break;
    case ir::AttrType::kSparseTensors:
      for (const auto& s : a.sparse_tensors) KILN_RETURN_IF_ERROR(sparse(s, p->add_sparse_tensors()));
      break;
    case ir::AttrType::kTypeProtos:
      for (const auto& t : a.tps) type_to_proto(t, p->add_type_protos());
      break;
    case ir::AttrType::kUndefined: break;
  }
  return Status::ok();
}

Status Exporter::node(const ir::Node& n, NodeProto* p) {
  for (const auto& i : n.inputs) p->add_input(i);
  for (const auto& o : n.outputs) p->add_output(o);
  if (!n.name.empty()) p->set_name(n.name);
  p->set_op_type(n.op_type);
  if (!n.domain.empty()) p->set_domain(n.domain);
  for (const auto& a : n.attributes) KILN_RETURN_IF_ERROR(attribute(a, p->add_attribute()));
  if (!n.doc_string.empty()) p->set_doc_string(n.doc_string);
  return Status::ok();
}

Status Exporter::graph(const ir::Graph& g, GraphProto* p) {
  for (const auto& n : g.nodes) KILN_RETURN_IF_ERROR(node(n, p->add_node()));
  if (!g.name.empty()) p->set_name(g.name);
  for (const auto& t : g.initializers) KILN_RETURN_IF_ERROR(tensor(t, p->add_initializer()));
  for (const auto& s : g.sparse_initializers) KILN_RETURN_IF_ERROR(sparse(s, p->add_sparse_initializer()));
  if (!g.doc_string.empty()) p->set_doc_string(g.doc_string);
  for (const auto& v : g.inputs) value_info_to_proto(v, p->add_input());
  for (const auto& v : g.outputs) value_info_to_proto(v, p->add_output());
  for (const auto& v : g.value_info) value_info_to_proto(v, p->add_value_info());
  return Status::ok();
}

}  // namespace

ir::Type type_from_proto(const TypeProto& p) {
  ir::Type t;
  t.denotation = p.denotation();
  auto tensor_like = [&](const auto& tt, ir::Type::Kind kind) {
    t.kind = kind;
    t.elem_type = dtype_is_valid(tt.elem_type()) ? static_cast<DType>(tt.elem_type()) : DType::kUndefined;
    if (tt.has_shape()) {
      Shape s;
      bool any_denotation = false;
      for (const auto& d : tt.shape().dim()) {
        if (d.has_dim_value())
          s.push_back(Dim(d.dim_value()));
        else if (d.has_dim_param())
          s.push_back(Dim::symbolic(d.dim_param()));
        else
          s.push_back(Dim());
        any_denotation |= !d.denotation().empty();
      }
      if (any_denotation) {
        for (const auto& d : tt.shape().dim()) t.dim_denotations.push_back(d.denotation());
      }
      t.shape = std::move(s);
    }
  };
  switch (p.value_case()) {
    case TypeProto::kTensorType: tensor_like(p.tensor_type(), ir::Type::Kind::kTensor); break;
    case TypeProto::kSparseTensorType: tensor_like(p.sparse_tensor_type(), ir::Type::Kind::kSparseTensor); break;
    case TypeProto::kSequenceType:
      t.kind = ir::Type::Kind::kSequence;
      t.value_type = std::make_shared<ir::Type>(type_from_proto(p.sequence_type().elem_type()));
      break;
    case TypeProto::kOptionalType:
      t.kind = ir::Type::Kind::kOptional;
      t.value_type = std::make_shared<ir::Type>(type_from_proto(p.optional_type().elem_type()));
      break;
    case TypeProto::kMapType:
      t.kind = ir::Type::Kind::kMap;
      t.key_type = static_cast<DType>(p.map_type().key_type());
      t.value_type = std::make_shared<ir::Type>(type_from_proto(p.map_type().value_type()));
      break;
    default: break;
  }
  return t;
}

void type_to_proto(const ir::Type& t, TypeProto* p) {
  auto tensor_like = [&](auto* tt) {
    tt->set_elem_type(static_cast<int32_t>(t.elem_type));
    if (!t.shape) return;
    auto* shape = tt->mutable_shape();
    for (size_t i = 0; i < t.shape->rank(); ++i) {
      const Dim& d = (*t.shape)[i];
      auto* pd = shape->add_dim();
      if (d.is_known())
        pd->set_dim_value(d.value());
      else if (d.is_symbolic())
        pd->set_dim_param(d.symbol());
      if (i < t.dim_denotations.size() && !t.dim_denotations[i].empty()) pd->set_denotation(t.dim_denotations[i]);
    }
  };
  switch (t.kind) {
    case ir::Type::Kind::kTensor: tensor_like(p->mutable_tensor_type()); break;
    case ir::Type::Kind::kSparseTensor: tensor_like(p->mutable_sparse_tensor_type()); break;
    case ir::Type::Kind::kSequence:
      p->mutable_sequence_type();
      if (t.value_type) type_to_proto(*t.value_type, p->mutable_sequence_type()->mutable_elem_type());
      break;
    case ir::Type::Kind::kOptional:
      p->mutable_optional_type();
      if (t.value_type) type_to_proto(*t.value_type, p->mutable_optional_type()->mutable_elem_type());
      break;
    case ir::Type::Kind::kMap:
      p->mutable_map_type()->set_key_type(static_cast<int32_t>(t.key_type));
      if (t.value_type) type_to_proto(*t.value_type, p->mutable_map_type()->mutable_value_type());
      break;
    case ir::Type::Kind::kNone: break;
  }
  if (!t.denotation.empty()) p->set_denotation(t.denotation);
}

StatusOr<ir::Model> model_from_proto(::onnx::ModelProto& p, const ImportContext& ctx) {
  ir::Model m;
  m.ir_version = p.ir_version();
  for (const auto& o : p.opset_import()) m.opset_import.push_back({o.domain(), o.version()});
  m.producer_name = p.producer_name();
  m.producer_version = p.producer_version();
  m.domain = p.domain();
  m.model_version = p.model_version();
  m.doc_string = p.doc_string();
  for (const auto& kv : p.metadata_props()) m.metadata_props.emplace_back(kv.key(), kv.value());
  Importer importer{ctx, {}};
  KILN_ASSIGN_OR_RETURN(m.graph, importer.graph(*p.mutable_graph(), ""));
  for (auto& f : *p.mutable_functions()) {
    ir::Function fn;
    fn.name = f.name();
    fn.domain = f.domain();
    fn.doc_string = f.doc_string();
    fn.inputs.assign(f.input().begin(), f.input().end());
    fn.outputs.assign(f.output().begin(), f.output().end());
    fn.attributes.assign(f.attribute().begin(), f.attribute().end());
    for (const auto& o : f.opset_import()) fn.opset_import.push_back({o.domain(), o.version()});
    for (int i = 0; i < f.node_size(); ++i) {
      KILN_ASSIGN_OR_RETURN(auto n,
                            importer.node(*f.mutable_node(i), static_cast<size_t>(i), "function '" + f.name() + "' "));
      fn.nodes.push_back(std::move(n));
    }
    m.functions.push_back(std::move(fn));
  }
  return m;
}

StatusOr<ir::NamedTensor> tensor_from_proto(TensorProto& proto, const ImportContext& ctx) {
  Importer importer{ctx, {}};
  return importer.tensor(proto, "'" + ctx.label + "'");
}

Status tensor_to_proto(const ir::NamedTensor& t, TensorProto* p) {
  const ExportOptions inline_bytes;
  Exporter e{inline_bytes};
  return e.tensor(t, p);
}

Status graph_to_proto(const ir::Graph& g, GraphProto* p, const ExportOptions& options) {
  Exporter e{options};
  return e.graph(g, p);
}

Status model_to_proto(const ir::Model& m, ::onnx::ModelProto* p, const ExportOptions& options) {
  Exporter e{options};
  p->set_ir_version(m.ir_version);
  if (!m.producer_name.empty()) p->set_producer_name(m.producer_name);
  if (!m.producer_version.empty()) p->set_producer_version(m.producer_version);
  if (!m.domain.empty()) p->set_domain(m.domain);
  if (m.model_version) p->set_model_version(m.model_version);
  if (!m.doc_string.empty()) p->set_doc_string(m.doc_string);
  KILN_RETURN_IF_ERROR(e.graph(m.graph, p->mutable_graph()));
  for (const auto& o : m.opset_import) {
    auto* op = p->add_opset_import();
    if (!o.domain.empty()) op->set_domain(o.domain);
    op->set_version(o.version);
  }
  for (const auto& [k, v] : m.metadata_props) {
    auto* e2 = p->add_metadata_props();
    e2->set_key(k);
    e2->set_value(v);
  }
  for (const auto& f : m.functions) {
    auto* fp = p->add_functions();
    fp->set_name(f.name);
    for (const auto& i : f.inputs) fp->add_input(i);
    for (const auto& o : f.outputs) fp->add_output(o);
    for (const auto& a : f.attributes) fp->add_attribute(a);
    for (const auto& n : f.nodes) KILN_RETURN_IF_ERROR(e.node(n, fp->add_node()));
    if (!f.doc_string.empty()) fp->set_doc_string(f.doc_string);
    for (const auto& o : f.opset_import) {
      auto* op = fp->add_opset_import();
      if (!o.domain.empty()) op->set_domain(o.domain);
      op->set_version(o.version);
    }
    if (!f.domain.empty()) fp->set_domain(f.domain);
  }
  return Status::ok();
}

}  // namespace kiln::onnx
