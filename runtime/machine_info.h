// What machine this is: CPU model, cores, cache sizes and ISA, read from the OS (/proc/cpuinfo,
// /sys/devices/system/cpu). Benchmarks print it next to every figure; the tiling planner reads the
// L2 size from here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace locus {

struct CacheLevel {
  int level = 0;
  std::string type;  // "Data", "Instruction", "Unified"
  int64_t size_bytes = 0;
  int ways = 0;
  int line_bytes = 0;
  int shared_by_cpus = 0;  // logical CPUs sharing this cache
};

struct MachineInfo {
  std::string cpu_model;       // "AMD EPYC 7B13" or "unknown"
  int logical_cpus = 0;
  std::vector<CacheLevel> caches;  // of cpu0
  std::vector<std::string> isa;    // subset of: sse4_2 avx avx2 fma avx512f avx512bw avx512vl
  bool hypervisor = false;

  // Size of the data/unified cache at `level` seen by one core, 0 if unknown.
  int64_t cache_bytes(int level) const;
  std::string summary() const;  // one line: "AMD EPYC, 2 CPUs, L1d 32K, L2 512K, L3 32M, avx2 fma"
};

MachineInfo read_machine_info();

// "32K", "1M", "1.5M"
std::string format_bytes(int64_t bytes);

// Inverse of format_bytes for user input: "524288", "512K", "1M", "1.5M", "2G" (suffix case-
// insensitive, optional trailing "B"/"iB"; K = 1024). Returns -1 if `s` is not such a size.
int64_t parse_bytes(const std::string& s);

}  // namespace locus
