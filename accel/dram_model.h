// A DRAM model for the accelerator backend (docs/method.md section 7): it follows the address stream
// of a schedule (banks, rows, an open-page row buffer per bank, activations, precharges, refresh,
// background) and prices it with DRAMSim2-style current-based energy from a part's datasheet
// (IDD currents, timings, Vdd, devices per rank).
//
// INTERFACE CONTRACT (shared by accel/schedule*.cpp and the tests): the signatures below are
// used by the schedule side; extend, do not change them.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>

namespace locus::accel {

// One DRAM part and its organisation, from a preset file (accel/presets/*.json).
struct DramSpec {
  std::string name;    // preset name, e.g. "ddr3-1333-micron-x8"
  std::string source;  // datasheet citation
  // organisation
  int channels = 1, ranks = 1, banks = 8;
  int64_t rows = 16384, columns = 1024;  // per bank; columns in device words
  int device_width_bits = 8, devices_per_rank = 8, burst_length = 8;
  // timing, in DRAM clock cycles (tCK in ns)
  double tck_ns = 1.5;
  int cl = 10, trcd = 10, trp = 10, tras = 24, trc = 34, trfc = 74, twr = 10;
  // activate to activate in different banks of a rank, and the four-activate window (at most four
  // ACTs per rank in any tFAW cycles)
  int trrd = 4, tfaw = 20;
  double trefi_cycles = 5200;
  // currents in mA, supply in V
  double idd0 = 130, idd2n = 70, idd3n = 90, idd4r = 255, idd4w = 300, idd5 = 305, vdd = 1.5;
  // Bytes one burst moves on the rank's bus: devices x width / 8 x BL (64 for 8 x8 devices, BL8).
  int64_t burst_bytes() const;
  // Bytes of one row across the rank: columns x devices x width / 8.
  int64_t row_bytes() const;
};

// Counts and energy of what the model was asked to do. Energies in picojoules.
struct DramStats {
  int64_t read_bursts = 0, write_bursts = 0;
  int64_t row_hits = 0, row_misses = 0;  // per burst: the row was open / had to be activated
  int64_t activates = 0, precharges = 0, refreshes = 0;
  int64_t cycles = 0;  // DRAM clock cycles from 0 to the end of the stream
  double e_read_pj = 0, e_write_pj = 0, e_act_pre_pj = 0, e_refresh_pj = 0, e_background_pj = 0;
  double total_pj() const { return e_read_pj + e_write_pj + e_act_pre_pj + e_refresh_pj + e_background_pj; }
  // row_hits / (row_hits + row_misses); NaN when there was no burst.
  double row_hit_rate() const;
  int64_t bytes_read(const DramSpec& s) const { return read_bursts * s.burst_bytes(); }
  int64_t bytes_written(const DramSpec& s) const { return write_bursts * s.burst_bytes(); }
};

// Per-event energies of a part in picojoules (DRAMSim2's formulas, docs/accelerator-model.md):
// each is mA x cycles x devices_per_rank x tCK(ns) x Vdd.
//   burst        (IDD4R or IDD4W - IDD3N) x BL/2
//   act+pre      IDD0 x tRC - (IDD3N x tRAS + IDD2N x (tRC - tRAS))   (charged once per activate)
//   refresh      (IDD5 - IDD3N) x tRFC                                  (per rank per refresh)
//   background   IDD3N per cycle with a bank of the rank open (or refreshing), IDD2N all precharged
double burst_energy_pj(const DramSpec& s, bool write);
double act_pre_energy_pj(const DramSpec& s);
double refresh_energy_pj(const DramSpec& s);
double background_energy_pj_per_cycle(const DramSpec& s, bool bank_open);
// Throws locus::Error naming the first field that is out of range (non-positive sizes, timings,
// currents; columns not a multiple of the burst length; IDD3N > IDD4R, ...).
void validate_dram_spec(const DramSpec& s);

class DramModel {
 public:
  explicit DramModel(DramSpec spec);
  // A model whose stream starts at absolute DRAM cycle `start_cycle` (a layer that starts after
  // others): requests carry absolute cycles, refreshes fall at the absolute cycles ceil(k x tREFI)
  // (a refresh still running at start_cycle holds off activates until it ends), and the stats'
  // `cycles`, background and refresh cover [start_cycle, end) only.
  DramModel(DramSpec spec, uint64_t start_cycle);
  // A contiguous access of `bytes` (> 0) at byte address `addr`, issued no earlier than DRAM cycle
  // `cycle` (the issuer's clock converted to DRAM cycles). Split into bursts (burst-aligned); each
  // burst is mapped to (channel, rank, bank, row, column) and served with the open-page policy.
  // Requests are served in order per channel (column commands and data transfers in request
  // order); the precharge and activate of a row miss start as soon as that bank is free (and tRRD /
  // tFAW allow), so they may overlap earlier requests' transfers to other banks. Requests may arrive
  // with cycles out of order; a column command never precedes an earlier request's.
  void access(uint64_t addr, uint64_t bytes, bool write, uint64_t cycle);
  // Ends the stream at DRAM cycle `end_cycle` (or when the last burst finished, if later): adds
  // refresh and background energy over the whole interval (from the start cycle) and returns the
  // totals.
  DramStats finish(uint64_t end_cycle);
  // When set, every burst is also written as one line "0x<hex address> READ|WRITE <cycle>"
  // (DRAMSim2's .trc trace format; see docs/accelerator-model.md).
  void set_trace(std::ostream* out);
  const DramSpec& spec() const;

 private:
  struct Impl;
  // implementation-defined state (the implementer may change the private part freely)
  std::shared_ptr<Impl> impl_;
};

}  // namespace locus::accel
