// Run-time ISA selection for the native kernels. Kernels compiled for AVX2+FMA live in *_avx2.cpp;
// callers ask active_isa() at dispatch time and fall back to the portable kernels otherwise.
//
// Order of precedence: set_isa_override() (tests), then the LOCUS_ISA environment variable
// ("generic", "avx2" or "avx512", read once), then the best ISA the CPU supports. A request for an ISA the CPU
// lacks is clamped down to what it supports.
#pragma once

#include <cstdint>
#include <string>

namespace locus::kernels {

// Ordered: each ISA includes the ones before it (Avx512 = AVX-512F + AVX2 + FMA).
enum class Isa : uint8_t { Generic, Avx2, Avx512 };

// Whether kernels compiled for AVX2+FMA may run under `isa`.
inline bool has_avx2(Isa isa) { return isa >= Isa::Avx2; }

const char* isa_name(Isa isa);

// Best ISA this CPU supports (AVX2 requires both avx2 and fma; AVX512 also avx512f).
Isa detected_isa();

// The ISA kernels dispatch to right now.
Isa active_isa();

// The LOCUS_ISA value when it is set but names no ISA ("" when unset or valid): the backends refuse
// to compile with it (one line naming the value), rather than silently using the detected ISA.
std::string invalid_isa_env();

// Whether the int8 kernels may use AVX-512 VNNI (vpdpbusd) and AVX-512BW: the CPU has avx512f, bw,
// vl and vnni, and active_isa() is Avx512. An AVX-512 CPU without VNNI runs the AVX2 int8 kernels.
bool has_avx512vnni();
// Whether the CPU has them, whatever the active ISA.
bool cpu_has_avx512vnni();

// Force an ISA (clamped to detected_isa()); clear_isa_override() restores the default.
void set_isa_override(Isa isa);
void clear_isa_override();

}  // namespace locus::kernels
