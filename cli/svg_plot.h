// A tiny SVG line-plot writer for the CLI (locus energy --svg): one or more series of (x, y) points
// on a log2 x axis and a linear y axis from 0, with labelled axes, tick labels and a legend.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace locus::cli {

struct PlotSeries {
  std::string label;
  std::vector<std::pair<double, double>> points;  // x > 0
};

struct LinePlot {
  std::string title, x_label, y_label;
  std::vector<PlotSeries> series;
  // Formats an x tick value (a power of two), e.g. 65536 -> "64K". Default: the number.
  std::string (*x_tick)(double) = nullptr;
  int width = 720, height = 440;
};

// The SVG document. Throws Error when there is no point or an x <= 0.
std::string render_svg(const LinePlot& p);

}  // namespace locus::cli
