#include "cli/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "graph/error.h"

namespace locus::cli {
namespace {

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string num(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}

// A "nice" step (1, 2 or 5 x 10^k) giving about `n` intervals over [0, hi].
double nice_step(double hi, int n) {
  const double raw = hi / n;
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * p) return m * p;
  return 10 * p;
}

const char* kColours[] = {"#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};

}  // namespace

std::string render_svg(const LinePlot& p) {
  double xmin = 0, xmax = 0, ymax = 0;
  bool any = false;
  for (auto& s : p.series)
    for (auto& [x, y] : s.points) {
      LOCUS_CHECK(x > 0, "svg plot: x values must be positive on a log axis, got ", x);
      if (!any) xmin = xmax = x;
      xmin = std::min(xmin, x), xmax = std::max(xmax, x), ymax = std::max(ymax, y);
      any = true;
    }
  LOCUS_CHECK(any, "svg plot: no points to plot");
  if (ymax <= 0) ymax = 1;
  const double lx0 = std::floor(std::log2(xmin)), lx1 = std::max(lx0 + 1, std::ceil(std::log2(xmax)));
  const double step = nice_step(ymax, 5);
  const double ytop = std::ceil(ymax / step) * step;
  const int W = p.width, H = p.height, ml = 80, mr = 170, mt = 40, mb = 60;
  const double pw = W - ml - mr, ph = H - mt - mb;
  auto X = [&](double x) { return ml + (std::log2(x) - lx0) / (lx1 - lx0) * pw; };
  auto Y = [&](double y) { return mt + ph - y / ytop * ph; };
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H << "\" viewBox=\"0 0 " << W
    << ' ' << H << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  o << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o << "<text x=\"" << ml + pw / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">" << esc(p.title) << "</text>\n";
  // grid and ticks
  for (double y = 0; y <= ytop + step / 2; y += step) {
    o << "<line x1=\"" << ml << "\" y1=\"" << num(Y(y)) << "\" x2=\"" << ml + pw << "\" y2=\"" << num(Y(y))
      << "\" stroke=\"#ddd\"/>\n";
    char label[64];
    std::snprintf(label, sizeof label, "%.6g", y);
    o << "<text x=\"" << ml - 6 << "\" y=\"" << num(Y(y) + 4) << "\" text-anchor=\"end\">" << label << "</text>\n";
  }
  for (double lx = lx0; lx <= lx1 + 0.5; lx += 1) {
    const double x = std::exp2(lx);
    o << "<line x1=\"" << num(X(x)) << "\" y1=\"" << mt << "\" x2=\"" << num(X(x)) << "\" y2=\"" << mt + ph
      << "\" stroke=\"#eee\"/>\n";
    o << "<text x=\"" << num(X(x)) << "\" y=\"" << mt + ph + 18 << "\" text-anchor=\"middle\">"
      << esc(p.x_tick ? p.x_tick(x) : num(x)) << "</text>\n";
  }
  o << "<rect x=\"" << ml << "\" y=\"" << mt << "\" width=\"" << pw << "\" height=\"" << ph
    << "\" fill=\"none\" stroke=\"black\"/>\n";
  o << "<text x=\"" << ml + pw / 2 << "\" y=\"" << H - 16 << "\" text-anchor=\"middle\">" << esc(p.x_label)
    << "</text>\n";
  o << "<text transform=\"translate(20," << mt + ph / 2 << ") rotate(-90)\" text-anchor=\"middle\">"
    << esc(p.y_label) << "</text>\n";
  // series and legend
  for (size_t i = 0; i < p.series.size(); ++i) {
    const PlotSeries& s = p.series[i];
    const char* col = kColours[i % (sizeof kColours / sizeof kColours[0])];
    std::vector<std::pair<double, double>> pts = s.points;
    std::sort(pts.begin(), pts.end());
    o << "<polyline fill=\"none\" stroke=\"" << col << "\" stroke-width=\"2\" points=\"";
    for (auto& [x, y] : pts) o << num(X(x)) << ',' << num(Y(y)) << ' ';
    o << "\"/>\n";
    for (auto& [x, y] : pts)
      o << "<circle cx=\"" << num(X(x)) << "\" cy=\"" << num(Y(y)) << "\" r=\"3\" fill=\"" << col << "\"/>\n";
    const double ly = mt + 10 + 20.0 * double(i);
    o << "<line x1=\"" << ml + pw + 14 << "\" y1=\"" << ly << "\" x2=\"" << ml + pw + 40 << "\" y2=\"" << ly
      << "\" stroke=\"" << col << "\" stroke-width=\"2\"/>\n";
    o << "<text x=\"" << ml + pw + 46 << "\" y=\"" << ly + 4 << "\">" << esc(s.label) << "</text>\n";
  }
  o << "</svg>\n";
  return o.str();
}

}  // namespace locus::cli
