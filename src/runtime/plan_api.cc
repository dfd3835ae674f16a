// The parts of kiln/runtime/plan.h that need no ONNX importer (kiln_engine): profiles, and reading a plan's record.
#include <cstdio>
#include <cstring>

#include "kiln/core/file.h"
#include "kiln/runtime/plan.h"
#include "runtime/plan_format.h"

namespace kiln {

const ShapeProfile::Input* ShapeProfile::find(const std::string& input) const {
  for (const auto& i : inputs) {
    if (i.name == input) return &i;
  }
  return nullptr;
}

namespace {

StatusOr<std::vector<int64_t>> parse_dims(const std::string& text, const std::string& where) {
  std::vector<int64_t> dims;
  size_t at = 0;
  while (at <= text.size()) {
    const size_t x = std::min(text.find('x', at), text.size());
    const std::string part = text.substr(at, x - at);
    char* end = nullptr;
    const long long v = part.empty() ? -1 : std::strtoll(part.c_str(), &end, 10);
    if (part.empty() || *end != '\0' || v < 0) {
      return invalid_argument(where + ": '" + text + "' is not a shape (expected dims joined by x, as 1x3x224x224)");
    }
    dims.push_back(v);
    at = x + 1;
  }
  return dims;
}

}  // namespace

Status parse_profile_option(const std::string& text, std::vector<ShapeProfile>& profiles) {
  const std::string where = "--profile '" + text + "'";
  // NAME:min=...,opt=...,max=... where NAME is the input; the profile's own name is "default" unless the option
  // gives one as PROFILE/NAME.
  std::string input, spec = text, profile_name = "default";
  const size_t colon = text.rfind(':');
  if (colon != std::string::npos) {
    input = text.substr(0, colon);
    spec = text.substr(colon + 1);
    const size_t slash = input.find('/');
    if (slash != std::string::npos) {
      profile_name = input.substr(0, slash);
      input = input.substr(slash + 1);
    }
  }
  ShapeProfile::Input in;
  in.name = input;
  bool have_min = false, have_opt = false, have_max = false;
  size_t at = 0;
  while (at < spec.size()) {
    const size_t comma = std::min(spec.find(',', at), spec.size());
    const std::string item = spec.substr(at, comma - at);
    const size_t eq = item.find('=');
    const std::string key = eq == std::string::npos ? item : item.substr(0, eq);
    if (eq == std::string::npos || (key != "min" && key != "opt" && key != "max")) {
      return invalid_argument(where + ": '" + item + "' is not min=SHAPE, opt=SHAPE or max=SHAPE");
    }
    KILN_ASSIGN_OR_RETURN(auto dims, parse_dims(item.substr(eq + 1), where));
    (key == "min" ? in.min : key == "opt" ? in.opt : in.max) = std::move(dims);
    (key == "min" ? have_min : key == "opt" ? have_opt : have_max) = true;
    at = comma + 1;
  }
  if (!have_min || !have_max) return invalid_argument(where + ": needs min=SHAPE and max=SHAPE (opt= is optional)");
  if (!have_opt) in.opt = in.max;
  if (in.min.size() != in.opt.size() || in.min.size() != in.max.size()) {
    return invalid_argument(where + ": min, opt and max have different ranks");
  }
  for (size_t d = 0; d < in.min.size(); ++d) {
    if (in.min[d] > in.opt[d] || in.opt[d] > in.max[d]) {
      return invalid_argument(where + ": dimension " + std::to_string(d) + " must satisfy min <= opt <= max (" +
                              std::to_string(in.min[d]) + ", " + std::to_string(in.opt[d]) + ", " +
                              std::to_string(in.max[d]) + ")");
    }
  }
  for (auto& p : profiles) {
    if (p.name != profile_name) continue;
    if (p.find(in.name))
      return invalid_argument(where + ": profile '" + p.name + "' already has input '" + in.name + "'");
    p.inputs.push_back(std::move(in));
    return Status::ok();
  }
  profiles.push_back({profile_name, {std::move(in)}});
  return Status::ok();
}

bool is_plan_file(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  char magic[sizeof plan::kMagic] = {};
  const bool ok = std::fread(magic, 1, sizeof magic, f) == sizeof magic;
  std::fclose(f);
  return ok && std::memcmp(magic, plan::kMagic, sizeof magic) == 0;
}

StatusOr<PlanInfo> read_plan_info(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(auto file, map_file(path, "plan"));
  KILN_ASSIGN_OR_RETURN(auto contents, plan::read(file, "plan '" + path + "'", /*metadata_only=*/true));
  return std::move(contents.info);
}

Status verify_plan_weights(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(auto file, map_file(path, "plan"));
  return plan::verify_weights(file, "plan '" + path + "'");
}

}  // namespace kiln
