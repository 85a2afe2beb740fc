// libFuzzer target for the command line: the bytes, split on NUL, are the arguments after `locus`
// (the first one is the command). Each command parses and checks its options as it does in the
// program (CLI11 parsers from cli/options.cpp with the shared --l2/--tile-order/--decompose/--accel/
// --buffer groups, sizes through parse_bytes and parse_entries, --sweep ranges, --input specs,
// --accel config files) and, with stop_after_options() set, returns before it resolves or loads a
// model. Any argument vector
// must either be accepted or throw UsageError (exit 2 in the program) or locus::Error (exit 1);
// anything else (another exception type, a crash, a sanitizer report, a hang, a large allocation) is
// a bug. --help output goes to /dev/null.
//
// With LOCUS_FUZZ_WRITE_SEEDS=<dir> the binary writes seed command lines into <dir> and exits.
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "cli/commands.h"
#include "graph/error.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/fuzz_seeds.h"

namespace {

void write_seeds(const std::string& dir) {
  const std::vector<std::vector<std::string>> lines = {
      {"run", "m.onnx", "--input", "x=input_0.pb", "--l2", "512K", "--tile-order", "row", "--threads", "2"},
      {"run", "m.onnx", "--image", "cat.jpg", "--top", "3", "--batch", "1", "--decompose", "rank=16",
       "--decompose-form", "4", "--backend", "accel", "--accel-schedule", "scan", "--accel", "default-ddr4",
       "--buffer", "64K", "--no-fuse", "--explain"},
      {"info", "m.onnx", "--batch=2", "--plans", "--l2=1.5M", "--passes"},
      {"check", "dir", "--rtol", "1e-3", "--atol", "0.0001", "--decompose", "error=0.05", "--quiet"},
      {"bench", "m.onnx", "--backend", "native,onednn", "--runs", "3", "--warmup", "0", "--ll-level", "3",
       "--decompose", "macs=0.3"},
      {"energy", "m.onnx", "--sweep", "8K:2M", "--schedule", "baseline,fused-scan", "--format", "csv", "--dram",
       "ddr4-2400-micron-x8", "--accel", "default"},
      {"energy", "m.onnx", "--trace", "t.trc", "--trace-schedule", "scan", "--schedule", "scan", "--buffer", "1M"},
      {"decompose", "m.onnx", "-o", "out.onnx", "--rank", "ratio=0.5", "--form", "4", "--layers", "a,b",
       "--iterations", "10", "--format", "json"},
      {"run", "--help"},
      {"energy", "-h"},
      {"info", "--", "-m.onnx"},
  };
  int i = 0;
  for (const auto& l : lines) {
    std::string bytes;
    for (size_t k = 0; k < l.size(); ++k) bytes += (k ? std::string(1, '\0') : "") + l[k];
    locus_fuzz::write_bytes(dir + "/args_" + std::to_string(i++) + ".bin", bytes);
  }
}


}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  locus_fuzz::write_seeds_if_asked(write_seeds);
  locus::cli::stop_after_options() = true;
  const int devnull = open("/dev/null", O_WRONLY);
  if (devnull >= 0) dup2(devnull, STDOUT_FILENO);  // --help text
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;  // command lines are short; keeps the search on the parsers
  std::vector<std::string> args{"locus"};
  std::string cur;
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0) {
      args.push_back(cur);
      cur.clear();
    } else {
      cur += char(data[i]);
    }
  }
  args.push_back(cur);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  try {
    locus::cli::run_command(int(args.size()), argv.data());
  } catch (const locus::cli::UsageError&) {
    // bad usage: exit 2 in the program
  } catch (const locus::Error&) {
    // a bad value the parsers refuse (unknown preset, bad config file, ...): exit 1
  }
  return 0;
}
