// ONNX Runtime's LoRA adapter format through the FlatBuffers code flatc generates from schema/adapter.fbs.
#include "kiln/runtime/lora_adapter.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>

#include "adapter_generated.h"
#include "kiln/core/allocator.h"
#include "kiln/core/file.h"

namespace kiln {
namespace {

namespace fb = kiln::adapter_format;

// The adapter in `size` bytes of `bytes` (aligned: the verifier and the tensors need it), which every parameter
// views.
StatusOr<LoraAdapter> parse(const std::shared_ptr<Buffer>& bytes, size_t size, const std::string& what) {
  auto fail = [&](const std::string& msg) { return invalid_argument(what + ": " + msg); };
  if (size < 8 || !fb::AdapterBufferHasIdentifier(bytes->data())) {
    return fail("not an ONNX Runtime LoRA adapter (expected the file identifier \"TORT\" at byte 4)");
  }
  flatbuffers::Verifier verifier(bytes->data(), size);
  if (!fb::VerifyAdapterBuffer(verifier)) return fail("the adapter's structure is corrupt (FlatBuffers verifier)");
  const fb::Adapter* a = fb::GetAdapter(bytes->data());
  LoraAdapter out;
  out.format_version = a->format_version();
  if (out.format_version != LoraAdapter::kFormatVersion) {
    return fail("format version " + std::to_string(out.format_version) + "; kiln reads version " +
                std::to_string(LoraAdapter::kFormatVersion));
  }
  out.adapter_version = a->adapter_version();
  out.model_version = a->model_version();
  std::set<std::string> seen;
  if (a->parameters()) {
    for (const fb::Parameter* p : *a->parameters()) {
      if (!p->name() || p->name()->size() == 0) return fail("a parameter has no name");
      const std::string name = p->name()->str();
      if (!seen.insert(name).second) return fail("parameter '" + name + "' appears twice");
      const int code = static_cast<int>(p->data_type());
      const auto dtype = static_cast<DType>(code);
      if (!dtype_is_valid(code) || dtype == DType::kUndefined || dtype == DType::kString ||
          dtype_storage_bytes(dtype, 1) == 0) {
        return fail("parameter '" + name + "' has data type " + std::to_string(code) +
                    ", which an adapter cannot hold (a numeric ONNX type)");
      }
      // The verifier checks the vector's length field, not that its int64 elements are 8-byte aligned: read them
      // byte-wise (little-endian, as FlatBuffers stores them and x86-64 reads them).
      std::vector<int64_t> dims(p->dims() ? p->dims()->size() : 0);
      if (!dims.empty()) std::memcpy(dims.data(), p->dims()->Data(), dims.size() * sizeof(int64_t));
      auto n = checked_num_elements(dims);
      if (!n) {
        return fail("parameter '" + name + "' has shape " + dims_to_string(dims) +
                    ", which has a negative dimension or more than 2^63 elements");
      }
      const size_t want = dtype_storage_bytes(dtype, *n);
      const size_t have = p->raw_data() ? p->raw_data()->size() : 0;
      if (have != want) {
        return fail("parameter '" + name + "' is " + dtype_name(dtype) + " " + dims_to_string(dims) + " (" +
                    std::to_string(want) + " bytes) but holds " + std::to_string(have) + " bytes");
      }
      const uint8_t* raw = have ? p->raw_data()->data() : bytes->data();
      const size_t offset = static_cast<size_t>(raw - bytes->data());
      Tensor t;
      if (have && offset % 8 != 0) {  // written without the schema's alignment: copied
        KILN_ASSIGN_OR_RETURN(t, Tensor::allocate(dtype, dims, Allocator::cpu_uninitialized()));
        std::memcpy(t.raw_data(), raw, have);
      } else {
        t = Tensor::from_buffer(dtype, dims, bytes, offset);
      }
      out.parameters.emplace_back(name, std::move(t));
    }
  }
  return out;
}

}  // namespace

StatusOr<LoraAdapter> LoraAdapter::from_bytes(const void* data, size_t size, const std::string& what) {
  KILN_ASSIGN_OR_RETURN(auto bytes, Buffer::allocate(std::max<size_t>(size, 1), Allocator::cpu_uninitialized()));
  if (size) std::memcpy(bytes->data(), data, size);
  return parse(bytes, size, what);
}

StatusOr<LoraAdapter> LoraAdapter::load(const std::string& path) {
  // Read straight into the aligned buffer the parameters will view.
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return not_found("cannot open LoRA adapter '" + path + "'");
  const auto size = static_cast<size_t>(std::max<std::streamoff>(in.tellg(), 0));
  in.seekg(0);
  KILN_ASSIGN_OR_RETURN(auto bytes, Buffer::allocate(std::max<size_t>(size, 1), Allocator::cpu_uninitialized()));
  if (size && !in.read(reinterpret_cast<char*>(bytes->data()), static_cast<std::streamsize>(size))) {
    return io_error("cannot read LoRA adapter '" + path + "'");
  }
  return parse(bytes, size, "LoRA adapter '" + path + "'");
}

StatusOr<std::string> LoraAdapter::serialize() const {
  flatbuffers::FlatBufferBuilder b(1024);
  std::vector<flatbuffers::Offset<fb::Parameter>> params;
  std::set<std::string> seen;
  for (const auto& [name, t] : parameters) {
    if (name.empty()) return invalid_argument("an adapter parameter needs a name");
    if (!seen.insert(name).second) return invalid_argument("adapter parameter '" + name + "' appears twice");
    if (t.dtype() == DType::kString || !t.defined()) {
      return invalid_argument("adapter parameter '" + name + "' is " + dtype_name(t.dtype()) +
                              ": an adapter holds numeric tensors");
    }
    auto n = b.CreateString(name);
    auto dims = b.CreateVector(t.dims());
    b.ForceVectorAlignment(t.nbytes(), 1, 8);
    auto raw = b.CreateVector(static_cast<const uint8_t*>(t.raw_data()), t.nbytes());
    params.push_back(fb::CreateParameter(b, n, dims, static_cast<fb::TensorDataType>(t.dtype()), raw));
  }
  auto list = b.CreateVector(params);
  b.Finish(fb::CreateAdapter(b, format_version, adapter_version, model_version, list), fb::AdapterIdentifier());
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

Status LoraAdapter::save(const std::string& path) const {
  KILN_ASSIGN_OR_RETURN(std::string bytes, serialize());
  return write_file_atomic(path, bytes, "LoRA adapter");
}

}  // namespace kiln
