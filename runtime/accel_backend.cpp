// The accelerator-model backend ("accel"): numerics from the native backend's kernels (so outputs
// are checked like any backend's), and at compile time the projected energy of running the graph on
// the accelerator model (accel/schedule.h) under BackendOptions::accel_schedule, with the
// config accel_config and buffer accel_buffer_entries. run() only runs the native steps.
#include <cstdio>

#include "accel/accel_config.h"
#include "accel/schedule.h"
#include "accel/workload.h"
#include "runtime/backend.h"

namespace locus {
namespace {

class AccelExecutable : public Executable {
 public:
  AccelExecutable(std::unique_ptr<Executable> native, accel::ScheduleResult r, accel::AccelConfig cfg)
      : native_(std::move(native)), result_(std::move(r)), cfg_(std::move(cfg)) {}
  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    native_->run(inputs, outputs);
  }
  int64_t activation_bytes() const override { return native_->activation_bytes(); }
  void set_profiling(bool on) override { native_->set_profiling(on); }
  std::vector<NodeTiming> timings() const override { return native_->timings(); }
  std::optional<PointwiseTilingSettings> pointwise_tiling() const override { return native_->pointwise_tiling(); }
  std::vector<PointwisePlanRow> pointwise_plans() const override { return native_->pointwise_plans(); }
  std::vector<FusedBlockPlanRow> fused_block_plans() const override { return native_->fused_block_plans(); }
  std::string describe() const override {
    const accel::LayerResult& t = result_.total;
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "accel: %s schedule on '%s' (S = %lld entries of %d bits, DRAM %s): projected DRAM energy %.3f mJ "
                  "(%.2f MiB read, %.2f MiB written, row-buffer hit rate %.1f%%), total %.3f mJ",
                  accel::schedule_name(result_.kind), cfg_.name.c_str(), (long long)result_.buffer_entries,
                  cfg_.word_bits, cfg_.dram.name.c_str(), t.e_dram_pj() * 1e-9, double(t.read_bytes) / (1 << 20),
                  double(t.write_bytes) / (1 << 20), 100.0 * t.dram.row_hit_rate(), t.e_total_pj() * 1e-9);
    return buf;
  }

 private:
  std::unique_ptr<Executable> native_;
  accel::ScheduleResult result_;
  accel::AccelConfig cfg_;
};

class AccelBackend : public Backend {
 public:
  std::string name() const override { return "accel"; }
  BackendCapabilities capabilities() const override { return {true}; }  // fused-scan schedules fused blocks
  std::unique_ptr<Executable> compile(const Graph& g, const BackendOptions& o) override {
    // options first, so that a bad config fails before the native compile
    const accel::ScheduleKind kind = accel::parse_schedule(o.accel_schedule);
    accel::AccelConfig cfg = accel::load_accel_config(o.accel_config);
    auto native = make_backend("native")->compile(g, o);
    accel::ScheduleOptions so;
    so.buffer_entries = o.accel_buffer_entries;
    accel::ScheduleResult r = accel::run_schedule(accel::extract_workload(g), kind, cfg, so);
    return std::make_unique<AccelExecutable>(std::move(native), std::move(r), std::move(cfg));
  }
  // the numbers come from the native kernels
  std::vector<std::pair<std::string, std::string>> op_implementations() const override {
    return make_backend("native")->op_implementations();
  }
};

}  // namespace

std::unique_ptr<Backend> make_accel_backend() { return std::make_unique<AccelBackend>(); }

}  // namespace locus
