// Sets the calling thread's OpenMP thread count for one scope and puts the previous value back, so
// that a session runs with the thread count it was planned for (scratch is sized for it) without
// changing the OpenMP settings of the application that calls it.
#pragma once

#include <omp.h>

namespace locus {

class OmpThreadsScope {
 public:
  explicit OmpThreadsScope(int threads) : saved_(omp_get_max_threads()) {
    if (threads > 0 && threads != saved_) omp_set_num_threads(threads);
  }
  ~OmpThreadsScope() {
    if (omp_get_max_threads() != saved_) omp_set_num_threads(saved_);
  }
  OmpThreadsScope(const OmpThreadsScope&) = delete;
  OmpThreadsScope& operator=(const OmpThreadsScope&) = delete;

 private:
  int saved_;
};

}  // namespace locus
