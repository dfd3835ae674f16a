// .npy reading and writing: a small, fully specified format (numpy's NEP 1), so written here.
#include "kiln/core/npy.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace kiln {
namespace {

struct NpyType {
  const char* descr;  // without the byte-order character
  DType dtype;
};
constexpr NpyType kTypes[] = {
    {"f4", DType::kFloat32},   {"f8", DType::kFloat64},     {"f2", DType::kFloat16}, {"i1", DType::kInt8},
    {"i2", DType::kInt16},     {"i4", DType::kInt32},       {"i8", DType::kInt64},   {"u1", DType::kUInt8},
    {"u2", DType::kUInt16},    {"u4", DType::kUInt32},      {"u8", DType::kUInt64},  {"b1", DType::kBool},
    {"c8", DType::kComplex64}, {"c16", DType::kComplex128},
};

// The value of `key` in the header dict, as raw text up to the next top-level comma or closing brace.
std::string dict_value(const std::string& header, const std::string& key) {
  auto pos = header.find("'" + key + "'");
  if (pos == std::string::npos) return "";
  pos = header.find(':', pos);
  if (pos == std::string::npos) return "";
  ++pos;
  int depth = 0;
  size_t end = pos;
  for (; end < header.size(); ++end) {
    char c = header[end];
    if (c == '(' || c == '[') ++depth;
    if (c == ')' || c == ']') --depth;
    if ((c == ',' || c == '}') && depth == 0) break;
  }
  std::string v = header.substr(pos, end - pos);
  size_t a = v.find_first_not_of(" \t"), b = v.find_last_not_of(" \t");
  return a == std::string::npos ? "" : v.substr(a, b - a + 1);
}

// C-order copy of a Fortran-ordered array: element (i0..in-1) sits at the C-order position of the reversed index.
void fortran_to_c(const uint8_t* src, uint8_t* dst, const std::vector<int64_t>& dims, size_t elem) {
  const size_t rank = dims.size();
  int64_t total = 1;
  for (int64_t d : dims) total *= d;
  std::vector<int64_t> fstride(rank, 1);
  for (size_t i = 1; i < rank; ++i) fstride[i] = fstride[i - 1] * dims[i - 1];
  std::vector<int64_t> idx(rank, 0);
  for (int64_t i = 0; i < total; ++i) {
    int64_t off = 0;
    for (size_t d = 0; d < rank; ++d) off += idx[d] * fstride[d];
    std::memcpy(dst + static_cast<size_t>(i) * elem, src + static_cast<size_t>(off) * elem, elem);
    for (size_t d = rank; d-- > 0;) {
      if (++idx[d] < dims[d]) break;
      idx[d] = 0;
    }
  }
}

}  // namespace

StatusOr<Tensor> parse_npy(const std::string& bytes, const std::string& label) {
  auto bad = [&](const std::string& why) {
    return invalid_argument("'" + label + "' is not a valid .npy file: " + why);
  };
  if (bytes.size() < 10 || std::memcmp(bytes.data(), "\x93NUMPY", 6) != 0) return bad("missing the \\x93NUMPY magic");
  const auto major = static_cast<uint8_t>(bytes[6]);
  size_t header_len, offset;
  if (major == 1) {
    header_len = static_cast<uint8_t>(bytes[8]) | (static_cast<size_t>(static_cast<uint8_t>(bytes[9])) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return bad("truncated header");
    header_len = 0;
    for (int i = 0; i < 4; ++i) header_len |= static_cast<size_t>(static_cast<uint8_t>(bytes[8 + i])) << (8 * i);
    offset = 12;
  } else {
    return bad("unknown format version " + std::to_string(major));
  }
  if (offset + header_len > bytes.size()) return bad("truncated header");
  const std::string header = bytes.substr(offset, header_len);
  std::string descr = dict_value(header, "descr");
  if (descr.size() < 4 || (descr.front() != '\'' && descr.front() != '"')) return bad("no 'descr' in the header");
  descr = descr.substr(1, descr.size() - 2);
  const char order = descr[0];
  if (order == '>') return unimplemented("'" + label + "': big-endian arrays are not supported (descr " + descr + ")");
  if (order == '<' || order == '|' || order == '=') descr = descr.substr(1);
  DType dtype = DType::kUndefined;
  for (const auto& t : kTypes) {
    if (descr == t.descr) dtype = t.dtype;
  }
  if (dtype == DType::kUndefined) {
    return unimplemented("'" + label + "': numpy dtype '" + descr + "' is not supported (use float32, int64, ...)");
  }
  const bool fortran = dict_value(header, "fortran_order") == "True";
  std::string shape = dict_value(header, "shape");
  if (shape.size() < 2 || shape.front() != '(') return bad("no 'shape' in the header");
  std::vector<int64_t> dims;
  std::stringstream ss(shape.substr(1, shape.size() - 2));
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t a = item.find_first_not_of(" ");
    if (a == std::string::npos) continue;
    try {
      dims.push_back(std::stoll(item.substr(a)));
    } catch (const std::exception&) {
      return bad("shape " + shape + " is not a tuple of integers");
    }
  }
  auto n = checked_num_elements(dims);
  if (!n) return bad("shape " + shape + " is invalid");
  const size_t need = dtype_storage_bytes(dtype, *n);
  const size_t data_at = offset + header_len;
  if (bytes.size() - data_at < need) {
    return bad("shape " + shape + " needs " + std::to_string(need) + " bytes of data but the file has " +
               std::to_string(bytes.size() - data_at));
  }
  KILN_ASSIGN_OR_RETURN(Tensor t, Tensor::allocate(dtype, dims));
  const auto* src = reinterpret_cast<const uint8_t*>(bytes.data()) + data_at;
  if (fortran && dims.size() > 1) {
    fortran_to_c(src, static_cast<uint8_t*>(t.raw_data()), dims, static_cast<size_t>(dtype_bits(dtype) / 8));
  } else if (need) {
    std::memcpy(t.raw_data(), src, need);
  }
  return t;
}

StatusOr<Tensor> read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("cannot open '" + path + "'");
  std::stringstream buf;
  buf << in.rdbuf();
  return parse_npy(buf.str(), path);
}

StatusOr<std::string> to_npy(const Tensor& t) {
  const char* descr = nullptr;
  for (const auto& k : kTypes) {
    if (k.dtype == t.dtype()) descr = k.descr;
  }
  if (!descr) return unimplemented(std::string("cannot write a ") + dtype_name(t.dtype()) + " tensor as .npy");
  std::string shape = "()";
  if (t.rank() > 1) {
    // numpy writes "(2, 3)": separators with a space, no trailing comma.
    shape = "(";
    for (size_t i = 0; i < t.rank(); ++i) shape += (i ? ", " : "") + std::to_string(t.dims()[i]);
    shape += ")";
  } else if (t.rank() == 1) {
    shape = "(" + std::to_string(t.dims()[0]) + ",)";
  }
  const char order = (t.dtype() == DType::kInt8 || t.dtype() == DType::kUInt8 || t.dtype() == DType::kBool) ? '|' : '<';
  std::string header =
      std::string("{'descr': '") + order + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Pad so that the data starts at a multiple of 64 bytes, ending the header with '\n' (as numpy does).
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out = "\x93NUMPY";
  out += static_cast<char>(1);
  out += static_cast<char>(0);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>((header.size() >> 8) & 0xff);
  out += header;
  out.append(static_cast<const char*>(t.raw_data()), t.nbytes());
  return out;
}

Status write_npy(const std::string& path, const Tensor& t) {
  KILN_ASSIGN_OR_RETURN(std::string bytes, to_npy(t));
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) {
      std::remove(tmp.c_str());
      return io_error("cannot write '" + path + "'");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return io_error("cannot write '" + path + "'");
  }
  return Status::ok();
}

}  // namespace kiln
