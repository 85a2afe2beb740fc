#include "schedule/fused_block_planner.h"

#include <algorithm>
#include <optional>
#include <sstream>
#include <vector>

#include "graph/error.h"

namespace locus::schedule {
namespace {

// Objective weight of a recomputed expand MAC against one entry of DRAM traffic. A core streams about
// 10 GB/s from beyond its L2 (0.4 ns per 4-byte entry) and does about 50 MACs/ns, so one entry costs
// the time of roughly 20 MACs; 16 keeps the estimate conservative towards less recomputation.
constexpr int64_t kMacsPerEntry = 16;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

void add_note(FusedBlockPlan& p, const std::string& n) { p.note += (p.note.empty() ? "" : "; ") + n; }

}  // namespace

int64_t FusedBlockPlan::band_mid_first(int64_t b) const {
  if (!shape.dw2) return b * rows;
  return std::clamp<int64_t>(b * rows * shape.SH2 - shape.PT2, 0, shape.MH());
}

int64_t FusedBlockPlan::band_mid_last(int64_t b) const {
  const int64_t last_oh = std::min(shape.OH(), (b + 1) * rows) - 1;
  if (!shape.dw2) return last_oh + 1;
  return std::max(band_mid_first(b), std::min(shape.MH(), last_oh * shape.SH2 - shape.PT2 + shape.KH2));
}

int64_t FusedBlockPlan::band_in_first(int64_t b) const {
  return std::clamp<int64_t>(band_mid_first(b) * shape.SH - shape.PT, 0, shape.H);
}

int64_t FusedBlockPlan::band_in_last(int64_t b) const {
  const int64_t m0 = band_mid_first(b), m1 = band_mid_last(b);
  if (m1 <= m0) return band_in_first(b);
  return std::max(band_in_first(b), std::min(shape.H, (m1 - 1) * shape.SH - shape.PT + shape.KH));
}

FusedPlanAttempt try_fused_block_plan(const FusedBlockShape& s, int64_t S, int64_t rows, int64_t chunk,
                                      bool halo_cache) {
  LOCUS_CHECK(s.H > 0 && s.W > 0 && s.C > 0 && s.E > 0 && s.OC > 0 && s.MH() > 0 && s.MW() > 0 && s.OH() > 0 &&
                  s.OW() > 0,
              "fused block: bad shape H=", s.H, " W=", s.W, " C=", s.C, " E=", s.E, " OC=", s.OC);
  LOCUS_CHECK(rows >= 1 && chunk >= 1 && chunk <= s.E, "fused block: bad tiles rows=", rows, " chunk=", chunk);
  FusedBlockPlan p;
  p.shape = s;
  p.S = S;
  p.rows = std::min(rows, s.OH());
  p.chunk = chunk;
  p.bands = ceil_div(s.OH(), p.rows);
  p.chunks = ceil_div(s.E, chunk);
  const int64_t OW = s.OW();
  // Largest input band (rows of the first full band, clamped).
  int64_t in_rows_max = 0;
  for (int64_t b = 0; b < p.bands; ++b) in_rows_max = std::max(in_rows_max, p.band_in_last(b) - p.band_in_first(b));
  int64_t mid_rows_max = 0;
  if (s.dw2)
    for (int64_t b = 0; b < p.bands; ++b) mid_rows_max = std::max(mid_rows_max, p.band_mid_last(b) - p.band_mid_first(b));
  const FusedElementSizes& z = s.elem;
  LOCUS_CHECK(z.activation >= 1 && z.weight >= 1 && z.accumulator >= 1, "fused block: bad element sizes");
  LOCUS_CHECK(!(s.filtered_band && s.dw2), "fused block: the filtered-band schedule has no second depthwise stage");
  const int64_t dw_taps = s.KH * s.KW + (s.dw2 ? s.KH2 * s.KW2 : 0);
  // Weights: what one chunk needs on chip, and the whole block's. With the filtered band the
  // project weights are a separate, resident part (read once).
  const int64_t w_project = s.project ? s.E * s.OC : 0;
  const int64_t w_chunk = (s.expand ? s.C * chunk : 0) + dw_taps * chunk + (s.filtered_band ? 0 : (s.project ? chunk * s.OC : 0));
  const int64_t w_total = (s.expand ? s.C * s.E : 0) + dw_taps * s.E + (s.filtered_band ? 0 : w_project);
  // Halo cache: the rows band b shares with band b + 1 (the same for every pair of full bands).
  p.halo_cache = halo_cache && s.expand && p.bands > 1;
  if (p.halo_cache)
    for (int64_t b = 0; b + 1 < p.bands; ++b)
      p.halo_rows = std::max(p.halo_rows, p.band_in_last(b) - p.band_in_first(b + 1));
  if (p.halo_rows <= 0) p.halo_cache = false, p.halo_rows = 0;
  // Expanded rows: the band's rows of the current chunk, or with the halo cache a ring of the
  // band's rows for every chunk (rows shared with the next band stay in place).
  const int64_t exp_entries = !s.expand ? 0 : in_rows_max * s.W * (p.halo_cache ? s.E : chunk);
  if (!s.filtered_band) {
    // the filtered chunk and the output tile the chunks accumulate into
    p.buffer_entries = (in_rows_max * s.W * s.C + exp_entries + mid_rows_max * s.MW() * chunk) * z.activation +
                       (s.project ? p.rows * OW * chunk : 0) * z.activation + p.rows * OW * s.OC * z.accumulator +
                       w_chunk * z.weight;
  } else {
    // the band's filtered rows for all E channels, the requantized output tile, the chunk's weights,
    // the resident project weights and the per-channel biases and multipliers (4 bytes each) of the
    // chunk's stages and of the project stage
    p.filtered_entries = s.project ? p.rows * OW * s.E * z.activation : 0;
    const int64_t per_channel = 2 * ((s.expand ? chunk : 0) + chunk + (s.project ? s.OC : 0));
    const int64_t w_project_on_chip = s.stream_project ? std::min(w_project, s.E * 32) : w_project;
    p.buffer_entries = (in_rows_max * s.W * s.C + exp_entries) * z.activation + p.filtered_entries +
                       p.rows * OW * s.OC * z.activation + (w_chunk + w_project_on_chip) * z.weight +
                       per_channel * z.accumulator;
  }
  if (p.buffer_entries > S)
    return {std::nullopt, cat("rows=", rows, " chunk=", chunk, " need ", p.buffer_entries, " ", z.unit(),
                              ", more than S=", S)};
  for (int64_t b = 0; b < p.bands; ++b) {
    // With the halo cache, rows already expanded by band b - 1 are neither read nor expanded again.
    const int64_t first = p.halo_cache && b > 0 ? std::max(p.band_in_first(b), p.band_in_last(b - 1))
                                                : p.band_in_first(b);
    const int64_t in_rows = std::max<int64_t>(0, p.band_in_last(b) - first);
    p.reads_input += in_rows * s.W * s.C * z.activation;
    if (s.expand) p.expand_macs += in_rows * s.W * s.C * s.E;
  }
  p.reads_weights = (p.chunks == 1 ? w_total : p.bands * w_total - (p.bands - 1) * w_chunk) * z.weight;
  if (s.filtered_band) p.reads_weights += (s.stream_project ? p.bands : 1) * w_project * z.weight;
  p.writes_output = s.OH() * OW * s.OC * z.activation;
  p.total = p.reads_input + p.reads_weights + p.writes_output;
  return {p, ""};
}

FusedBlockPlan make_fused_block_plan(const FusedBlockShape& s, int64_t S, int64_t rows, int64_t chunk,
                                     bool halo_cache) {
  FusedPlanAttempt a = try_fused_block_plan(s, S, rows, chunk, halo_cache);
  if (!a.plan) fail("fused block: ", a.why_not);
  return *a.plan;
}

FusedBlockPlan plan_fused_block(const FusedBlockShape& s, int64_t S, const FusedPlannerOptions& o) {
  FusedPlanAttempt a = search_fused_block_plan(s, S, o);
  if (!a.plan) fail(a.why_not);
  return *a.plan;
}

FusedPlanAttempt search_fused_block_plan(const FusedBlockShape& s, int64_t S, const FusedPlannerOptions& o) {
  // Chunk candidates: multiples of chunk_step and E. Those below the kernel's minimum chunk are
  // tried only when no larger chunk fits the buffer.
  std::vector<int64_t> preferred, small;
  if (!s.project) {
    preferred.push_back(s.E);  // the filtered chunk is written straight to the output: one chunk
  } else {
    const int64_t lo = std::min(s.E, o.min_chunk);
    for (int64_t c = o.chunk_step; c < s.E; c += o.chunk_step) (c >= lo ? preferred : small).push_back(c);
    preferred.push_back(s.E);
    if (s.E > o.chunk_step) small.insert(small.begin(), std::min(s.E, int64_t(8)));
  }
  FusedBlockPlan best;
  int64_t best_cost = -1, candidates = 0, over = 0;
  std::string last_why;  // of the last candidate that did not fit
  const int64_t min_expand = s.expand ? s.H * s.W * s.C * s.E : 0;
  // The objective: traffic + recomputed expand MACs, and with `priced` the buffer beyond the free part.
  auto cost = [&](const FusedBlockPlan& p, bool priced) {
    return p.total + (p.expand_macs - min_expand) / kMacsPerEntry +
           (priced ? o.buffer_price * std::max<int64_t>(0, p.buffer_entries - o.free_buffer) : 0);
  };
  // Band heights that leave at least min_bands bands (bands = ceil(OH / rows)).
  const int64_t min_bands = std::clamp<int64_t>(o.min_bands, 1, s.OH());
  std::vector<int64_t> heights;
  for (int64_t rows = 1; rows <= (s.OH() + min_bands - 1) / min_bands; ++rows)
    if ((s.OH() + rows - 1) / rows >= min_bands) heights.push_back(rows);
  for (const std::vector<int64_t>* chunks : {&preferred, &small}) {
    for (int64_t rows : heights) {
      for (int64_t c : *chunks) {
        for (bool halo : {true, false}) {  // with the halo cache, and without (a smaller buffer)
          if (halo && !o.halo_cache) continue;
          ++candidates;
          FusedPlanAttempt a = try_fused_block_plan(s, S, rows, c, halo);
          if (!a.plan) {
            ++over;
            last_why = a.why_not;
            continue;
          }
          const FusedBlockPlan& p = *a.plan;
          const int64_t pc = cost(p, false);
          // Ties: fewer band x chunk steps, then taller bands.
          if (best_cost < 0 || pc < best_cost ||
              (pc == best_cost && (p.bands * p.chunks < best.bands * best.chunks ||
                                   (p.bands * p.chunks == best.bands * best.chunks && p.rows > best.rows)))) {
            best = p;
            best_cost = pc;
          }
        }
      }
    }
    if (best_cost >= 0) break;
  }
  FusedPlanAttempt out;
  if (best_cost < 0 && s.filtered_band && s.project && !s.stream_project) {
    // nothing fits with the project weights resident: stream them (a panel on chip, read per band)
    FusedBlockShape streamed = s;
    streamed.stream_project = true;
    FusedPlanAttempt a = search_fused_block_plan(streamed, S, o);
    if (a.plan) return a;
  }
  if (best_cost < 0) {
    out.why_not = cat("fused block: a buffer of S=", S, " ", s.elem.unit(), " cannot hold any band of H=", s.H, " W=", s.W,
                      " C=", s.C, " E=", s.E, " OC=", s.OC, " (the smallest candidate, ", last_why, ")");
    return out;
  }
  if (o.buffer_price > 0) {
    // The buffer's price weighs the band height only: the chunk stays the one chosen above (a
    // narrower chunk saves buffer too, but its GEMMs and weight reloads cost more than it models).
    const FusedBlockPlan unpriced = best;
    best_cost = -1;
    for (int64_t rows : heights) {
      FusedPlanAttempt a = try_fused_block_plan(s, S, rows, unpriced.chunk, unpriced.halo_cache);
      if (!a.plan) continue;
      const int64_t pc = cost(*a.plan, true);
      if (best_cost < 0 || pc < best_cost || (pc == best_cost && a.plan->rows > best.rows)) {
        best = *a.plan;
        best_cost = pc;
      }
    }
    if (best.rows != unpriced.rows)
      best.note = cat("bands of ", best.rows, " rows, not ", unpriced.rows, ": the buffer beyond the ", o.free_buffer,
                      " ", s.elem.unit(), " free beside the block is priced (", unpriced.buffer_entries, " -> ",
                      best.buffer_entries, " ", s.elem.unit(), ")");
  }
  best.candidates = candidates;
  best.over_buffer = over;
  out.plan = best;
  return out;
}

FusedBlockPlan plan_fused_block_threads(const FusedBlockShape& s, int64_t images, int64_t S, int threads,
                                        const FusedPlannerOptions& o) {
  LOCUS_CHECK(images >= 1 && threads >= 1, "fused block: bad images=", images, " or threads=", threads);
  FusedBlockPlan plan = plan_fused_block(s, S, o);
  int64_t split_chunks = 0;
  if (threads > 1 && images * plan.bands < threads) {
    if (s.project && plan.chunks >= threads) {
      split_chunks = threads;
      // Threads take equal shares of the chunks: re-cut E into a multiple of `threads` chunks
      // (the nearest count below or above, multiples of chunk_step channels) when it fits and costs
      // the least modelled traffic; e.g. 3 chunks on 2 threads left one thread twice the work.
      if (plan.chunks % threads != 0) {
        std::optional<FusedBlockPlan> best;
        std::string why;  // why no candidate was taken
        for (int64_t target : {plan.chunks / threads * threads, (plan.chunks + threads - 1) / threads * threads}) {
          if (target < threads) continue;
          int64_t c = ceil_div(s.E, target);
          c = std::min(s.E, ceil_div(c, o.chunk_step) * o.chunk_step);
          if (ceil_div(s.E, c) % threads != 0) {
            why += cat(why.empty() ? "" : "; ", target, " chunks cannot be cut in multiples of ", o.chunk_step,
                       " channels");
            continue;
          }
          FusedPlanAttempt a = try_fused_block_plan(plan.shape, S, plan.rows, c, plan.halo_cache);
          if (!a.plan) {
            why += (why.empty() ? "" : "; ") + a.why_not;  // does not fit S: keep the other candidate
            continue;
          }
          if (!best || a.plan->total < best->total) best = *a.plan;
        }
        if (best)
          plan = *best;
        else
          add_note(plan, cat("chunks not re-cut for ", threads, " threads (", plan.chunks, " chunks kept): ",
                             why.empty() ? "no candidate count" : why));
      }
    } else {
      FusedPlannerOptions po = o;
      po.min_bands = ceil_div(threads, images);
      plan = plan_fused_block(s, S, po);
    }
  }
  if (threads > 1 && split_chunks == 0) {
    // Threads take contiguous stretches of the batch's bands. When that leaves one thread with
    // noticeably more output rows than the others (e.g. 7 bands on 2 threads: 4 against 3), use
    // the band height that balances them at the least modelled traffic, if it costs at most a
    // quarter more traffic.
    const int64_t OH = s.OH();
    auto imbalance = [&](const FusedBlockPlan& q) {
      const int64_t total = images * q.bands;
      int64_t worst = 0;
      for (int t = 0; t < threads; ++t) {
        int64_t rows = 0;
        for (int64_t g = total * t / threads; g < total * (t + 1) / threads; ++g) {
          const int64_t b = g % q.bands;
          rows += std::min(OH, (b + 1) * q.rows) - b * q.rows;
        }
        worst = std::max(worst, rows);
      }
      return double(worst) * threads / double(images * OH);
    };
    constexpr double kBalanced = 1.05;
    if (imbalance(plan) > kBalanced) {
      std::optional<FusedBlockPlan> best;
      std::string why;  // of the last balanced height that does not fit S
      for (int64_t r = 1; r <= OH; ++r) {
        FusedBlockPlan split;  // the band split alone decides the balance
        split.rows = std::min(r, OH);
        split.bands = ceil_div(OH, split.rows);
        if (imbalance(split) > kBalanced) continue;
        FusedPlanAttempt a = try_fused_block_plan(plan.shape, S, r, plan.chunk, plan.halo_cache);
        if (!a.plan) {
          why = a.why_not;
          continue;
        }
        if (!best || a.plan->total <= best->total) best = *a.plan;  // ties: taller bands
      }
      const std::string kept = cat("bands not rebalanced for ", threads, " threads (rows=", plan.rows, " kept): ");
      if (!best)
        add_note(plan, kept + (why.empty() ? "no band height balances them" : "no balanced band height fits (" + why + ")"));
      else if (best->total > plan.total + plan.total / 4)
        add_note(plan, cat(kept, "the balanced rows=", best->rows, " costs ", best->total, " ", s.elem.unit(),
                           " of traffic, more than ", plan.total, " + 1/4"));
      else
        plan = *best;
    }
  }
  plan.images = images;
  plan.threads = threads;
  plan.split_chunks = split_chunks;
  return plan;
}

std::string FusedBlockPlan::describe() const {
  std::ostringstream o;
  o << "H=" << shape.H << " W=" << shape.W << " C=" << shape.C << " E=" << shape.E << " OC=" << shape.OC
    << " k=" << shape.KH << "x" << shape.KW << " s=" << shape.SH;
  if (shape.dw2) o << " k2=" << shape.KH2 << "x" << shape.KW2 << " s2=" << shape.SH2 << "x" << shape.SW2;
  o << " S=" << S << (shape.elem.bytes ? " bytes" : "") << ": rows=" << rows
    << " chunk=" << chunk << " bands=" << bands << " chunks=" << chunks << " buffer=" << buffer_entries;
  if (shape.filtered_band) o << " filtered_band=" << filtered_entries;
  if (shape.stream_project) o << " project_streamed";
  o << " traffic input=" << reads_input << " weights=" << reads_weights << " output=" << writes_output
    << " total=" << total << " expand_macs=" << expand_macs << (halo_cache ? " halo_cache=" : "")
    << (halo_cache ? std::to_string(halo_rows) : "");
  if (!note.empty()) o << "; " << note;
  return o.str();
}

const char* se_strategy_name(SeStrategy s) { return s == SeStrategy::TwoPass ? "two-pass" : "recompute"; }

SeBlockPlan plan_se_block(const FusedBlockShape& s, int64_t S, const FusedPlannerOptions& o,
                          std::optional<SeStrategy> force) {
  LOCUS_CHECK(s.project && !s.dw2 && !s.filtered_band, "squeeze-excite block: needs a project stage and one depthwise stage");
  FusedPlannerOptions po = o;
  po.halo_cache = false;  // both passes expand each band's rows (halo included) afresh
  SeBlockPlan p;
  p.block = plan_fused_block(s, S, po);
  const int64_t free_entries = std::max<int64_t>(0, S - p.block.buffer_entries);
  p.stored = s.OH() * s.OW() * s.E;
  p.kept = std::min(p.stored, free_entries);
  p.spilled = p.stored - p.kept;
  const int64_t input = s.H * s.W * s.C;
  p.input_reread = input <= free_entries ? 0 : p.block.reads_input;
  p.recompute_macs = p.block.expand_macs + s.OH() * s.OW() * s.E * s.KH * s.KW;
  p.extra_two_pass = 2 * p.spilled;
  p.extra_recompute = p.input_reread + p.block.reads_weights + p.recompute_macs / kMacsPerEntry;
  p.strategy = force ? *force : p.extra_recompute < p.extra_two_pass ? SeStrategy::Recompute : SeStrategy::TwoPass;
  return p;
}

std::string SeBlockPlan::describe() const {
  std::ostringstream o;
  o << "squeeze-excite " << se_strategy_name(strategy) << " (D=" << stored << " kept=" << kept << " spilled=" << spilled
    << "; extra traffic two-pass=" << extra_two_pass << " recompute=" << extra_recompute << " [input reread="
    << input_reread << " macs=" << recompute_macs << "]); " << block.describe();
  return o.str();
}

}  // namespace locus::schedule
