// A Mapping: what the mapper (accel/mapper.h) decided for one schedule of a Workload, and all the
// evaluator (accel/evaluator.h) needs to price it: per layer the GEMM tiles, the depthwise/pool row
// band, the fused-block plan or "run this fused group layer by layer" (with the stages' own
// mappings), and the tensor placement (DRAM byte address of every tensor region).
//
// JSON form (docs/accelerator-model.md, "Mapping files"): one file holds the mappings of one model,
//   {"schema": "locus-mapping/1", "model": "...", "batch": 1, "word_bits": 16,
//    "mappings": [{"schedule": "scan", "buffer_entries": 65536,
//                  "layers": [{"name": "conv1", "gemm": {"m": 64, "n": 32, "k": 27, "order": "row-major"}},
//                             {"name": "dw1", "band": {"rows": 4, "chunk": 32}},
//                             {"name": "block2", "fused": {"rows": 2, "chunk": 96, "halo_cache": true}},
//                             {"name": "block3", "stages": [...], "note": "..."}, {"name": "relu"}],
//                  "placement": {"tensor": address, ...}}]}
// Reading validates everything against the workload and config (layer count and names, plans within
// the layer's dimensions and feasible for the buffer, every tensor placed once within bounds and
// without overlap, no unknown or duplicate keys) and refuses with a one-line Error.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "accel/accel_config.h"
#include "accel/workload.h"
#include "schedule/fused_block_planner.h"
#include "schedule/fused_chain_planner.h"
#include "schedule/tiling_planner.h"

namespace locus::accel {

enum class ScheduleKind { Baseline, Scan, FusedScan };
const char* schedule_name(ScheduleKind k);  // "baseline", "scan", "fused-scan"
// Throws Error listing the known names.
ScheduleKind parse_schedule(const std::string& name);
std::vector<ScheduleKind> all_schedules();

// The row-band walk of a depthwise conv or pool: output rows per band, channels per chunk.
struct BandPlan {
  int64_t rows = 0, chunk = 0;
};

struct LayerMapping {
  std::string name;                                 // the layer's (or stage's) name
  std::optional<schedule::Plan> gemm;               // Pointwise / Conv / Gemm
  std::optional<BandPlan> band;                     // Depthwise / Pool
  std::optional<schedule::FusedBlockPlan> fused;    // a Fused layer run as one fused schedule
  std::optional<schedule::SeBlockPlan> se;          // ... of a squeeze-excite block (fused = se->block)
  std::optional<schedule::FusedChainPlan> chain;    // a FusedChain layer run as one fused schedule
  std::vector<LayerMapping> stages;                 // a Fused layer run layer by layer
  std::string note;                                 // why a fused group runs layer by layer
};

struct Mapping {
  ScheduleKind kind = ScheduleKind::FusedScan;
  int64_t buffer_entries = 0;                 // S
  std::vector<LayerMapping> layers;           // one per Workload layer, in order
  std::map<std::string, uint64_t> placement;  // storage tensor -> DRAM byte address
};

// The JSON text of `mappings` (all of one workload), newline-terminated. `model` is informational.
std::string mappings_to_json(const std::vector<Mapping>& mappings, const Workload& wl, const AccelConfig& cfg,
                             const std::string& model);
// Parses and validates a mapping file's text against `wl` and `cfg` (word size; the buffer each
// mapping names is checked by the caller). `where` names the text in errors.
std::vector<Mapping> mappings_from_json(const std::string& text, const Workload& wl, const AccelConfig& cfg,
                                        const std::string& where);
// Reads a mapping file (at most 64 MiB); errors name the path.
std::vector<Mapping> read_mapping_file(const std::string& path, const Workload& wl, const AccelConfig& cfg);

}  // namespace locus::accel
