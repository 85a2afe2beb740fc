// A file being written under a temporary name and renamed into place when complete: while it
// exists, SIGINT, SIGTERM, SIGHUP and SIGQUIT remove it before the process ends as the signal says,
// so an interrupted `locus decompose` leaves no half-written temporary file behind. One at a time
// per process (the exporter writes one model at a time); the signal handlers are the previous ones
// again once the guard is gone.
#pragma once

#include <string>

namespace locus::onnx_export {

class TempFileGuard {
 public:
  explicit TempFileGuard(const std::string& path);  // installs the handlers
  ~TempFileGuard();                                 // restores them (does not remove the file)
  TempFileGuard(const TempFileGuard&) = delete;
  TempFileGuard& operator=(const TempFileGuard&) = delete;
};

}  // namespace locus::onnx_export
