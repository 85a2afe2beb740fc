// CPU feature detection and the ISA override used to pick between portable, AVX2 and AVX-512 kernels.
#include "kernels/native/cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace locus::kernels {
namespace {

constexpr int kNoOverride = -1;
std::atomic<int> g_override{kNoOverride};

Isa clamp_to_cpu(Isa want) {
  return static_cast<int>(want) <= static_cast<int>(detected_isa()) ? want : detected_isa();
}

Isa env_or_detected() {
  static const Isa isa = [] {
    const char* e = std::getenv("LOCUS_ISA");
    if (e && std::strcmp(e, "generic") == 0) return Isa::Generic;
    if (e && std::strcmp(e, "avx2") == 0) return clamp_to_cpu(Isa::Avx2);
    if (e && std::strcmp(e, "avx512") == 0) return clamp_to_cpu(Isa::Avx512);
    return detected_isa();
  }();
  return isa;
}

}  // namespace

std::string invalid_isa_env() {
  const char* e = std::getenv("LOCUS_ISA");
  if (!e || std::strcmp(e, "generic") == 0 || std::strcmp(e, "avx2") == 0 || std::strcmp(e, "avx512") == 0) return "";
  return *e ? e : "(empty)";
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
    default: return "generic";
  }
}

Isa detected_isa() {
  static const Isa isa = [] {
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (avx2 && __builtin_cpu_supports("avx512f")) return Isa::Avx512;
    if (avx2) return Isa::Avx2;
    return Isa::Generic;
  }();
  return isa;
}

bool cpu_has_avx512vnni() {
  static const bool cpu = [] {
    __builtin_cpu_init();
    return detected_isa() == Isa::Avx512 && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vnni");
  }();
  return cpu;
}

bool has_avx512vnni() { return cpu_has_avx512vnni() && active_isa() == Isa::Avx512; }

Isa active_isa() {
  int o = g_override.load(std::memory_order_relaxed);
  return o == kNoOverride ? env_or_detected() : static_cast<Isa>(o);
}

void set_isa_override(Isa isa) {
  g_override.store(static_cast<int>(clamp_to_cpu(isa)), std::memory_order_relaxed);
}

void clear_isa_override() { g_override.store(kNoOverride, std::memory_order_relaxed); }

}  // namespace locus::kernels
