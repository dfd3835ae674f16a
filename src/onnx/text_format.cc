// Protobuf text format, the form python's print(model) shows.
#include <google/protobuf/text_format.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "kiln/onnx/check.h"
#include "onnx/model_io_internal.h"
#include "onnx/proto_convert.h"

namespace kiln::onnx {
namespace {

// Python's repr() of a double: the shortest digits that read back to the same value, in fixed notation for
// decimal exponents -4..15 (with ".0" when integral) and scientific otherwise ("1e-05").
std::string python_repr(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  char buf[64];
  int precision = 1;
  for (; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*e", precision - 1, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  // buf is "[-]d.ddde[+-]xx": split into sign, digits and exponent.
  std::string s(buf);
  std::string sign;
  if (s[0] == '-') {
    sign = "-";
    s.erase(0, 1);
  }
  size_t epos = s.find('e');
  int exp = std::atoi(s.c_str() + epos + 1);
  std::string digits;
  for (size_t i = 0; i < epos; ++i) {
    if (s[i] != '.') digits += s[i];
  }
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  std::string out;
  if (exp >= -4 && exp < 16) {
    if (exp >= 0) {
      std::string int_part = digits.substr(0, std::min<size_t>(digits.size(), static_cast<size_t>(exp) + 1));
      int_part.append(static_cast<size_t>(exp) + 1 - int_part.size(), '0');
      std::string frac =
          digits.size() > static_cast<size_t>(exp) + 1 ? digits.substr(static_cast<size_t>(exp) + 1) : "";
      out = int_part + "." + (frac.empty() ? "0" : frac);
    } else {
      out = "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
    }
  } else {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char e[16];
    std::snprintf(e, sizeof e, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    out += e;
  }
  return sign + out;
}

// python's text_format prints a float field as str(float(shortest "%.Ng" that reads back as the same float32)).
std::string python_float(float f) {
  if (std::isnan(f) || std::isinf(f)) return python_repr(f);
  char buf[64];
  for (int precision = 6; precision <= 9; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, static_cast<double>(f));
    double d = std::strtod(buf, nullptr);
    if (static_cast<float>(d) == f) return python_repr(d);
  }
  return python_repr(static_cast<double>(f));
}

class PythonStylePrinter : public google::protobuf::TextFormat::FastFieldValuePrinter {
 public:
  void PrintFloat(float v, google::protobuf::TextFormat::BaseTextGenerator* g) const override {
    g->PrintString(python_float(v));
  }
  void PrintDouble(double v, google::protobuf::TextFormat::BaseTextGenerator* g) const override {
    g->PrintString(python_repr(v));
  }
};

StatusOr<std::string> to_text(const ::onnx::ModelProto& proto) {
  google::protobuf::TextFormat::Printer printer;
  printer.SetDefaultFieldValuePrinter(new PythonStylePrinter());
  std::string out;
  if (!printer.PrintToString(proto, &out)) return internal_error("text format printing failed");
  return out;
}

}  // namespace

StatusOr<std::string> model_text_from_file(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(auto proto, read_model_proto(path));
  return to_text(proto);
}

StatusOr<std::string> model_text(const ir::Model& model) {
  ::onnx::ModelProto proto;
  KILN_RETURN_IF_ERROR(model_to_proto(model, &proto));
  return to_text(proto);
}

}  // namespace kiln::onnx
