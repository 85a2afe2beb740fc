// `locus bench --cachegrind`: runs this same program under valgrind's cache simulator for exactly
// one inference and reads back the simulated D1 and LL misses. (The option is named after what it
// measures, cachegrind's cache simulation; the tool that runs it is callgrind, as follows.)
//
// valgrind 3.19's cachegrind cannot restrict counting to a region, so the simulation uses
// callgrind with --cache-sim=yes (the same cache simulator as cachegrind) and
// --toggle-collect=locus_measured_inference: only the inference is counted, not model loading,
// weight packing or input generation. The cache geometry is the host's (D1 = L1d, LL = the last
// level), read from /sys. One thread (valgrind serialises threads anyway).
#include "cli/callgrind_runner.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "graph/error.h"
#include "runtime/machine_info.h"

namespace fs = std::filesystem;

namespace locus::cli {

namespace {

bool is_pow2(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

// "size,assoc,line" valgrind accepts for this cache: valgrind 3.19 needs a power-of-two line of at
// least 16 bytes and a power-of-two number of sets; like valgrind's own tweak of an auto-detected
// LL, the sets are rounded down to a power of two and the associativity raised to keep the size.
std::string geometry(const CacheLevel& c, std::string* adjusted) {
  int64_t line = c.line_bytes, assoc = c.ways, size = c.size_bytes;
  if (!is_pow2(line) || line < 16) {
    int64_t l = 16;
    while (l * 2 <= line) l *= 2;
    line = l;
  }
  if (assoc <= 0) assoc = 8;
  if (size < line * assoc) assoc = std::max<int64_t>(1, size / line);
  int64_t sets = size / (line * assoc);
  if (!is_pow2(sets)) {
    int64_t p = 1;
    while (p * 2 <= sets) p *= 2;
    assoc = (2 * sets * assoc + p) / (2 * p);
    sets = p;
  }
  int64_t new_size = line * assoc * sets;
  std::string g = std::to_string(new_size) + "," + std::to_string(assoc) + "," + std::to_string(line);
  if (adjusted && (new_size != c.size_bytes || assoc != c.ways || line != c.line_bytes))
    *adjusted += " (L" + std::to_string(c.level) + " adjusted for valgrind from " + std::to_string(c.size_bytes) + "," +
                 std::to_string(c.ways) + "," + std::to_string(c.line_bytes) + ")";
  return g;
}

// Runs argv (argv[0] looked up in PATH) with stdout and stderr into `log` and `env` added to the
// environment; returns its exit status, or -1 if it could not start or ended by a signal.
int run_process(const std::vector<std::string>& argv, const std::vector<std::string>& env, const fs::path& log) {
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::close(fd);
    }
    for (const std::string& e : env) ::putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

std::map<std::string, double> run_under_callgrind(const std::string& model, const std::string& backend, int64_t batch,
                                                  int ll_level, const std::vector<std::string>& extra_args,
                                                  std::string* note) {
  MachineInfo mi = read_machine_info();
  const CacheLevel *d1 = nullptr, *ll = nullptr;
  for (auto& c : mi.caches) {
    if (c.type == "Instruction") continue;
    if (c.level == 1) d1 = &c;
    if (ll_level > 0 ? c.level == ll_level : (!ll || c.level > ll->level)) ll = &c;
  }
  LOCUS_CHECK(ll_level <= 0 || ll, "--ll-level ", ll_level, ": this machine has no data cache at that level");
  std::vector<std::string> geo;
  std::string adjusted;
  if (d1 && ll && d1->size_bytes > 0 && ll->size_bytes > 0)
    geo = {"--D1=" + geometry(*d1, &adjusted), "--LL=" + geometry(*ll, &adjusted)};
  if (note) *note = geo.empty() ? "valgrind's own cache detection" : "host geometry: " + geo[0] + " " + geo[1] + adjusted;
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  LOCUS_CHECK(n > 0, "cannot locate the locus executable (/proc/self/exe)");
  self[n] = 0;
  fs::path dir = fs::temp_directory_path() / ("locus_cachegrind_" + std::to_string(getpid()));
  fs::create_directories(dir);
  fs::path out = dir / "callgrind.out", log = dir / "valgrind.log";
  std::vector<std::string> argv = {"valgrind", "--tool=callgrind", "--cache-sim=yes", "--collect-atstart=no"};
  argv.insert(argv.end(), geo.begin(), geo.end());
  argv.insert(argv.end(), {"--toggle-collect=locus_measured_inference", "--callgrind-out-file=" + out.string(), self,
                           "bench", model, "--backend", backend, "--batch", std::to_string(batch), "--threads", "1",
                           "--single-inference"});
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  const int rc = run_process(argv, {"OMP_NUM_THREADS=1"}, log);
  if (rc == 127) {
    fs::remove_all(dir);
    fail("--cachegrind needs valgrind (apt-get install valgrind)");
  }
  std::ifstream f(out);
  std::string line, events, totals;
  while (std::getline(f, line)) {
    if (line.rfind("events:", 0) == 0) events = line.substr(7);
    if (line.rfind("totals:", 0) == 0 || line.rfind("summary:", 0) == 0) totals = line.substr(line.find(':') + 1);
  }
  if (rc != 0 || events.empty() || totals.empty()) {
    std::ifstream lf(log);
    std::string last, l;
    while (std::getline(lf, l))
      if (!l.empty()) last = l;
    fs::remove_all(dir);
    fail("valgrind run for backend '", backend, "' failed: ", last.empty() ? "no output" : last);
  }
  std::istringstream es(events), ts(totals);
  std::vector<std::string> names;
  for (std::string e; es >> e;) names.push_back(e);
  std::map<std::string, double> raw;
  for (auto& nm : names) {
    double v = 0;
    ts >> v;
    raw[nm] = v;
  }
  fs::remove_all(dir);
  // Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw
  std::map<std::string, double> r;
  r["instructions"] = raw["Ir"];
  r["data_reads"] = raw["Dr"];
  r["data_writes"] = raw["Dw"];
  r["d1_read_misses"] = raw["D1mr"];
  r["d1_write_misses"] = raw["D1mw"];
  r["ll_read_misses"] = raw["DLmr"];
  r["ll_write_misses"] = raw["DLmw"];
  r["ll_misses"] = raw["DLmr"] + raw["DLmw"];
  return r;
}

}  // namespace locus::cli
