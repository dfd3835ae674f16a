// The kiln CLI: one file per subcommand, each thin over the library.
// Exit codes, for every command: 0 success, 1 the model or a request about it is wrong, 2 usage or I/O error, 3 the
// run was stopped: over a size or memory limit (--memory-limit), timed out (--timeout-ms) or terminated.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "kiln/core/custom_ops.h"
#include "kiln/core/status.h"
#include "kiln/ir/graph.h"
#include "kiln/runtime/session.h"

namespace kiln::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitInvalid = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitStopped = 3;

// Each add_* registers a subcommand and sets `run` to the function that executes it.
void add_check(CLI::App& root, std::function<int()>& run);
void add_show(CLI::App& root, std::function<int()>& run);
void add_extract(CLI::App& root, std::function<int()>& run);
void add_convert(CLI::App& root, std::function<int()>& run);
void add_run(CLI::App& root, std::function<int()>& run);
void add_bench(CLI::App& root, std::function<int()>& run);
void add_optimize(CLI::App& root, std::function<int()>& run);
void add_pack(CLI::App& root, std::function<int()>& run);
void add_task(CLI::App& root, std::function<int()>& run);
void add_build(CLI::App& root, std::function<int()>& run);
void add_quantize(CLI::App& root, std::function<int()>& run);

// Engine plans (plan_cli.cc): kiln show and kiln check on a .kplan, and the per-node kernel list.
int show_plan(const std::string& path, const std::string& format);
int check_plan(const std::string& path, bool quiet);
void print_plan_kernels(const Session& s);

// The exit code for a failed status: 2 for I/O and format problems, 3 for a limit, a timeout or a termination,
// 1 for an invalid model or request.
int exit_code_for(const Status& status);
// Prints "kiln: <message>" to stderr and returns exit_code_for(status).
int report_error(const Status& status);
// Adds --memory-limit MB and --timeout-ms MS (SessionOptions::memory_limit_mb, RunOptions::timeout_ms).
void add_limit_options(CLI::App* cmd, int64_t& memory_limit_mb, double& timeout_ms);
// Adds --custom-ops LIB (repeatable): shared libraries of custom operators (kiln/custom_op.h).
void add_custom_ops_option(CLI::App* cmd, std::vector<std::string>& libraries);
// Loads them; on failure prints the error (naming the library) and returns kExitUsage, else kExitOk.
int load_custom_ops(const std::vector<std::string>& libraries, CustomOps& out);
// Loads an ONNX model, printing the error on failure (for a plan: that this command takes ONNX models only).
bool load_or_report(const std::string& path, ir::Model& model, int& exit_code);
// A one-line progress bar on stderr, redrawn in place when stderr is a terminal; otherwise one line per stage.
class ProgressBar {
 public:
  ProgressBar();
  void update(const std::string& stage, double fraction);
  void finish();

 private:
  bool tty_;
  std::string last_;
};

// Adds --precision fp32|bf16 (SessionOptions::precision) storing the text in `precision`.
void add_precision_option(CLI::App* cmd, std::string& precision);
// --disable-kernel NAME (repeatable): SessionOptions::disabled_kernels.
void add_disable_kernel_option(CLI::App* cmd, std::vector<std::string>& kernels);
// Adds --opt-level (disabled|basic|extended|all or 0|1|2|99; default all) storing the text in `level`.
void add_opt_level_option(CLI::App* cmd, std::string& level);
// The dims of every input of session `s`: from its --shape NAME=1x3x224x224 in `specs`, else its declared static
// shape. Returns kExitOk, or prints what is wrong (a malformed spec, an unknown input, an input whose dims are
// not all known, naming it) and returns kExitUsage.
int input_dims(const Session& s, const std::vector<std::string>& specs, std::vector<std::vector<int64_t>>& dims);
// "12.3 MiB".
std::string mib_text(double bytes);
// "a,b,c" -> {"a","b","c"} (empty items dropped).
std::vector<std::string> split_list(const std::vector<std::string>& items);

}  // namespace kiln::cli
