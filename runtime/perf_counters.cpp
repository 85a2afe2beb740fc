// PerfCounters: perf_event_open(2) through syscall(2), one event per counter and per thread that
// exists when the counters are opened (each with inherit=1, so threads created later are counted
// too), read with TOTAL_TIME_ENABLED/RUNNING so that multiplexed counts can be scaled.
#include "runtime/perf_counters.h"

#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace locus {

// ---------------------------------------------------------------------------------------------
// pure helpers

namespace perf_detail {

std::optional<double> scale_count(uint64_t raw, uint64_t enabled, uint64_t running) {
  if (running == 0) return std::nullopt;
  if (running >= enabled) return double(raw);
  return double(raw) * (double(enabled) / double(running));
}

std::optional<int> parse_paranoid(const std::string& content) {
  size_t b = content.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return std::nullopt;
  size_t e = content.find_last_not_of(" \t\r\n");
  std::string s = content.substr(b, e - b + 1);
  size_t i = 0;
  if (s[0] == '-' || s[0] == '+') i = 1;
  if (i == s.size() || s.size() - i > 6) return std::nullopt;
  for (size_t k = i; k < s.size(); ++k)
    if (s[k] < '0' || s[k] > '9') return std::nullopt;
  return std::atoi(s.c_str());
}

std::optional<int> read_paranoid() {
  std::ifstream f("/proc/sys/kernel/perf_event_paranoid");
  if (!f) return std::nullopt;
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_paranoid(ss.str());
}

std::string errno_name(int err) {
  switch (err) {
    case ENOENT: return "ENOENT";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENODEV: return "ENODEV";
    case EINVAL: return "EINVAL";
    case ENOSYS: return "ENOSYS";
    case EMFILE: return "EMFILE";
    case EBUSY: return "EBUSY";
    case ESRCH: return "ESRCH";
    case E2BIG: return "E2BIG";
    case EFAULT: return "EFAULT";
    case ENOSPC: return "ENOSPC";
    default: return "errno " + std::to_string(err);
  }
}

std::string errno_explanation(int err, std::optional<int> paranoid) {
  std::string level = paranoid ? std::to_string(*paranoid) : std::string("unknown");
  switch (err) {
    case ENOENT:
      return "the CPU/PMU does not provide this event (a virtual machine without PMU passthrough, or a CPU "
             "without it?)";
    case EOPNOTSUPP:
      return "the PMU cannot count this event as asked (a virtual machine without PMU passthrough?)";
    case ENODEV:
      return "no PMU handles this event type (a virtual machine without PMU passthrough?)";
    case EACCES:
    case EPERM:
      return "not permitted: /proc/sys/kernel/perf_event_paranoid is " + level +
             " (user-space counting of one's own process needs 2 or less, or CAP_PERFMON)";
    case EINVAL:
      return "the kernel rejected the event attributes (event not valid on this CPU or kernel)";
    case ENOSYS:
      return "perf_event_open is not available (kernel without CONFIG_PERF_EVENTS, or blocked by a "
             "container's seccomp profile)";
    case EMFILE:
      return "too many open files";
    case EBUSY:
      return "the PMU is in exclusive use by another tool";
    case ENOSPC:
      return "no free hardware counter";
    default:
      return std::strerror(err);
  }
}

std::string unavailable_line(const std::vector<std::pair<std::string, int>>& failed, bool any_available,
                             std::optional<int> paranoid) {
  if (failed.empty()) return "";
  bool same = true;
  for (auto& f : failed) same = same && f.second == failed[0].second;
  int err0 = failed[0].second;
  bool denied = err0 == EACCES || err0 == EPERM;
  std::string s;
  if (!any_available) {
    s = denied ? "hardware counters are not permitted for this user" : "hardware counters are not supported on this machine";
  } else {
    s = "some hardware counters are not supported:";
    for (size_t i = 0; i < failed.size(); ++i) {
      s += i ? ", " : " ";
      s += failed[i].first;
    }
  }
  s.append(" (perf_event_open: ").append(std::strerror(err0)).append(" [").append(errno_name(err0)).append("]");
  if (!same) {
    s.append(" for ").append(failed[0].first).append(";");
    for (size_t i = 1; i < failed.size(); ++i)
      if (failed[i].second != err0)
        s.append(" ").append(errno_name(failed[i].second)).append(" for ").append(failed[i].first).append(";");
  } else {
    s.append(";");
  }
  s.append(" ").append(errno_explanation(err0, paranoid));
  if (!denied)
    s.append("; kernel.perf_event_paranoid = ").append(paranoid ? std::to_string(*paranoid) : std::string("unreadable"));
  s.append(")");
  for (auto& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

}  // namespace perf_detail

// ---------------------------------------------------------------------------------------------
// PerfCounters

namespace {

struct Sample {
  uint64_t value = 0, enabled = 0, running = 0;
};

bool read_sample(int fd, Sample* s) {
  uint64_t buf[3];
  ssize_t n = ::read(fd, buf, sizeof buf);
  if (n != ssize_t(sizeof buf)) return false;
  *s = {buf[0], buf[1], buf[2]};
  return true;
}

int open_event(uint32_t type, uint64_t config, pid_t tid, bool exclude_hv) {
  perf_event_attr a;
  std::memset(&a, 0, sizeof a);
  a.size = sizeof a;
  a.type = type;
  a.config = config;
  a.disabled = 1;  // start() enables
  a.inherit = 1;   // threads created later by this thread are counted (summed into this event)
  a.exclude_kernel = 1;
  a.exclude_hv = exclude_hv ? 1 : 0;
  a.read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
  long fd = syscall(SYS_perf_event_open, &a, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
  return fd < 0 ? -1 : int(fd);
}

// Threads of this process other than the calling one, from /proc/self/task.
std::vector<pid_t> other_threads() {
  std::vector<pid_t> r;
  pid_t self = pid_t(syscall(SYS_gettid));
  std::error_code ec;
  for (auto& e : fs::directory_iterator("/proc/self/task", ec)) {
    std::string n = e.path().filename().string();
    if (n.empty() || n.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t t = pid_t(std::atol(n.c_str()));
    if (t != self) r.push_back(t);
  }
  return r;
}

// On AMD Zen the generic cache-references/misses events are L2 events (see the header).
bool amd_zen() {
  std::ifstream f("/proc/cpuinfo");
  std::string line, vendor;
  int family = 0;
  while (std::getline(f, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
    std::string val = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
    if (key == "vendor_id" && vendor.empty()) vendor = val;
    if (key == "cpu family" && family == 0) family = std::atoi(val.c_str());
    if (!vendor.empty() && family) break;
  }
  return (vendor == "AuthenticAMD" || vendor == "HygonGenuine") && family >= 0x17;
}

}  // namespace

struct PerfCounters::Counter {
  std::string name;
  std::vector<int> fds;       // one per thread that existed at open time (first: the caller's)
  std::vector<Sample> base;   // per fd, the sample at the last reset()
  int err = 0;                // errno when the event could not be opened (fds empty)
  std::string info;           // note attached to a present value (what the event really counts)

  ~Counter() {
    for (int fd : fds) ::close(fd);
  }
};

PerfCounters PerfCounters::open_events(const std::vector<EventSpec>& events) {
  PerfCounters pc;
  std::vector<pid_t> others = other_threads();
  for (auto& ev : events) {
    auto* c = new Counter;
    pc.counters_.push_back(c);
    c->name = ev.name;
    bool exclude_hv = true;
    int fd = open_event(ev.type, ev.config, 0, exclude_hv);
    if (fd < 0 && (errno == EOPNOTSUPP || errno == EINVAL)) {
      // some PMUs cannot filter the hypervisor; counting it too is better than nothing
      exclude_hv = false;
      fd = open_event(ev.type, ev.config, 0, exclude_hv);
    }
    if (fd < 0) {
      c->err = errno;
      continue;
    }
    c->fds.push_back(fd);
    for (pid_t t : others) {
      int f = open_event(ev.type, ev.config, t, exclude_hv);
      if (f >= 0) c->fds.push_back(f);  // ESRCH: the thread has exited meanwhile; nothing to count
    }
    c->base.assign(c->fds.size(), Sample{});
  }
  std::vector<std::pair<std::string, int>> failed;
  for (auto* c : pc.counters_)
    if (c->fds.empty()) failed.push_back({c->name, c->err});
  pc.reason_ = perf_detail::unavailable_line(failed, pc.any_available(), perf_detail::read_paranoid());
  return pc;
}

PerfCounters PerfCounters::open_default() {
  const uint64_t l1d_read_miss = uint64_t(PERF_COUNT_HW_CACHE_L1D) | (uint64_t(PERF_COUNT_HW_CACHE_OP_READ) << 8) |
                                 (uint64_t(PERF_COUNT_HW_CACHE_RESULT_MISS) << 16);
  PerfCounters pc = open_events({
      {"cycles", PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES},
      {"instructions", PERF_TYPE_HARDWARE, PERF_COUNT_HW_INSTRUCTIONS},
      {"l1d_read_misses", PERF_TYPE_HW_CACHE, l1d_read_miss},
      {"llc_references", PERF_TYPE_HARDWARE, PERF_COUNT_HW_CACHE_REFERENCES},
      {"llc_misses", PERF_TYPE_HARDWARE, PERF_COUNT_HW_CACHE_MISSES},
  });
  if (pc.any_available() && amd_zen()) {
    for (auto* c : pc.counters_) {
      if (c->name == "llc_references") c->info = "AMD Zen: counts L2 requests, not L3 references";
      if (c->name == "llc_misses") c->info = "AMD Zen: counts L2 misses, not L3 misses";
    }
  }
  return pc;
}

PerfCounters::PerfCounters(PerfCounters&& o) noexcept
    : counters_(std::move(o.counters_)), reason_(std::move(o.reason_)) {
  o.counters_.clear();
  o.reason_.clear();
}

PerfCounters& PerfCounters::operator=(PerfCounters&& o) noexcept {
  if (this != &o) {
    for (auto* c : counters_) delete c;
    counters_ = std::move(o.counters_);
    reason_ = std::move(o.reason_);
    o.counters_.clear();
    o.reason_.clear();
  }
  return *this;
}

PerfCounters::~PerfCounters() {
  for (auto* c : counters_) delete c;
}

bool PerfCounters::any_available() const {
  for (auto* c : counters_)
    if (!c->fds.empty()) return true;
  return false;
}

std::string PerfCounters::unavailable_reason() const {
  if (counters_.empty()) return "hardware counters were not opened";
  return reason_;
}

void PerfCounters::start() {
  // without PERF_IOC_FLAG_GROUP the ioctl applies to the event and all its inherited children
  for (auto* c : counters_)
    for (int fd : c->fds) ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
}

void PerfCounters::stop() {
  for (auto* c : counters_)
    for (int fd : c->fds) ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
}

void PerfCounters::reset() {
  // PERF_EVENT_IOC_RESET zeroes the count but not time_enabled/time_running, which would then
  // skew the scaling; rebasing on the current sample resets all three.
  for (auto* c : counters_)
    for (size_t i = 0; i < c->fds.size(); ++i) {
      Sample s;
      if (read_sample(c->fds[i], &s)) c->base[i] = s;
    }
}

std::vector<CounterReading> PerfCounters::read() const {
  std::vector<CounterReading> out;
  for (auto* c : counters_) {
    CounterReading r;
    r.name = c->name;
    if (c->fds.empty()) {
      r.note = "not supported: " + perf_detail::errno_name(c->err) + ", " + perf_detail::errno_explanation(c->err, perf_detail::read_paranoid());
      out.push_back(r);
      continue;
    }
    double total = 0;
    bool ok = true, scaled = false;
    std::string why;
    for (size_t i = 0; i < c->fds.size() && ok; ++i) {
      Sample s;
      if (!read_sample(c->fds[i], &s)) {
        ok = false;
        why = std::string("read failed: ") + std::strerror(errno);
        break;
      }
      const Sample& b = c->base[i];
      uint64_t v = s.value - b.value, en = s.enabled - b.enabled, run = s.running - b.running;
      if (en == 0) continue;  // not enabled since the last reset: nothing counted, exactly 0
      auto x = perf_detail::scale_count(v, en, run);
      if (!x) {
        ok = false;
        why = "enabled but never scheduled on the PMU (all hardware counters in use?)";
        break;
      }
      scaled = scaled || run < en;
      total += *x;
    }
    if (ok) {
      r.value = total;
      if (scaled) r.note = "scaled (multiplexed)";
      if (!c->info.empty()) r.note += (r.note.empty() ? "" : "; ") + c->info;
    } else {
      r.note = why;
    }
    out.push_back(r);
  }
  return out;
}

}  // namespace locus
