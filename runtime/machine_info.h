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

// Size of the data/unified cache at `level` of the core this thread is running on
// (/sys/devices/system/cpu/cpuN/cache, N = sched_getcpu(); cpu0 if that fails), 0 if the OS does not
// say. On hybrid CPUs cores differ; MachineInfo::cache_bytes describes cpu0 only.
int64_t current_core_cache_bytes(int level);

// A byte size typed by a user (--l2, LOCUS_L2), the inverse of format_bytes. Grammar, exactly:
//   DIGITS [ "." DIGITS ] [ "K" | "M" | "G" ] [ "B" | "iB" ]      (letters case-insensitive)
// K = 1024, M = 1024^2, G = 1024^3 ("KB", "KiB", "kb" all mean 1024). Examples: "524288", "512K",
// "512KiB", "1M", "1m", "1.5M" (1572864), "0". A fraction is allowed (at most 9 digits) and the
// result is rounded down to whole bytes ("1.5" is 1, "0.1K" is 102).
// Returns -1 for anything else: empty, a sign ("-1", "+1"), spaces, exponents ("1e3"), hex, other
// suffixes ("1T", "1KK"), or a value of 2^63 bytes or more (overflow).
int64_t parse_bytes(const std::string& s);

}  // namespace locus
