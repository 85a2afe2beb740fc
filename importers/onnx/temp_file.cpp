#include "importers/onnx/temp_file.h"

#include <signal.h>
#include <unistd.h>

#include <cstring>

#include "graph/error.h"

namespace locus::onnx_export {
namespace {

constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
constexpr int kNumSignals = int(sizeof(kSignals) / sizeof(kSignals[0]));

// Read by the handler: a fixed buffer, so that the handler only calls async-signal-safe functions.
char g_path[4096];
volatile sig_atomic_t g_active = 0;
struct sigaction g_previous[kNumSignals];

void on_signal(int sig) {
  if (g_active) ::unlink(g_path);
  // End as the signal would have without us: default action, unblocked, raised again.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(sig, &dfl, nullptr);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
  ::raise(sig);
}

}  // namespace

TempFileGuard::TempFileGuard(const std::string& path) {
  LOCUS_CHECK(!g_active, "internal error: two temporary files guarded at once");
  LOCUS_CHECK(path.size() < sizeof(g_path), "cannot write '", path, "': the path is too long");
  std::memcpy(g_path, path.c_str(), path.size() + 1);
  g_active = 1;
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  for (int s : kSignals) sigaddset(&sa.sa_mask, s);  // one handler at a time
  for (int i = 0; i < kNumSignals; ++i) ::sigaction(kSignals[i], &sa, &g_previous[i]);
}

TempFileGuard::~TempFileGuard() {
  for (int i = 0; i < kNumSignals; ++i) ::sigaction(kSignals[i], &g_previous[i], nullptr);
  g_active = 0;
}

}  // namespace locus::onnx_export
