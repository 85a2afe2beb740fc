// Hardware performance counters around a region, read with perf_event_open(2) (no shell-out to
// perf). Counters the machine does not expose (common in virtual machines) are reported as absent
// with the reason, never as zero.
//
//   locus::PerfCounters pc = locus::PerfCounters::open_default();
//   pc.start(); session.run(...); pc.stop();
//   for (auto& r : pc.read()) ... r.value is std::nullopt when unsupported
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace locus {

struct CounterReading {
  std::string name;             // "cycles", "instructions", "l1d_read_misses", "llc_references",
                                // "llc_misses", "l2_misses" (where the PMU exposes it)
  std::optional<double> value;  // accumulated over all start/stop pairs; nullopt = not available
  std::string note;             // why absent, or "scaled (multiplexed)" when scaled
};

class PerfCounters {
 public:
  // Opens the default counter set for the calling process (all its threads, user space only).
  // Never throws for a missing counter: each one that fails to open is recorded as unavailable.
  static PerfCounters open_default();
  PerfCounters() = default;
  PerfCounters(PerfCounters&&) noexcept;
  PerfCounters& operator=(PerfCounters&&) noexcept;
  PerfCounters(const PerfCounters&) = delete;
  PerfCounters& operator=(const PerfCounters&) = delete;
  ~PerfCounters();

  // True if at least one counter opened.
  bool any_available() const;
  // One line for the user when nothing is available, e.g. "hardware counters are not supported on
  // this machine (perf_event_open: No such file or directory; a virtual machine without a PMU?)".
  std::string unavailable_reason() const;

  void start();
  void stop();
  void reset();
  std::vector<CounterReading> read() const;

 private:
  struct Counter;
  std::vector<Counter*> counters_;
  std::string reason_;
};

}  // namespace locus
