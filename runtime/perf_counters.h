// Hardware performance counters around a region, read with perf_event_open(2) (no shell-out to
// perf). Counters the machine does not expose (common in virtual machines) are reported as absent
// with the reason, never as zero.
//
//   locus::PerfCounters pc = locus::PerfCounters::open_default();
//   pc.start(); session.run(...); pc.stop();
//   for (auto& r : pc.read()) ... r.value is std::nullopt when unsupported
//
// Threads. A perf event is attached to one thread; with inherit=1 the threads that thread creates
// *after* the event is opened get a child event whose counts are summed into the parent's. Threads
// that already exist are not covered by inheritance, so open_default() opens one event per counter
// for every thread listed in /proc/self/task at that moment (each with inherit=1) and sums them.
// The simplest correct use is still: open the counters BEFORE the first Session is created and
// before the first OpenMP parallel region (libgomp creates its pool lazily in the first parallel
// region and keeps it), as `locus bench` does. Threads that a not-yet-covered thread creates in the
// short window between listing /proc/self/task and opening its event are missed.
// Counts are user space only (exclude_kernel=1, exclude_hv=1).
//
// Multiplexing. When the PMU has fewer hardware counters than events, the kernel time-slices them;
// each reading is then scaled by time_enabled / time_running and its note says "scaled
// (multiplexed)". A counter that was enabled but never got onto the PMU is absent (nullopt).
//
// Which cache events. l1d_read_misses is PERF_TYPE_HW_CACHE L1D/READ/MISS. llc_references and
// llc_misses are the generic PERF_COUNT_HW_CACHE_REFERENCES/MISSES, whose meaning is vendor-defined:
// on Intel they count last-level (L3) references/misses; on AMD Zen (family 17h+) the kernel maps
// them to L2 requests (0xff60) and L2 misses (0x0964), because the core PMU cannot see the L3 (the
// reading's note says so). There is no portable L2 event: PERF_TYPE_HW_CACHE "LL" is the L3 on
// Intel and is not implemented on AMD Zen, so no separate "l2_misses" counter is opened.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace locus {

struct CounterReading {
  std::string name;             // "cycles", "instructions", "l1d_read_misses", "llc_references",
                                // "llc_misses" (no "l2_misses": see the note at the top)
  std::optional<double> value;  // accumulated over all start/stop pairs; nullopt = not available
                                // (exactly 0 for an available counter not started since reset())
  std::string note;             // why absent, or "scaled (multiplexed)" when scaled; also what the
                                // event really counts where that differs (AMD Zen "llc" = L2)
};

class PerfCounters {
 public:
  // Opens the default counter set for the calling process (all its threads, user space only).
  // Never throws for a missing counter: each one that fails to open is recorded as unavailable.
  static PerfCounters open_default();

  // Any events, for tests and experiments: `type` and `config` as in perf_event_attr (e.g.
  // PERF_TYPE_SOFTWARE / PERF_COUNT_SW_TASK_CLOCK, which virtual machines do support). Opened like
  // open_default() (all threads, inherit, user space only, disabled until start()).
  struct EventSpec {
    std::string name;
    uint32_t type = 0;
    uint64_t config = 0;
  };
  static PerfCounters open_events(const std::vector<EventSpec>& events);
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
  // When only some counters are missing it names them; "" when every counter opened.
  std::string unavailable_reason() const;

  // start() enables counting (ioctl PERF_EVENT_IOC_ENABLE on every event and its inherited
  // children), stop() disables it; counts accumulate over start/stop pairs until reset(), which
  // makes the next read() count from now (it rebases, so time_enabled/running restart as well).
  // All four may be called in any order, any number of times, also on a default-constructed or
  // moved-from object.
  void start();
  void stop();
  void reset();
  std::vector<CounterReading> read() const;

 private:
  struct Counter;
  std::vector<Counter*> counters_;
  std::string reason_;
};

// Pure helpers behind PerfCounters, exposed so that tests can drive them without hardware.
namespace perf_detail {

// A raw count scaled for multiplexing: raw * enabled / running; raw when running == enabled;
// nullopt when running == 0 (the event never got onto the PMU, nothing is known).
std::optional<double> scale_count(uint64_t raw, uint64_t enabled, uint64_t running);

// Content of /proc/sys/kernel/perf_event_paranoid ("2\n") -> 2; nullopt for anything else.
std::optional<int> parse_paranoid(const std::string& content);

// The value of /proc/sys/kernel/perf_event_paranoid on this machine, nullopt if unreadable.
std::optional<int> read_paranoid();

// Symbolic errno name ("ENOENT"), or "errno N" when unknown.
std::string errno_name(int err);

// Why perf_event_open failed with `err`, in words, with the likely explanation, e.g. for ENOENT:
// "the CPU/PMU does not provide this event (a virtual machine without PMU passthrough?)". For
// EACCES/EPERM it names the paranoid level when known.
std::string errno_explanation(int err, std::optional<int> paranoid);

// The one-line unavailable_reason() for a set of failed counters: (name, errno) pairs, and whether
// any counter opened at all. Empty when `failed` is empty.
std::string unavailable_line(const std::vector<std::pair<std::string, int>>& failed, bool any_available,
                             std::optional<int> paranoid);

}  // namespace perf_detail

}  // namespace locus
