// Post-training quantization (kiln quantize): an fp32 ONNX model to a QDQ model, the format ONNX Runtime and
// TensorRT read and kiln's fuse_qdq pass turns into int8 kernels.
//
// Static: calibration batches run through the fp32 model, every quantized operator's input and output activations
// get a range (min/max, TensorRT's entropy calibration, or a percentile), and QuantizeLinear/DequantizeLinear pairs
// are written around them, with the weights as int8 initializers behind DequantizeLinear and the biases as int32.
// Dynamic: MatMul weights become int8 and activations are quantized per run (DynamicQuantizeLinear + MatMulInteger).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/core/tensor.h"
#include "kiln/ir/graph.h"

namespace kiln::quant {

enum class Method { kMinMax, kEntropy, kPercentile };

struct Options {
  Method method = Method::kMinMax;
  double percentile = 99.999;  // kPercentile: the share of |values| (or values, asymmetric) the range keeps
  // Weights: symmetric int8, one scale per output channel (else one per tensor). Per-channel needs opset 13.
  bool per_channel = false;
  // Activations: symmetric int8 with zero point 0 (else asymmetric uint8).
  bool symmetric_activations = false;
  // 7-bit weights ([-64, 64]): the int8 kernels of CPUs without VNNI or AMX compute them exactly (docs/cli.md).
  bool reduce_range = false;
  std::vector<std::string> exclude;  // node names left in float
  // Called after each calibration batch (pass, batches done, batches in all; pass 1 of 1 or 2).
  std::function<void(int pass, size_t done, size_t total)> progress;
};

using Feeds = std::vector<std::pair<std::string, Tensor>>;

// A quantized activation: its range and quantization parameters.
struct TensorRange {
  std::string name;
  float min = 0, max = 0;  // what calibration saw
  float lo = 0, hi = 0;    // the range the method chose
  float scale = 1;
  int32_t zero_point = 0;
  std::string dequantized;  // its DequantizeLinear's output in the QDQ model
  double error = -1;        // relative L2 error of the QDQ model's value against fp32 (report_errors); -1: not measured
};

struct Report {
  std::vector<std::string> quantized;  // node names (or "#index")
  std::vector<std::string> skipped;    // "name: why" for quantizable-looking nodes left in float
  std::vector<TensorRange> ranges;
};

// Both first fold the model's constants, remove its Identity nodes and fold BatchNormalization into convolutions
// (the output is that graph, quantized).
//
// Writes `out`: `model` in QDQ form, calibrated on `batches` (each a full set of feeds). Errors name the input,
// the batch or the node at fault.
StatusOr<Report> quantize_static(const ir::Model& model, const std::vector<Feeds>& batches, const Options& options,
                                 ir::Model& out);

// Writes `out`: `model` with every MatMul by a constant 2-D float32 B (and every Gemm written as one) quantized
// dynamically: B as int8 (symmetric, per column with per_channel), A by DynamicQuantizeLinear on each run,
// MatMulInteger, then the int32 product scaled back to float and the bias added.
StatusOr<Report> quantize_dynamic(const ir::Model& model, const Options& options, ir::Model& out);

// Fills each range's `error`: the QDQ model `quantized` and `model` run on `batches`, and each quantized tensor's
// dequantized value compared with the fp32 one (||q - f|| / ||f||, over every batch).
Status report_errors(const ir::Model& model, const ir::Model& quantized, const std::vector<Feeds>& batches,
                     Report& report);

// TensorRT's entropy calibration: the threshold T over a histogram of |x| (`bins` equal bins over [0, max_abs])
// that minimizes the KL divergence between the clipped distribution and its quantization to `levels` levels (128
// for a signed tensor, 256 for one that is never negative, as uint8 holds it). As TensorRT's reference calibrator
// does, the first bin counts as much as the second: the exact zeros a ReLU writes would otherwise outweigh the
// rest of the distribution and pull the threshold down to where every large activation is clipped.
double entropy_threshold(const std::vector<double>& bins, double max_abs, int levels = 128);

}  // namespace kiln::quant
