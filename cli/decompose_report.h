// What `locus decompose` does, as library functions shared by the command (cli/cmd_decompose.cpp)
// and the Python module (locus.decompose): CP-decompose a model's standard convolutions, write and
// check the ONNX file, and the locus-decompose/1 report.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cli/json.h"
#include "graph/passes/cp_decompose.h"

namespace locus::cli {

struct DecomposeRequest {
  std::string model;             // resolved (resolve_model)
  std::string output;            // the ONNX file to write
  CpDecomposeOptions options;    // policy, form, max_iterations
  std::vector<std::string> layers;  // only these Conv nodes (empty: all)
  int64_t batch = 1;
  bool progress = true;          // one progress line per fit on stderr
};

struct DecomposeOutcome {
  DecomposeRequest request;
  std::vector<CpLayerReport> rows;  // one per Conv, in graph order
  double fit_seconds = 0;
  int64_t params_before = 0, params_after = 0, macs_before = 0, macs_after = 0;
  std::string out_shapes;   // "output [1,1000]" of the reloaded file
  int64_t file_bytes = 0;
  int64_t opset = 0;        // of the written file
};

// Checks the output folder, decomposes, writes request.output and reloads it as a check (one-line
// Error for a bad layer name, an unwritable file or a file that does not reload).
DecomposeOutcome decompose_model(const DecomposeRequest& request);

// The locus-decompose/1 document of `locus decompose --format json`.
Json decompose_json(const DecomposeOutcome& o);

}  // namespace locus::cli
