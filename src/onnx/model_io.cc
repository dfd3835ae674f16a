#include "kiln/onnx/model_io.h"

#include <fcntl.h>
#include <google/protobuf/io/coded_stream.h>
#include <onnx/onnx-data_pb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "onnx/model_io_internal.h"
#include "onnx/proto_convert.h"

namespace kiln::onnx {
namespace fs = std::filesystem;

namespace {

StatusOr<std::string> read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) return not_found("'" + path + "': no such file");
    return io_error("cannot open '" + path + "': " + std::strerror(err));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return io_error("'" + path + "' is not a regular file");
  }
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t r = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      ::close(fd);
      return io_error("cannot read '" + path + "': " + (r < 0 ? std::strerror(errno) : "unexpected end of file"));
    }
    done += static_cast<size_t>(r);
  }
  ::close(fd);
  return bytes;
}

// Writes `bytes` to a temporary file beside `path`; returns the temporary's name.
StatusOr<std::string> write_temp(const std::string& path, const std::string& bytes) {
  std::string tmpl = path + ".tmp.XXXXXX";
  int fd = mkstemp(tmpl.data());
  if (fd < 0) return io_error("cannot create a file beside '" + path + "': " + std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int err = errno;
      ::close(fd);
      ::unlink(tmpl.c_str());
      return io_error("cannot write '" + path + "': " + std::strerror(err));
    }
    done += static_cast<size_t>(w);
  }
  if (::fchmod(fd, 0644) != 0 || ::close(fd) != 0) {
    ::unlink(tmpl.c_str());
    return io_error("cannot finish writing '" + path + "': " + std::strerror(errno));
  }
  return tmpl;
}

// Parses a whole protobuf message from bytes, allowing messages up to protobuf's 2 GiB limit.
bool parse_exact(const void* data, size_t size, google::protobuf::Message* msg) {
  if (size > static_cast<size_t>(INT_MAX)) return false;
  google::protobuf::io::CodedInputStream in(static_cast<const uint8_t*>(data), static_cast<int>(size));
  in.SetTotalBytesLimit(INT_MAX);
  return msg->ParseFromCodedStream(&in) && in.ConsumedEntireMessage();
}

}  // namespace

StatusOr<::onnx::ModelProto> parse_model_proto(const void* data, size_t size, const std::string& label) {
  if (size == 0) return invalid_argument("'" + label + "' is empty (0 bytes), not an ONNX model");
  if (size > static_cast<size_t>(INT_MAX)) {
    return invalid_argument("'" + label + "' is " + std::to_string(size) +
                            " bytes, over protobuf's 2 GiB limit; large models keep their weights in external data");
  }
  ::onnx::ModelProto proto;
  if (!parse_exact(data, size, &proto)) {
    return invalid_argument("'" + label + "' is not a valid ONNX model: protobuf parsing failed (" +
                            std::to_string(size) + " bytes; the file may be truncated or corrupt)");
  }
  // Any protobuf message parses as some ModelProto; a real model has an IR version and a graph and no
  // fields unknown to ModelProto.
  const bool unknown = !proto.GetReflection()->GetUnknownFields(proto).empty();
  if (unknown || proto.ir_version() <= 0 || !proto.has_graph()) {
    std::string why = unknown                   ? "it has fields that ModelProto does not define"
                      : proto.ir_version() <= 0 ? "it has no ir_version"
                                                : "it has no graph";
    return invalid_argument("'" + label + "' is not an ONNX model: " + why +
                            " (is it another protobuf message, such as a TensorProto?)");
  }
  return proto;
}

StatusOr<::onnx::ModelProto> read_model_proto(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(std::string bytes, read_file(path));
  return parse_model_proto(bytes.data(), bytes.size(), path);
}

StatusOr<ir::Model> load_model_from_bytes(const void* data, size_t size, const std::string& base_dir,
                                          const std::string& label) {
  KILN_ASSIGN_OR_RETURN(auto proto, parse_model_proto(data, size, label));
  auto model = model_from_proto(proto, ImportContext{label, base_dir, {}});
  if (!model.is_ok()) return model.status().with_context("'" + label + "'");
  return model;
}

StatusOr<ir::Model> load_model(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(std::string bytes, read_file(path));
  std::string dir = fs::path(path).parent_path().string();
  return load_model_from_bytes(bytes.data(), bytes.size(), dir.empty() ? "." : dir, path);
}

StatusOr<ir::Model> load_model(const std::string& path, const std::vector<std::string>& provided) {
  KILN_ASSIGN_OR_RETURN(std::string bytes, read_file(path));
  std::string dir = fs::path(path).parent_path().string();
  KILN_ASSIGN_OR_RETURN(auto proto, parse_model_proto(bytes.data(), bytes.size(), path));
  auto model = model_from_proto(proto, ImportContext{path, dir.empty() ? "." : dir, provided});
  if (!model.is_ok()) return model.status().with_context("'" + path + "'");
  return model;
}

StatusOr<ir::NamedTensor> parse_tensor(const void* data, size_t size, const std::string& label,
                                       const std::string& base_dir) {
  ::onnx::TensorProto proto;
  if (size == 0 || !parse_exact(data, size, &proto) || !proto.GetReflection()->GetUnknownFields(proto).empty() ||
      !proto.has_data_type()) {
    return invalid_argument("'" + label + "' is not a serialized ONNX TensorProto");
  }
  return tensor_from_proto(proto, ImportContext{label, base_dir, {}});
}

StatusOr<ir::NamedTensor> load_tensor(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(std::string bytes, read_file(path));
  std::string dir = fs::path(path).parent_path().string();
  return parse_tensor(bytes.data(), bytes.size(), path, dir.empty() ? "." : dir);
}

Status save_tensor(const Tensor& tensor, const std::string& name, const std::string& path) {
  ::onnx::TensorProto proto;
  KILN_RETURN_IF_ERROR(tensor_to_proto(ir::NamedTensor{name, tensor, "", true, ""}, &proto));
  std::string bytes;
  if (!proto.SerializeToString(&bytes)) return internal_error("protobuf serialization failed for '" + path + "'");
  KILN_ASSIGN_OR_RETURN(std::string tmp, write_temp(path, bytes));
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return io_error("cannot write '" + path + "': " + std::strerror(err));
  }
  return Status::ok();
}

namespace {

DType sequence_elem_type(const ir::Type& type) {
  const ir::Type* t = &type;
  if (t->kind == ir::Type::Kind::kOptional && t->value_type) t = t->value_type.get();
  if (t->kind == ir::Type::Kind::kSequence && t->value_type) return t->value_type->elem_type;
  return DType::kUndefined;
}

StatusOr<std::vector<Tensor>> tensors_of(::onnx::SequenceProto& seq, const ImportContext& ctx) {
  if (seq.elem_type() != ::onnx::SequenceProto::TENSOR && seq.elem_type() != ::onnx::SequenceProto::UNDEFINED) {
    return unimplemented("'" + ctx.label + "': sequences of " + ::onnx::SequenceProto::DataType_Name(seq.elem_type()) +
                         " are not supported (tensors only)");
  }
  std::vector<Tensor> items;
  for (auto& t : *seq.mutable_tensor_values()) {
    KILN_ASSIGN_OR_RETURN(auto nt, tensor_from_proto(t, ctx));
    items.push_back(std::move(nt.tensor));
  }
  return items;
}

}  // namespace

StatusOr<Value> load_value(const std::string& path, const ir::Type& type) {
  using K = ir::Type::Kind;
  const ir::Type& inner = type.kind == K::kOptional && type.value_type ? *type.value_type : type;
  if (type.kind != K::kOptional && inner.kind == K::kTensor) {
    KILN_ASSIGN_OR_RETURN(auto t, load_tensor(path));
    return Value(std::move(t.tensor));
  }
  KILN_ASSIGN_OR_RETURN(std::string bytes, read_file(path));
  std::string dir = fs::path(path).parent_path().string();
  ImportContext ctx{path, dir.empty() ? "." : dir, {}};
  const DType seq_dtype = sequence_elem_type(type);
  auto make_sequence = [&](::onnx::SequenceProto& seq) -> StatusOr<Value> {
    KILN_ASSIGN_OR_RETURN(auto items, tensors_of(seq, ctx));
    DType dt = items.empty() ? seq_dtype : items[0].dtype();
    return Value::sequence(std::move(items), dt);
  };
  if (type.kind == K::kSequence) {
    ::onnx::SequenceProto seq;
    if (!parse_exact(bytes.data(), bytes.size(), &seq)) {
      return invalid_argument("'" + path + "' is not a serialized ONNX SequenceProto (expected " + type.to_string() +
                              ")");
    }
    return make_sequence(seq);
  }
  if (type.kind == K::kOptional) {
    ::onnx::OptionalProto opt;
    if (!parse_exact(bytes.data(), bytes.size(), &opt)) {
      return invalid_argument("'" + path + "' is not a serialized ONNX OptionalProto (expected " + type.to_string() +
                              ")");
    }
    if (opt.has_tensor_value()) {
      KILN_ASSIGN_OR_RETURN(auto t, tensor_from_proto(*opt.mutable_tensor_value(), ctx));
      return Value(std::move(t.tensor)).as_optional();
    }
    if (opt.has_sequence_value()) {
      KILN_ASSIGN_OR_RETURN(Value v, make_sequence(*opt.mutable_sequence_value()));
      return v.as_optional();
    }
    return Value::none(inner.to_string());
  }
  return unimplemented("'" + path + "': values of type " + type.to_string() + " are not supported");
}

StatusOr<std::string> serialize_model(const ir::Model& model) {
  ::onnx::ModelProto proto;
  KILN_RETURN_IF_ERROR(model_to_proto(model, &proto));
  size_t size = proto.ByteSizeLong();
  if (size > static_cast<size_t>(INT_MAX)) {
    return invalid_argument("the model is " + std::to_string(size) +
                            " bytes, over protobuf's 2 GiB limit: save it with external data");
  }
  std::string out;
  if (!proto.SerializeToString(&out)) return internal_error("protobuf serialization failed");
  return out;
}

Status save_model(const ir::Model& model, const std::string& path, const SaveOptions& options) {
  std::string external;
  ExportOptions exp;
  std::string data_path;
  if (options.external_data) {
    exp.external_out = &external;
    exp.threshold = options.size_threshold;
    exp.location = options.location.empty() ? fs::path(path).filename().string() + ".data" : options.location;
    if (exp.location.front() == '/' || exp.location.find("..") != std::string::npos) {
      return invalid_argument("external-data location '" + exp.location +
                              "' must be a file name relative to the model");
    }
    std::string dir = fs::path(path).parent_path().string();
    data_path = dir.empty() ? exp.location : dir + "/" + exp.location;
  }
  if (!options.external_data) {
    // Fail before copying gigabytes into a proto that could never be serialized.
    auto params = ir::parameter_stats(model.graph);
    if (params.bytes > INT_MAX) {
      return invalid_argument("cannot save '" + path + "' inline: its weights take " + std::to_string(params.bytes) +
                              " bytes, over protobuf's 2 GiB limit; save it with external data");
    }
  }
  ::onnx::ModelProto proto;
  KILN_RETURN_IF_ERROR(model_to_proto(model, &proto, exp));
  size_t size = proto.ByteSizeLong();
  if (size > static_cast<size_t>(INT_MAX)) {
    return invalid_argument("cannot save '" + path + "': the model is " + std::to_string(size) +
                            " bytes, over protobuf's 2 GiB limit; save it with external data");
  }
  std::string bytes;
  if (!proto.SerializeToString(&bytes)) return internal_error("protobuf serialization failed for '" + path + "'");

  std::string data_tmp;
  if (options.external_data && !external.empty()) {
    KILN_ASSIGN_OR_RETURN(data_tmp, write_temp(data_path, external));
  }
  auto model_tmp = write_temp(path, bytes);
  if (!model_tmp.is_ok()) {
    if (!data_tmp.empty()) ::unlink(data_tmp.c_str());
    return model_tmp.status();
  }
  if (!data_tmp.empty() && std::rename(data_tmp.c_str(), data_path.c_str()) != 0) {
    int err = errno;
    ::unlink(data_tmp.c_str());
    ::unlink(model_tmp->c_str());
    return io_error("cannot write '" + data_path + "': " + std::strerror(err));
  }
  if (std::rename(model_tmp->c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(model_tmp->c_str());
    if (!data_tmp.empty()) ::unlink(data_path.c_str());
    return io_error("cannot write '" + path + "': " + std::strerror(err));
  }
  return Status::ok();
}

}  // namespace kiln::onnx
