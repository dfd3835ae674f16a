// .npy reading and writing: a small, fully specified format (numpy's NEP 1), so written here.
#include "kiln/core/npy.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <vector>

#include "kiln/core/file.h"

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

// UTF-8 -> code points (a malformed byte becomes U+FFFD).
std::u32string utf8_to_utf32(const std::string& s) {
  std::u32string out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
    bool ok = len > 0 && i + static_cast<size_t>(len) <= s.size();
    for (int k = 1; ok && k < len; ++k) {
      const auto d = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
      ok = (d >> 6) == 2;
      cp = (cp << 6) | (d & 0x3f);
    }
    out.push_back(ok ? cp : U'\uFFFD');
    i += ok ? static_cast<size_t>(len) : 1;
  }
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x110000) {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    append_utf8(out, U'\uFFFD');
  }
}

// numpy's fixed-width strings: 'U<n>' (n UTF-32 code units each) or 'S<n>' (n bytes each), zero-padded.
StatusOr<Tensor> parse_strings(const std::string& bytes, size_t data_at, char kind, int64_t width, bool fortran,
                               const std::vector<int64_t>& dims, int64_t n,
                               const std::function<Status(std::string)>& bad) {
  const size_t unit = kind == 'U' ? 4 : 1;
  size_t need = 0;
  if (__builtin_mul_overflow(static_cast<size_t>(n), static_cast<size_t>(width) * unit, &need) ||
      bytes.size() - data_at < need) {
    return bad("needs " + std::to_string(need) + " bytes of string data but the file has " +
               std::to_string(bytes.size() - data_at));
  }
  std::vector<std::string> values(static_cast<size_t>(n));
  const auto* src = reinterpret_cast<const uint8_t*>(bytes.data()) + data_at;
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* e = src + static_cast<size_t>(i) * static_cast<size_t>(width) * unit;
    std::string& v = values[static_cast<size_t>(i)];
    for (int64_t k = 0; k < width; ++k) {
      if (kind == 'S') {
        v += static_cast<char>(e[k]);
      } else {
        const uint8_t* u = e + k * 4;
        append_utf8(v, static_cast<char32_t>(u[0] | (u[1] << 8) | (u[2] << 16) | (static_cast<uint32_t>(u[3]) << 24)));
      }
    }
    while (!v.empty() && v.back() == '\0') v.pop_back();  // numpy pads with zeros
  }
  if (fortran && dims.size() > 1) {
    // Reorder the strings into C order as fortran_to_c does for numbers.
    std::vector<std::string> c(values.size());
    std::vector<int64_t> fstride(dims.size(), 1), idx(dims.size(), 0);
    for (size_t i = 1; i < dims.size(); ++i) fstride[i] = fstride[i - 1] * dims[i - 1];
    for (int64_t i = 0; i < n; ++i) {
      int64_t off = 0;
      for (size_t d = 0; d < dims.size(); ++d) off += idx[d] * fstride[d];
      c[static_cast<size_t>(i)] = std::move(values[static_cast<size_t>(off)]);
      for (size_t d = dims.size(); d-- > 0;) {
        if (++idx[d] < dims[d]) break;
        idx[d] = 0;
      }
    }
    values = std::move(c);
  }
  return Tensor::from_strings(dims, std::move(values));
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
  // Fixed-width strings: 'U<n>' (what np.array([...]) of str gives) or 'S<n>' (bytes).
  int64_t str_width = -1;
  if ((descr[0] == 'U' || descr[0] == 'S') && descr.size() > 1 &&
      descr.find_first_not_of("0123456789", 1) == std::string::npos && descr.size() < 12) {
    str_width = std::stoll(descr.substr(1));
    if (str_width < 1) return bad("zero-width strings (dtype " + descr + ") are not supported");
    dtype = DType::kString;
  }
  if (dtype == DType::kUndefined) {
    if (descr == "O") {
      return unimplemented("'" + label +
                           "': numpy object arrays (pickled) cannot be read; save strings with a "
                           "fixed-width dtype (np.array(values, dtype=str))");
    }
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
  if (dtype == DType::kString) {
    return parse_strings(bytes, offset + header_len, descr[0], str_width, fortran, dims, *n,
                         [&](const std::string& why) { return bad("shape " + shape + " " + why); });
  }
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
  std::string descr;
  for (const auto& k : kTypes) {
    if (k.dtype == t.dtype()) descr = k.descr;
  }
  // Strings as numpy's str arrays: UTF-32 code units, as wide as the longest string (at least 1).
  std::vector<std::u32string> wide;
  size_t width = 1;
  if (t.dtype() == DType::kString) {
    for (const auto& v : t.strings()) {
      wide.push_back(utf8_to_utf32(v));
      width = std::max(width, wide.back().size());
    }
    descr = "U" + std::to_string(width);
  }
  if (descr.empty()) {
    return unimplemented(std::string("cannot write a ") + dtype_name(t.dtype()) +
                         " tensor as .npy (numpy has no such dtype)");
  }
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
  if (t.dtype() == DType::kString) {
    for (const auto& w : wide) {
      for (size_t k = 0; k < width; ++k) {
        const uint32_t cp = k < w.size() ? static_cast<uint32_t>(w[k]) : 0;
        for (int b = 0; b < 4; ++b) out += static_cast<char>((cp >> (8 * b)) & 0xff);
      }
    }
    return out;
  }
  out.append(static_cast<const char*>(t.raw_data()), t.nbytes());
  return out;
}

Status write_npy(const std::string& path, const Tensor& t) {
  KILN_ASSIGN_OR_RETURN(std::string bytes, to_npy(t));
  return write_file_atomic(path, bytes);
}

}  // namespace kiln
