// The compiled core of the Python package `locus` (python/locus/): the extension module
// locus._locus, on pybind11. Sessions over runtime/session.h (inputs read in place from NumPy
// arrays, the GIL released while running), photo preprocessing (cli/image.h), and the CLI's
// energy, decompose and bench reports as Python data. Every locus error becomes an exception of the
// locus.Error hierarchy with the CLI's one-line message; the friendly signatures and docstrings are
// in python/locus/__init__.py.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <unistd.h>

#include "accel/accel_config.h"
#include "accel/mapping.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/decompose_report.h"
#include "cli/energy_report.h"
#include "cli/image.h"
#include "cli/json.h"
#include "graph/error.h"
#include "runtime/machine_info.h"
#include "runtime/session.h"

namespace py = pybind11;
namespace fs = std::filesystem;

namespace {

// The exception classes (created in PYBIND11_MODULE).
PyObject* g_error = nullptr;        // locus.Error(Exception)
PyObject* g_input_error = nullptr;  // locus.InputError(Error, ValueError): bad arguments, inputs, options
PyObject* g_model_error = nullptr;  // locus.ModelError(Error, ValueError): a model that cannot be loaded
PyObject* g_file_error = nullptr;   // locus.FileError(Error, OSError): a file missing, unreadable, unwritable
PyObject* g_unsupported = nullptr;  // locus.Unsupported(Error, NotImplementedError)

// Where a locus::Error arose, for the class it becomes when its message names no file problem.
enum class Context { Input, Model };

struct PyLocusError {
  PyObject* type;
  std::string message;
};

bool names_file_problem(const std::string& m) {
  for (const char* s : {"cannot open", "cannot read", "cannot write", "cannot create", "does not exist", "not found",
                        "is a directory", "is not a regular file", "not writable"})
    if (m.find(s) != std::string::npos) return true;
  return false;
}

// Runs f, turning C++ errors into PyLocusError (raised by the caller with the GIL held).
template <class F>
auto guarded(Context ctx, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const locus::Unsupported& e) {
    throw PyLocusError{g_unsupported, e.what()};
  } catch (const locus::cli::UsageError& e) {
    throw PyLocusError{g_input_error, e.what()};
  } catch (const locus::Error& e) {
    const std::string m = e.what();
    if (names_file_problem(m)) throw PyLocusError{g_file_error, m};
    throw PyLocusError{ctx == Context::Input ? g_input_error : g_model_error, m};
  }
}

PyObject* new_exception(py::module_& m, const char* name, const char* doc, PyObject* bases) {
  const std::string qual = std::string("locus.") + name;
  PyObject* t = PyErr_NewExceptionWithDoc(qual.c_str(), doc, bases, nullptr);
  if (!t) throw py::error_already_set();
  m.attr(name) = py::handle(t);
  return t;
}

// NumPy dtype <-> locus DType
locus::DType dtype_of(const py::dtype& d, const std::string& input) {
  const char k = d.kind();
  const auto size = d.itemsize();
  if (k == 'f' && size == 4) return locus::DType::F32;
  if (k == 'f' && size == 8) return locus::DType::F64;
  if (k == 'i' && size == 8) return locus::DType::I64;
  if (k == 'i' && size == 4) return locus::DType::I32;
  if (k == 'i' && size == 1) return locus::DType::I8;
  if (k == 'u' && size == 1) return locus::DType::U8;
  if (k == 'b' && size == 1) return locus::DType::Bool;
  throw PyLocusError{g_input_error, "input '" + input + "' has type " + d.attr("name").cast<std::string>() +
                                        ", which locus does not take (float32, float64, int64, int32, int8, uint8, bool)"};
}

const char* numpy_name(locus::DType t) {
  return t == locus::DType::Bool ? "bool" : locus::dtype_name(t);
}

// A NumPy array that owns the tensor (no copy of the output).
py::array to_numpy(locus::Tensor&& t) {
  auto* owned = new locus::Tensor(std::move(t));
  py::capsule free_it(owned, [](void* p) { delete static_cast<locus::Tensor*>(p); });
  std::vector<py::ssize_t> shape(owned->shape.begin(), owned->shape.end());
  return py::array(py::dtype(numpy_name(owned->dtype)), shape, {}, owned->bytes.data(), free_it);
}

py::object json_to_python(const locus::cli::Json& j) {
  return py::module_::import("json").attr("loads")(locus::cli::json_text(j));
}

int64_t parse_size(const py::object& v, const std::string& option, bool entries) {
  if (py::isinstance<py::bool_>(v)) throw PyLocusError{g_input_error, "option " + option + " expects a size, got a bool"};
  if (py::isinstance<py::int_>(v)) return v.cast<int64_t>();
  if (py::isinstance<py::str>(v)) {
    const std::string s = v.cast<std::string>();
    if (!entries) {  // bytes, as the CLI's size options read them (parse_bytes: -1 when malformed)
      const int64_t b = locus::parse_bytes(s);
      if (b < 0)
        throw PyLocusError{g_input_error, "option " + option + ": expects a size such as 512K, 1M or 4G, got '" + s + "'"};
      return b;
    }
    return guarded(Context::Input, [&] {
      try {
        return locus::accel::parse_entries(s);
      } catch (const locus::Error& e) {
        throw locus::Error("option " + option + ": " + e.what());
      }
    });
  }
  throw PyLocusError{g_input_error, "option " + option + " expects a size such as 64K or an int, got " +
                                        std::string(py::str(py::type::of(v).attr("__name__")))};
}

class PySession {
 public:
  PySession(const std::string& model, const std::string& backend, int threads, py::object l2, bool fuse,
            const std::string& decompose, const std::string& model_dir, int64_t batch, py::object max_memory)
      : backend_(backend) {
    const int64_t l2_bytes = l2.is_none() ? -1 : parse_size(l2, "l2", false);
    const int64_t mem = max_memory.is_none() ? 0 : parse_size(max_memory, "max_memory", false);
    const locus::SessionOptions o = guarded(Context::Input, [&] {
      return locus::cli::simple_session_options(backend, threads, l2_bytes, fuse, decompose, batch, mem);
    });
    py::gil_scoped_release unlocked;
    session_ = std::make_unique<locus::Session>(
        guarded(Context::Model, [&] { return locus::cli::open_session(model, model_dir, o); }));
  }

  py::list infos(const std::vector<std::string>& names) const {
    py::list r;
    for (const std::string& n : names) {
      const locus::ValueInfo vi = session_->graph().info(n);
      py::dict d;
      d["name"] = n;
      d["shape"] = py::tuple(py::cast(vi.shape));
      d["dtype"] = numpy_name(vi.dtype);
      r.append(d);
    }
    return r;
  }
  py::list inputs() const { return infos(session_->input_names()); }
  py::list outputs() const { return infos(session_->output_names()); }

  py::dict run(const py::dict& feed) {
    std::map<std::string, locus::TensorView> views;
    std::vector<py::array> keep;  // the arrays read in place, alive until the run ends
    for (auto [k, v] : feed) {
      if (!py::isinstance<py::str>(k))
        throw PyLocusError{g_input_error, "input names must be str, got " +
                                              std::string(py::str(py::type::of(k).attr("__name__")))};
      const std::string name = k.cast<std::string>();
      if (!py::isinstance<py::array>(v))
        throw PyLocusError{g_input_error, "input '" + name + "' must be a numpy.ndarray, got " +
                                              std::string(py::str(py::type::of(v).attr("__name__")))};
      py::array a = py::reinterpret_borrow<py::array>(v);
      const locus::DType t = dtype_of(a.dtype(), name);
      if (!(a.flags() & py::array::c_style) || !(a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
        throw PyLocusError{g_input_error, "input '" + name +
                                              "' is not a C-contiguous, aligned array (use numpy.ascontiguousarray)"};
      if (!a.dtype().attr("isnative").cast<bool>())
        throw PyLocusError{g_input_error, "input '" + name + "' is not in the machine's byte order"};
      locus::Shape shape(a.shape(), a.shape() + a.ndim());
      views[name] = locus::TensorView{t, shape, a.data(), size_t(a.nbytes())};
      keep.push_back(std::move(a));
    }
    std::vector<locus::Tensor> outs;
    {
      py::gil_scoped_release unlocked;
      outs = guarded(Context::Input, [&] { return session_->run_views(views); });
    }
    py::dict r;
    for (size_t i = 0; i < outs.size(); ++i) r[py::str(session_->output_names()[i])] = to_numpy(std::move(outs[i]));
    return r;
  }

  py::dict explain() const {
    py::dict d;
    d["backend"] = backend_;
    d["describe"] = session_->executable().describe();
    py::list fused;
    for (const locus::Node& n : session_->graph().nodes)
      if (n.op == "FusedInvertedResidual" || n.op == "FusedSEBlock") {
        py::dict b;
        b["node"] = n.name;
        py::list parts;
        std::stringstream ss(n.s("fused_nodes", ""));
        std::string item;
        while (std::getline(ss, item, ','))
          if (!item.empty()) parts.append(item);
        b["fused_nodes"] = parts;
        b["residual"] = n.i("residual", 0) != 0;
        fused.append(b);
      }
    d["fused_blocks"] = fused;
    py::list remarks;
    for (const locus::PassRemark& r : session_->pass_report().remarks) {
      py::dict x;
      x["pass"] = r.pass;
      x["node"] = r.node;
      x["kind"] = locus::remark_kind_name(r.kind);
      x["message"] = r.message;
      remarks.append(x);
    }
    d["remarks"] = remarks;
    py::list pw;
    for (const locus::PointwisePlanRow& p : session_->executable().pointwise_plans()) {
      py::dict x;
      x["node"] = p.node;
      x["M"] = p.M;
      x["K"] = p.K;
      x["N"] = p.N;
      x["stride"] = py::make_tuple(p.stride_h, p.stride_w);
      x["groups"] = p.groups;
      if (p.plan) {
        x["tile"] = py::make_tuple(p.plan->m, p.plan->n, p.plan->k);
        x["plan"] = p.plan->describe();
      } else {
        x["tile"] = py::none();
        x["why_not"] = p.why_not;
      }
      pw.append(x);
    }
    d["pointwise_plans"] = pw;
    py::list fp;
    for (const locus::FusedBlockPlanRow& p : session_->executable().fused_block_plans()) {
      py::dict x;
      x["node"] = p.node;
      x["band_rows"] = p.plan.rows;
      x["chunk"] = p.plan.chunk;
      x["bands"] = p.plan.bands;
      x["chunks"] = p.plan.chunks;
      x["buffer_entries"] = p.plan.buffer_entries;
      x["traffic_entries"] = p.plan.total;
      x["threads"] = p.plan.threads;
      // a squeeze-excite block (FusedSEBlock): "two-pass" or "recompute"; None for the others
      x["squeeze_excite"] = p.se ? py::object(py::str(locus::schedule::se_strategy_name(p.se->strategy))) : py::none();
      fp.append(x);
    }
    d["fused_block_plans"] = fp;
    py::list impls;
    for (const locus::NodeImplementation& ni : session_->executable().implementations()) {
      py::dict x;
      x["node"] = ni.node;
      x["op"] = ni.op;
      x["implementation"] = ni.implementation;
      impls.append(x);
    }
    d["implementations"] = impls;
    d["activation_bytes"] = session_->activation_bytes();
    d["planned_memory_bytes"] = session_->planned_memory_bytes();
    return d;
  }

 private:
  std::string backend_;
  std::unique_ptr<locus::Session> session_;
};

py::array load_image(const std::string& path, int64_t size) {
  if (size < 1 || size > 4096)
    throw PyLocusError{g_input_error, "option size must be between 1 and 4096, got " + std::to_string(size)};
  locus::Tensor t = guarded(Context::Input, [&] {
    py::gil_scoped_release unlocked;
    // as `locus run --image` prepares a photo for a size x size input (resize short side to size * 256 / 224)
    return locus::cli::preprocess_imagenet(locus::cli::decode_image(path), size * 256 / 224, size,
                                           locus::cli::LongSide::Round);
  });
  return to_numpy(std::move(t));
}

std::vector<locus::accel::ScheduleKind> parse_schedules(const std::vector<std::string>& names) {
  std::vector<locus::accel::ScheduleKind> r;
  for (const std::string& n : names) {
    const auto k = guarded(Context::Input, [&] {
      try {
        return locus::accel::parse_schedule(n);
      } catch (const locus::Error& e) {
        throw locus::Error(std::string("option schedules: ") + e.what());
      }
    });
    for (auto x : r)
      if (x == k) throw PyLocusError{g_input_error, "option schedules names '" + n + "' twice"};
    r.push_back(k);
  }
  if (r.empty()) throw PyLocusError{g_input_error, "option schedules expects baseline, scan and/or fused-scan"};
  return r;
}

py::object energy(const std::string& model, py::object buffer, const std::vector<std::string>& schedules,
                  const std::string& accel, py::object dram, const std::string& decompose, bool fuse,
                  const std::string& model_dir, int64_t batch, const std::string& pacing) {
  locus::cli::EnergyRequest r;
  r.schedules = parse_schedules(schedules);
  if (pacing == "compute")
    r.pacings = {locus::accel::Pacing::Compute};
  else if (pacing == "dram")
    r.pacings = {locus::accel::Pacing::Dram};
  else if (pacing != "both")
    throw PyLocusError{g_input_error, "option pacing expects compute, dram or both, got '" + pacing + "'"};
  if (!buffer.is_none()) r.buffer_entries = parse_size(buffer, "buffer", true);
  if (!dram.is_none()) r.dram = dram.cast<std::string>();
  r.accel = accel;
  r.no_fuse = !fuse;
  r.batch = batch;
  if (!decompose.empty())
    r.decompose = guarded(Context::Input, [&] {
      return locus::cli::simple_session_options("accel", 0, -1, true, decompose, 1, 0).pipeline.decompose;
    });
  if (r.buffer_entries && *r.buffer_entries <= 0)
    throw PyLocusError{g_input_error, "option buffer must be a positive number of entries"};
  locus::cli::Json j;
  {
    py::gil_scoped_release unlocked;
    j = guarded(Context::Model, [&] {
      // the config first (a bad preset fails before the model is read), as `locus energy` does
      locus::accel::AccelConfig cfg = locus::accel::load_accel_config(r.accel);
      if (r.dram) cfg.dram = locus::accel::dram_preset(*r.dram);
      r.model = locus::cli::resolve_model(model, model_dir);
      return locus::cli::energy_report(r);
    });
  }
  return json_to_python(j);
}

py::object decompose(const std::string& model, const std::string& output, const std::string& rank, int form,
                     const std::vector<std::string>& layers, int iterations, const std::string& model_dir,
                     int64_t batch, bool progress) {
  locus::cli::DecomposeRequest r;
  if (!rank.empty())
    r.options.policy = guarded(Context::Input, [&] {
      try {
        return locus::RankPolicy::parse(rank);
      } catch (const locus::Error& e) {
        throw locus::Error(std::string("option rank: ") + e.what());
      }
    });
  if (form != 3 && form != 4) throw PyLocusError{g_input_error, "option form expects 3 or 4, got " + std::to_string(form)};
  r.options.form = form == 4 ? locus::CpForm::FourWay : locus::CpForm::ThreeWay;
  if (iterations < 1) throw PyLocusError{g_input_error, "option iterations must be at least 1"};
  r.options.max_iterations = iterations;
  r.layers = layers;
  r.output = output;
  r.batch = batch;
  r.progress = progress;
  locus::cli::Json j;
  {
    py::gil_scoped_release unlocked;
    j = guarded(Context::Model, [&] {
      r.model = locus::cli::resolve_model(model, model_dir);
      return locus::cli::decompose_json(locus::cli::decompose_model(r));
    });
  }
  return json_to_python(j);
}

// `locus bench ARGS --json FILE` run in this process (no subprocess): its table goes to stdout as
// the CLI prints it, the JSON document is returned.
py::object bench(const std::vector<std::string>& args) {
  char tmpl[] = "/tmp/locus-bench-XXXXXX";
  const int fd = mkstemp(tmpl);
  if (fd < 0) throw PyLocusError{g_file_error, "cannot create a temporary file for the bench results"};
  close(fd);
  const std::string json_file = tmpl;
  std::vector<std::string> argv_s = {"locus", "bench"};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  argv_s.push_back("--json");
  argv_s.push_back(json_file);
  std::vector<char*> argv;
  for (std::string& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  int rc = 0;
  try {
    py::gil_scoped_release unlocked;
    rc = guarded(Context::Input, [&] { return locus::cli::run_command(int(argv.size() - 1), argv.data()); });
    std::fflush(stdout);
  } catch (...) {
    std::remove(json_file.c_str());
    throw;
  }
  std::ifstream f(json_file);
  std::stringstream text;
  text << f.rdbuf();
  std::remove(json_file.c_str());
  if (rc != 0 || text.str().empty())
    throw PyLocusError{g_input_error, "bench wrote no results (exit status " + std::to_string(rc) + ")"};
  return py::module_::import("json").attr("loads")(text.str());
}

}  // namespace

PYBIND11_MODULE(_locus, m) {
  m.doc() = "The compiled core of the locus package (import locus instead).";
  g_error = new_exception(m, "Error", "Base class of every error locus raises; the message is the CLI's one line.",
                          PyExc_Exception);
  auto bases = [](PyObject* a, PyObject* b) { return py::make_tuple(py::handle(a), py::handle(b)).release().ptr(); };
  g_input_error = new_exception(m, "InputError", "A bad argument, option or input tensor (also a ValueError).",
                                bases(g_error, PyExc_ValueError));
  g_model_error = new_exception(m, "ModelError", "A model that cannot be loaded or run (also a ValueError).",
                                bases(g_error, PyExc_ValueError));
  g_file_error = new_exception(m, "FileError", "A file that is missing, unreadable or unwritable (also an OSError).",
                               bases(g_error, PyExc_OSError));
  g_unsupported = new_exception(m, "Unsupported", "An operator or type locus does not implement (also a NotImplementedError).",
                                bases(g_error, PyExc_NotImplementedError));
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const PyLocusError& e) {
      PyErr_SetString(e.type, e.message.c_str());
    } catch (const locus::Unsupported& e) {
      PyErr_SetString(g_unsupported, e.what());
    } catch (const locus::Error& e) {
      PyErr_SetString(names_file_problem(e.what()) ? g_file_error : g_error, e.what());
    }
  });

  py::class_<PySession>(m, "_Session")
      .def(py::init<const std::string&, const std::string&, int, py::object, bool, const std::string&,
                    const std::string&, int64_t, py::object>())
      .def_property_readonly("inputs", &PySession::inputs)
      .def_property_readonly("outputs", &PySession::outputs)
      .def("run", &PySession::run)
      .def("explain", &PySession::explain);
  m.def("load_image", &load_image);
  m.def("energy", &energy);
  m.def("decompose", &decompose);
  m.def("bench", &bench);
  m.def("version", [] { return std::string(LOCUS_VERSION); });
}
