#include <iostream>

#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"kiln: check, inspect, edit, run and build ONNX models into engine plans"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "kiln 0.1.0");
  std::function<int()> run;
  kiln::cli::add_check(app, run);
  kiln::cli::add_show(app, run);
  kiln::cli::add_extract(app, run);
  kiln::cli::add_convert(app, run);
  kiln::cli::add_run(app, run);
  kiln::cli::add_bench(app, run);
  kiln::cli::add_optimize(app, run);
  kiln::cli::add_build(app, run);
  kiln::cli::add_quantize(app, run);
  kiln::cli::add_pack(app, run);
  kiln::cli::add_task(app, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kiln::cli::kExitUsage;
  }
  try {
    return run ? run() : kiln::cli::kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << "kiln: internal error: " << e.what() << "\n";
    return kiln::cli::kExitUsage;
  }
}
