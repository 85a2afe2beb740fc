// runtime/machine_info.h: parse_bytes, the sizes users type (--l2, LOCUS_L2), against the grammar
// documented in the header; format_bytes round trips; the OS's L2 of this core.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

#include "runtime/machine_info.h"

using namespace locus;

TEST(ParseBytes, PlainNumbersAndSuffixes) {
  EXPECT_EQ(parse_bytes("0"), 0);
  EXPECT_EQ(parse_bytes("524288"), 524288);
  EXPECT_EQ(parse_bytes("512K"), 512 * 1024);
  EXPECT_EQ(parse_bytes("512k"), 512 * 1024);
  EXPECT_EQ(parse_bytes("1M"), 1 << 20);
  EXPECT_EQ(parse_bytes("1m"), 1 << 20);
  EXPECT_EQ(parse_bytes("2G"), int64_t(2) << 30);
  EXPECT_EQ(parse_bytes("0K"), 0);
  EXPECT_EQ(parse_bytes("007K"), 7 * 1024);  // leading zeros are digits
}

TEST(ParseBytes, ByteUnitSpellings) {
  EXPECT_EQ(parse_bytes("512KB"), 512 * 1024);  // K = 1024 whatever the spelling
  EXPECT_EQ(parse_bytes("512KiB"), 512 * 1024);
  EXPECT_EQ(parse_bytes("512kib"), 512 * 1024);
  EXPECT_EQ(parse_bytes("1mb"), 1 << 20);
  EXPECT_EQ(parse_bytes("64B"), 64);
  EXPECT_EQ(parse_bytes("64b"), 64);
}

TEST(ParseBytes, FractionsRoundDown) {
  EXPECT_EQ(parse_bytes("1.5M"), 1572864);
  EXPECT_EQ(parse_bytes("0.5K"), 512);
  EXPECT_EQ(parse_bytes("1.25k"), 1280);
  EXPECT_EQ(parse_bytes("0.1K"), 102);   // 102.4 -> 102
  EXPECT_EQ(parse_bytes("1.5"), 1);      // 1.5 bytes -> 1
  EXPECT_EQ(parse_bytes("1.999999999G"), (int64_t(1) << 30) + 1073741822);  // 9 fraction digits
  EXPECT_EQ(parse_bytes("1.0000000001G"), -1);  // 10 fraction digits: refused
}

TEST(ParseBytes, RejectsGarbage) {
  for (const char* s : {"", " ", "K", "M1", "abc", "12abc", "1KK", "1T", "1KBB", "1 K", " 1K", "1K ", "1,5M",
                        "1.", ".5M", "1..5M", "1e3", "1E3", "0x10", "inf", "nan", "1iB", "1Ki", "512KIBB"})
    EXPECT_EQ(parse_bytes(s), -1) << "'" << s << "'";
}

TEST(ParseBytes, RejectsSigns) {
  for (const char* s : {"-1", "-512K", "+1", "+512K", "-0"}) EXPECT_EQ(parse_bytes(s), -1) << "'" << s << "'";
}

TEST(ParseBytes, OverflowIsRejectedNotWrapped) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(parse_bytes("9223372036854775807"), kMax);
  EXPECT_EQ(parse_bytes("9223372036854775808"), -1);
  EXPECT_EQ(parse_bytes("99999999999999999999999"), -1);
  EXPECT_EQ(parse_bytes("8589934591G"), int64_t(8589934591) << 30);  // just below 2^63
  EXPECT_EQ(parse_bytes("8589934592G"), -1);                          // 2^63
  EXPECT_EQ(parse_bytes("8589934591.999999999G"), kMax - 1);          // the fraction, rounded down, fits
  EXPECT_EQ(parse_bytes("9223372036854775807.5"), kMax);             // fraction of a byte: dropped
  EXPECT_EQ(parse_bytes("9007199254740992K"), -1);
}

TEST(ParseBytes, RoundTripsFormatBytes) {
  for (int64_t b : {int64_t(0), int64_t(100), int64_t(32 << 10), int64_t(512 << 10), int64_t(1) << 20,
                    int64_t(3) << 19, int64_t(32) << 20})
    EXPECT_EQ(parse_bytes(format_bytes(b)), b) << format_bytes(b);
}

TEST(MachineInfo, CurrentCoreL2MatchesCpu0WhenKnown) {
  // cpu0's caches from MachineInfo and the running core's L2 agree on homogeneous machines (all this
  // suite runs on); both are 0 when the OS does not report caches.
  const int64_t cur = current_core_cache_bytes(2), cpu0 = read_machine_info().cache_bytes(2);
  EXPECT_GE(cur, 0);
  if (cur > 0 && cpu0 > 0) {
    EXPECT_EQ(cur, cpu0);
  }
  EXPECT_EQ(current_core_cache_bytes(9), 0);  // no such level
}
