// The DRAM model of the accelerator backend. What it models and what it leaves out is written up in
// docs/accelerator-model.md, section "DRAM model"; in short:
//
// Address mapping (low to high bits, burst-aligned; mixed radix so sizes need not be powers of 2):
//   burst index b = addr / burst_bytes
//   column burst  = b % (columns / BL)          consecutive bursts stay in one row
//   channel       = next digit % channels
//   rank          = next digit % ranks
//   bank          = next digit % banks
//   row           = next digit % rows           (addresses beyond the capacity wrap)
// i.e. row:bank:rank:channel:column from the most significant end.
//
// Policy: open page. A burst to the open row of its bank is a row hit; otherwise the bank is
// precharged (if a row was open) and activated: one row miss, one activate (+ one precharge).
//
// Timing, in DRAM cycles, per channel. Column commands and data transfers are in request order
// (COL >= the previous request's COL, data transfers never overlap); the row commands of a miss
// start as soon as its bank is free, so banks overlap their precharge/activate with other banks'
// transfers (an in-order controller that looks ahead for row commands). Activates are in request
// order per rank:
//   hit:          COL at max(t, ACT + tRCD, previous COL)   data at max(COL + CL, bus free), BL/2 cycles
//   miss, open:   PRE at max(t, ACT + tRAS, write end + tWR, the bank's last COL); ACT >= PRE + tRP
//   miss:         ACT at max(t or PRE + tRP, last ACT of the bank + tRC, end of a refresh,
//                         the rank's previous ACT + tRRD, its fourth previous ACT + tFAW)
//                 COL at max(ACT + tRCD, previous COL)
// Refresh: every rank refreshes at the absolute cycles ceil(k x tREFI), k = 1, 2, ...; a refresh
// closes the rank's open rows (counted as precharges) and the rank is busy for tRFC. Over a stream
// [start, end) that is floor(end / tREFI) - floor(start / tREFI) refreshes per rank.
#include "accel/dram_model.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <ostream>
#include <utility>
#include <vector>

#include "graph/error.h"

namespace locus::accel {

int64_t DramSpec::burst_bytes() const {
  return static_cast<int64_t>(devices_per_rank) * device_width_bits / 8 * burst_length;
}

int64_t DramSpec::row_bytes() const { return columns * devices_per_rank * device_width_bits / 8; }

double DramStats::row_hit_rate() const {
  const int64_t n = row_hits + row_misses;
  if (n == 0) return std::numeric_limits<double>::quiet_NaN();
  return static_cast<double>(row_hits) / static_cast<double>(n);
}

namespace {
// mA x cycles -> pJ for one rank: x devices x tCK (ns) x Vdd (mA x ns x V = pJ)
double to_pj(const DramSpec& s, double ma_cycles) { return ma_cycles * s.devices_per_rank * s.tck_ns * s.vdd; }
}  // namespace

double burst_energy_pj(const DramSpec& s, bool write) {
  return to_pj(s, ((write ? s.idd4w : s.idd4r) - s.idd3n) * (s.burst_length / 2.0));
}

double act_pre_energy_pj(const DramSpec& s) {
  return to_pj(s, s.idd0 * s.trc - (s.idd3n * s.tras + s.idd2n * (s.trc - s.tras)));
}

double refresh_energy_pj(const DramSpec& s) { return to_pj(s, (s.idd5 - s.idd3n) * s.trfc); }

double background_energy_pj_per_cycle(const DramSpec& s, bool bank_open) {
  return to_pj(s, bank_open ? s.idd3n : s.idd2n);
}

void validate_dram_spec(const DramSpec& s) {
  const std::string where = s.name.empty() ? std::string("DRAM spec") : "DRAM spec '" + s.name + "'";
  // each field of the list must be > 0 (checked in order)
  auto positive = [&](std::initializer_list<std::pair<const char*, double>> fields) {
    for (const auto& [field, v] : fields)
      LOCUS_CHECK(v > 0 && std::isfinite(v), where, ": ", field, " must be > 0 (got ", v, ")");
  };
  positive({{"channels", s.channels}, {"ranks", s.ranks}, {"banks", s.banks},
            {"rows", double(s.rows)}, {"columns", double(s.columns)},
            {"device_width_bits", s.device_width_bits}, {"devices_per_rank", s.devices_per_rank},
            {"burst_length", s.burst_length}});
  LOCUS_CHECK(s.burst_length % 2 == 0, where, ": burst_length must be even (got ", s.burst_length, ")");
  LOCUS_CHECK(s.device_width_bits % 4 == 0, where, ": device_width_bits must be a multiple of 4 (got ",
              s.device_width_bits, ")");
  LOCUS_CHECK((static_cast<int64_t>(s.devices_per_rank) * s.device_width_bits) % 8 == 0, where,
              ": devices_per_rank x device_width_bits must be whole bytes");
  LOCUS_CHECK(s.columns % s.burst_length == 0, where, ": columns (", s.columns,
              ") must be a multiple of burst_length (", s.burst_length, ")");
  positive({{"tck_ns", s.tck_ns}, {"cl", s.cl}, {"trcd", s.trcd}, {"trp", s.trp}, {"tras", s.tras},
            {"trc", s.trc}, {"trfc", s.trfc}});
  LOCUS_CHECK(s.twr >= 0, where, ": twr must be >= 0 (got ", s.twr, ")");
  LOCUS_CHECK(s.trrd >= 0, where, ": trrd must be >= 0 (got ", s.trrd, ")");
  LOCUS_CHECK(s.tfaw >= 0, where, ": tfaw must be >= 0 (got ", s.tfaw, ")");
  positive({{"trefi_cycles", s.trefi_cycles}});
  LOCUS_CHECK(s.trc >= s.tras, where, ": trc (", s.trc, ") must be >= tras (", s.tras, ")");
  LOCUS_CHECK(s.trefi_cycles > s.trfc, where, ": trefi_cycles (", s.trefi_cycles, ") must exceed trfc (",
              s.trfc, ")");
  positive({{"idd0", s.idd0}, {"idd2n", s.idd2n}, {"idd3n", s.idd3n}, {"idd4r", s.idd4r},
            {"idd4w", s.idd4w}, {"idd5", s.idd5}, {"vdd", s.vdd}});
  for (const auto& [field, v] : {std::pair{"idd4r", s.idd4r}, std::pair{"idd4w", s.idd4w}, std::pair{"idd5", s.idd5}})
    LOCUS_CHECK(v >= s.idd3n, where, ": ", field, " (", v, " mA) must be >= idd3n (", s.idd3n,
                " mA): the energy above background cannot be negative");
  LOCUS_CHECK(act_pre_energy_pj(s) >= 0, where,
              ": idd0 x trc < idd3n x tras + idd2n x (trc - tras) gives a negative activate energy");
}

struct DramModel::Impl {
  static constexpr int64_t kNever = std::numeric_limits<int64_t>::min() / 4;
  struct Bank {
    int64_t open_row = -1;  // -1: precharged
    int64_t last_act = kNever;
    int64_t last_col = kNever;  // the bank's last column command (a precharge waits for it)
    int64_t col_ready = 0;  // earliest column command (ACT + tRCD)
    int64_t pre_ok = 0;     // earliest precharge (ACT + tRAS, write end + tWR)
    int64_t act_ok = 0;     // earliest activate (end of a refresh)
  };
  struct Rank {
    std::vector<Bank> banks;
    int64_t acts[4] = {kNever, kNever, kNever, kNever};  // the last four ACTs, acts[n_acts % 4] oldest
    int64_t n_acts = 0;
    int open_banks = 0;
    int64_t open_since = 0;     // cycle the rank went from all precharged to a bank open
    int64_t open_cycles = 0;    // closed intervals with a bank open (refresh time not included)
    int64_t refreshes_seen = 0; // refresh boundaries already applied to the bank state
    int64_t refresh_precharges = 0;
  };
  struct Channel {
    int64_t next_cmd = 0;  // the previous request's column command
    int64_t bus_free = 0;  // end of the previous data transfer
  };

  DramSpec spec;
  int64_t start = 0;  // absolute cycle the stream starts at
  std::vector<Channel> channels;
  std::vector<Rank> ranks;  // channel-major
  DramStats stats;
  int64_t last_end = 0;
  int64_t last_trace_cycle = 0;
  std::ostream* trace = nullptr;

  Impl(DramSpec s, int64_t start_cycle) : spec(std::move(s)), start(start_cycle) {
    validate_dram_spec(spec);
    channels.resize(spec.channels);
    for (Channel& c : channels) c.next_cmd = c.bus_free = start;
    last_end = last_trace_cycle = start;
    ranks.resize(static_cast<size_t>(spec.channels) * spec.ranks);
    const int64_t k0 = refreshes_by(start);  // refreshes before the stream: not this stream's
    for (Rank& r : ranks) {
      r.banks.resize(spec.banks);
      r.refreshes_seen = k0;
      r.open_since = start;
      if (k0 > 0)
        for (Bank& b : r.banks) b.act_ok = refresh_at(k0) + spec.trfc;
    }
  }

  // cycle of refresh k (k >= 1)
  int64_t refresh_at(int64_t k) const {
    return static_cast<int64_t>(std::ceil(static_cast<double>(k) * spec.trefi_cycles));
  }
  // number of refreshes at or before cycle t: floor(t / tREFI)
  int64_t refreshes_by(int64_t t) const {
    if (t <= 0) return 0;
    int64_t k = static_cast<int64_t>(std::floor(static_cast<double>(t) / spec.trefi_cycles));
    while (k > 0 && refresh_at(k) > t) --k;  // guard against rounding
    while (refresh_at(k + 1) <= t) ++k;
    return k;
  }
  // cycles within [start, end) during which a rank refreshes (tRFC after each refresh, including
  // one that began before start; the last one clipped at end)
  int64_t refreshing_cycles(int64_t end) const {
    int64_t total = 0;
    const int64_t k0 = refreshes_by(start), k1 = refreshes_by(end);
    for (int64_t k = std::max<int64_t>(k0, 1); k <= k1; ++k) {
      const int64_t a = std::max(refresh_at(k), start), b = std::min(refresh_at(k) + spec.trfc, end);
      total += std::max<int64_t>(0, b - a);
    }
    return total;
  }

  // Applies the refreshes of rank `r` up to cycle t: open rows close at the first of them.
  static void apply_refreshes(const Impl& m, Rank& r, int64_t t) {
    const int64_t k = m.refreshes_by(t);
    if (k <= r.refreshes_seen) return;
    const int64_t first = m.refresh_at(r.refreshes_seen + 1);
    const int64_t last = m.refresh_at(k);
    if (r.open_banks > 0) {
      r.open_cycles += std::max<int64_t>(0, first - r.open_since);
      r.refresh_precharges += r.open_banks;
      r.open_banks = 0;
    }
    for (Bank& b : r.banks) {
      b.open_row = -1;
      b.act_ok = std::max(b.act_ok, last + m.spec.trfc);
    }
    r.refreshes_seen = k;
  }

  void burst(uint64_t baddr, bool write, int64_t t_issue) {
    const DramSpec& s = spec;
    uint64_t b = baddr / static_cast<uint64_t>(s.burst_bytes());
    const uint64_t bursts_per_row = static_cast<uint64_t>(s.columns / s.burst_length);
    b /= bursts_per_row;  // drop the column
    const uint64_t ch = b % static_cast<uint64_t>(s.channels);
    b /= static_cast<uint64_t>(s.channels);
    const uint64_t rk = b % static_cast<uint64_t>(s.ranks);
    b /= static_cast<uint64_t>(s.ranks);
    const uint64_t bk = b % static_cast<uint64_t>(s.banks);
    b /= static_cast<uint64_t>(s.banks);
    const int64_t row = static_cast<int64_t>(b % static_cast<uint64_t>(s.rows));

    Channel& c = channels[ch];
    Rank& r = ranks[ch * s.ranks + rk];
    const int64_t t = std::max(t_issue, start);
    // refresh state as of the earliest this request's column command can go out
    apply_refreshes(*this, r, std::max(t, c.next_cmd));  // closes the rank's rows; act_ok holds off activates
    Bank& bank = r.banks[bk];

    int64_t col;
    if (bank.open_row == row) {
      ++stats.row_hits;
      col = std::max({t, bank.col_ready, c.next_cmd});
    } else {
      ++stats.row_misses;
      const bool was_closed = bank.open_row < 0;
      int64_t act = t;
      if (!was_closed) {
        const int64_t pre = std::max({t, bank.pre_ok, bank.last_col});
        ++stats.precharges;
        act = pre + s.trp;
      }
      const int64_t prev_act = r.n_acts > 0 ? r.acts[(r.n_acts - 1) % 4] : kNever;
      const int64_t fourth_act = r.n_acts >= 4 ? r.acts[r.n_acts % 4] : kNever;
      act = std::max({act, bank.act_ok, bank.last_act + s.trc, prev_act + s.trrd, fourth_act + s.tfaw});
      r.acts[r.n_acts % 4] = act;
      ++r.n_acts;
      if (was_closed) {
        if (r.open_banks == 0) r.open_since = act;
        ++r.open_banks;
      }
      ++stats.activates;
      bank.open_row = row;
      bank.last_act = act;
      bank.col_ready = act + s.trcd;
      bank.pre_ok = act + s.tras;
      col = std::max(bank.col_ready, c.next_cmd);
    }
    const int64_t data = std::max(col + s.cl, c.bus_free);
    const int64_t end = data + s.burst_length / 2;
    c.next_cmd = data - s.cl;
    c.bus_free = end;
    bank.last_col = c.next_cmd;
    if (write) {
      ++stats.write_bursts;
      bank.pre_ok = std::max(bank.pre_ok, end + s.twr);
    } else {
      ++stats.read_bursts;
    }
    last_end = std::max(last_end, end);
    if (trace) {
      last_trace_cycle = std::max(last_trace_cycle, t_issue);
      *trace << "0x" << std::hex << baddr << std::dec << (write ? " WRITE " : " READ ") << last_trace_cycle << '\n';
    }
  }
};

DramModel::DramModel(DramSpec spec) : impl_(std::make_shared<Impl>(std::move(spec), 0)) {}

DramModel::DramModel(DramSpec spec, uint64_t start_cycle)
    : impl_(std::make_shared<Impl>(
          std::move(spec), static_cast<int64_t>(std::min<uint64_t>(start_cycle, std::numeric_limits<int64_t>::max() / 8)))) {}

const DramSpec& DramModel::spec() const { return impl_->spec; }

void DramModel::set_trace(std::ostream* out) { impl_->trace = out; }

void DramModel::access(uint64_t addr, uint64_t bytes, bool write, uint64_t cycle) {
  LOCUS_CHECK(bytes > 0, "DRAM access of 0 bytes at address ", addr);
  const uint64_t bb = static_cast<uint64_t>(impl_->spec.burst_bytes());
  LOCUS_CHECK(addr + (bytes - 1) >= addr, "DRAM access at ", addr, " of ", bytes,
              " bytes overflows the address space");
  const uint64_t first = addr / bb * bb;
  const uint64_t last = (addr + (bytes - 1)) / bb * bb;
  const int64_t t = static_cast<int64_t>(std::min<uint64_t>(cycle, std::numeric_limits<int64_t>::max() / 4));
  for (uint64_t a = first;; a += bb) {
    impl_->burst(a, write, t);
    if (a == last) break;
  }
}

DramStats DramModel::finish(uint64_t end_cycle) {
  const Impl& m = *impl_;
  const DramSpec& s = m.spec;
  DramStats st = m.stats;
  const int64_t end =
      std::max(static_cast<int64_t>(std::min<uint64_t>(end_cycle, std::numeric_limits<int64_t>::max() / 4)),
               m.last_end);
  const int64_t cycles = end - m.start;
  st.cycles = cycles;
  const int64_t k = m.refreshes_by(end) - m.refreshes_by(m.start);  // refreshes in (start, end]
  const int64_t refreshing = m.refreshing_cycles(end);
  double background_ma_cycles = 0;
  for (const Impl::Rank& r0 : m.ranks) {
    Impl::Rank r = r0;  // finish() does not change the model: the stream may go on
    Impl::apply_refreshes(m, r, end);
    int64_t open = r.open_cycles;
    if (r.open_banks > 0) open += std::max<int64_t>(0, end - r.open_since);
    st.precharges += r.refresh_precharges;
    const int64_t active = std::min(cycles, open + refreshing);
    background_ma_cycles += s.idd3n * static_cast<double>(active) + s.idd2n * static_cast<double>(cycles - active);
  }
  st.refreshes = k * static_cast<int64_t>(m.ranks.size());
  st.e_read_pj = static_cast<double>(st.read_bursts) * burst_energy_pj(s, false);
  st.e_write_pj = static_cast<double>(st.write_bursts) * burst_energy_pj(s, true);
  st.e_act_pre_pj = static_cast<double>(st.activates) * act_pre_energy_pj(s);
  st.e_refresh_pj = static_cast<double>(st.refreshes) * refresh_energy_pj(s);
  st.e_background_pj = to_pj(s, background_ma_cycles);
  return st;
}

}  // namespace locus::accel
