// The seed mode every fuzzer has: with LOCUS_FUZZ_WRITE_SEEDS=<dir> set, the fuzzer binary writes
// its starting inputs into <dir> and exits (scripts/run-fuzzer.sh builds each corpus this way).
#pragma once

#include <cstdlib>
#include <string>

namespace locus_fuzz {

// Call first in LLVMFuzzerInitialize: writes the seeds and exits when asked, else returns.
inline void write_seeds_if_asked(void (*write_seeds)(const std::string& dir)) {
  if (const char* dir = std::getenv("LOCUS_FUZZ_WRITE_SEEDS")) {
    write_seeds(dir);
    std::exit(0);
  }
}

}  // namespace locus_fuzz

// The whole LLVMFuzzerInitialize of a fuzzer that needs nothing else at start-up.
#define LOCUS_FUZZ_INITIALIZE_WITH_SEEDS(write_seeds)                   \
  extern "C" int LLVMFuzzerInitialize(int*, char***) {                  \
    locus_fuzz::write_seeds_if_asked(write_seeds);                      \
    return 0;                                                           \
  }
