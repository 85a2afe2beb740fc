// Entry point of the `locus` program: dispatches to the subcommands and turns every error into
// one line on stderr and a non-zero exit status.
#include "cli/cli.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "graph/error.h"
#include "models/model_path.h"

namespace fs = std::filesystem;

namespace locus::cli {

static const char* kUsage =
    "usage: locus <command> [options]\n"
    "\n"
    "A CNN inference runtime for CPUs built around data locality.\n"
    "\n"
    "commands:\n"
    "  run MODEL --image PHOTO...   classify photos (or --input NAME=FILE.pb), print top-K and latency\n"
    "  info MODEL                   operators, parameters, per-layer shapes and MACs\n"
    "  check DIR...                 run ONNX test-layout folders and compare with their outputs\n"
    "  bench MODEL                  latency, memory and cache misses per backend, side by side\n"
    "\n"
    "MODEL is a .onnx file or a folder holding one, looked up as given, then in --model-dir,\n"
    "$LOCUS_MODEL_DIR and ../shared/models beside the source checkout.\n"
    "Run 'locus <command> --help' for the options of a command.\n";

std::string resolve_model(const std::string& model, const std::string& model_dir) {
  std::string p = models::find_model(model, model_dir);
  std::error_code ec;
  if (fs::is_directory(p, ec)) {
    std::vector<std::string> found;
    for (auto& e : fs::directory_iterator(p, ec))
      if (e.path().extension() == ".onnx") found.push_back(e.path().string());
    LOCUS_CHECK(!found.empty(), "folder '", p, "' holds no .onnx file");
    LOCUS_CHECK(found.size() == 1, "folder '", p, "' holds ", found.size(), " .onnx files; name one");
    return found[0];
  }
  return p;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::string cmd = argv[1];
  try {
    if (cmd == "--help" || cmd == "-h" || cmd == "help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (cmd == "--version") {
      std::puts("locus 0.1.0");
      return 0;
    }
    if (cmd == "run") return cmd_run(argc, argv);
    if (cmd == "info") return cmd_info(argc, argv);
    if (cmd == "check") return cmd_check(argc, argv);
    if (cmd == "bench") return cmd_bench(argc, argv);
    throw UsageError("unknown command '" + cmd + "'");
  } catch (const UsageError& e) {
    std::cerr << "locus: " << e.what() << " (see 'locus " << (cmd.rfind("-", 0) == 0 ? "" : cmd + " ")
              << "--help')\n";
    return 2;
  } catch (const std::bad_alloc&) {
    std::cerr << "locus: error: out of memory\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "locus: error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace locus::cli
