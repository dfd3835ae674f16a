// Signal processing: window functions, DFT, STFT, MelWeightMatrix. Everything computes in double and rounds to the
// output dtype.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernel.h"
#include "kernels/ref/misc_util.h"

namespace kiln::cpu {

using namespace misc;

// Signal processing

namespace {

// Generalized cosine window: a0 - a1 cos(2 pi n / N) + a2 cos(4 pi n / N), N = size (periodic) or size - 1.
Status cosine_window(KernelContext& ctx, double a0, double a1, double a2) {
  KILN_ASSIGN_OR_RETURN(int64_t size, scalar_int(ctx, 0, "size"));
  if (size < 0 || size > kMaxGenerated) {
    return ctx.error("size is " + std::to_string(size) + " but a size in [0, 2^31] was expected");
  }
  KILN_ASSIGN_OR_RETURN(DType dt, dtype_attr(ctx, "output_datatype", DType::kFloat32));
  const bool periodic = ctx.attr_int("periodic", 1) != 0;
  const double n_denom = static_cast<double>(periodic ? size : size - 1);
  std::vector<double> v(static_cast<size_t>(size));
  for (int64_t n = 0; n < size; ++n) {
    const double x = n_denom > 0 ? 2 * kPi * static_cast<double>(n) / n_denom : 0.0;
    v[static_cast<size_t>(n)] = a0 - a1 * std::cos(x) + a2 * std::cos(2 * x);
  }
  return emit(ctx, 0, dt, {size}, v);
}

// cos/sin of -2 pi m / n for m in [0, n): the twiddle factors of a length-n DFT.
struct Twiddles {
  std::vector<double> c, s;
  explicit Twiddles(int64_t n) : c(static_cast<size_t>(n)), s(static_cast<size_t>(n)) {
    for (int64_t m = 0; m < n; ++m) {
      const double ang = -2 * kPi * static_cast<double>(m) / static_cast<double>(n);
      c[static_cast<size_t>(m)] = std::cos(ang);
      s[static_cast<size_t>(m)] = std::sin(ang);
    }
  }
};

// The first n_out bins of a length-n DFT of complex samples (re, im); the inverse uses the conjugate twiddles
// and scales by 1/n.
void dft_line(const Twiddles& tw, const std::vector<double>& re, const std::vector<double>& im, int64_t n, bool inverse,
              int64_t n_out, std::vector<double>& out_re, std::vector<double>& out_im) {
  out_re.assign(static_cast<size_t>(n_out), 0.0);
  out_im.assign(static_cast<size_t>(n_out), 0.0);
  const double sign = inverse ? -1.0 : 1.0;
  for (int64_t k = 0; k < n_out; ++k) {
    double sr = 0, si = 0;
    int64_t m = 0;  // (j * k) mod n
    for (int64_t j = 0; j < n; ++j) {
      const double c = tw.c[static_cast<size_t>(m)], s = sign * tw.s[static_cast<size_t>(m)];
      const double xr = re[static_cast<size_t>(j)], xi = im[static_cast<size_t>(j)];
      sr += xr * c - xi * s;
      si += xr * s + xi * c;
      m += k % n;
      if (m >= n) m -= n;
    }
    if (inverse) {
      sr /= static_cast<double>(n);
      si /= static_cast<double>(n);
    }
    out_re[static_cast<size_t>(k)] = sr;
    out_im[static_cast<size_t>(k)] = si;
  }
}

}  // namespace

Status hann_window_kernel(KernelContext& ctx) { return cosine_window(ctx, 0.5, 0.5, 0.0); }
Status hamming_window_kernel(KernelContext& ctx) { return cosine_window(ctx, 25.0 / 46.0, 21.0 / 46.0, 0.0); }
Status blackman_window_kernel(KernelContext& ctx) { return cosine_window(ctx, 0.42, 0.5, 0.08); }

Status dft_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  if (!is_float_dtype(x->dtype())) return ctx.unsupported_dtype(x->dtype());
  const int64_t rank = static_cast<int64_t>(x->rank());
  if (rank < 2 || (x->dims().back() != 1 && x->dims().back() != 2)) {
    return ctx.error("input has shape " + dims_to_string(x->dims()) +
                     " but [..., signal, 1] (real) or [..., signal, 2] (complex) was expected");
  }
  int64_t axis = ctx.attr_int("axis", 1);
  if (ctx.opset() >= 20) {
    axis = -2;
    if (ctx.input(2)) {
      KILN_ASSIGN_OR_RETURN(axis, scalar_int(ctx, 2, "axis"));
    }
  }
  KILN_ASSIGN_OR_RETURN(axis, normalize_axis(ctx, axis, rank));
  if (axis == rank - 1) {
    return ctx.error("axis " + std::to_string(axis) + " is the real/imaginary axis; a signal axis was expected");
  }
  const bool inverse = ctx.attr_int("inverse", 0) != 0;
  const bool onesided = ctx.attr_int("onesided", 0) != 0;
  const int64_t len_in = x->dims()[static_cast<size_t>(axis)];
  int64_t n = len_in;
  if (const Tensor* l = ctx.input(1); l && l->num_elements() > 0) {
    KILN_ASSIGN_OR_RETURN(n, scalar_int(ctx, 1, "dft_length"));
    if (n < 1 || n > kMaxGenerated) {
      return ctx.error("dft_length is " + std::to_string(n) + " but a positive length was expected");
    }
  }
  if (n < 1) return ctx.error("the signal axis " + std::to_string(axis) + " is empty and no dft_length was given");
  const Twiddles tw(n);
  const int64_t n_out = onesided ? n / 2 + 1 : n;
  const bool complex_in = x->dims().back() == 2;
  std::vector<int64_t> out_dims = x->dims();
  out_dims[static_cast<size_t>(axis)] = n_out;
  out_dims.back() = 2;
  const auto xv = to_doubles(*x);
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= x->dims()[static_cast<size_t>(i)];
  for (int64_t i = axis + 1; i < rank - 1; ++i) inner *= x->dims()[static_cast<size_t>(i)];
  const int64_t cin = complex_in ? 2 : 1;
  std::vector<double> out(static_cast<size_t>(outer * n_out * inner * 2), 0.0);
  std::vector<double> re(static_cast<size_t>(n)), im(static_cast<size_t>(n)), ore, oim;
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t in = 0; in < inner; ++in) {
      for (int64_t j = 0; j < n; ++j) {
        if (j < len_in) {
          const size_t base = static_cast<size_t>(((o * len_in + j) * inner + in) * cin);
          re[static_cast<size_t>(j)] = xv[base];
          im[static_cast<size_t>(j)] = complex_in ? xv[base + 1] : 0.0;
        } else {
          re[static_cast<size_t>(j)] = im[static_cast<size_t>(j)] = 0.0;
        }
      }
      dft_line(tw, re, im, n, inverse, n_out, ore, oim);
      for (int64_t k = 0; k < n_out; ++k) {
        const size_t base = static_cast<size_t>(((o * n_out + k) * inner + in) * 2);
        out[base] = ore[static_cast<size_t>(k)];
        out[base + 1] = oim[static_cast<size_t>(k)];
      }
    }
  }
  return emit(ctx, 0, x->dtype(), out_dims, out);
}

Status stft_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* sig, ctx.required_input(0));
  if (!is_float_dtype(sig->dtype())) return ctx.unsupported_dtype(sig->dtype());
  if (sig->rank() != 3 || (sig->dims()[2] != 1 && sig->dims()[2] != 2)) {
    return ctx.error("signal has shape " + dims_to_string(sig->dims()) +
                     " but [batch, length, 1] or [batch, length, 2] was expected");
  }
  KILN_ASSIGN_OR_RETURN(int64_t step, scalar_int(ctx, 1, "frame_step"));
  if (step < 1) return ctx.error("frame_step is " + std::to_string(step) + " but a positive step was expected");
  const Tensor* window = ctx.input(2);
  int64_t frame_len = -1;
  if (ctx.input(3)) {
    KILN_ASSIGN_OR_RETURN(frame_len, scalar_int(ctx, 3, "frame_length"));
  }
  std::vector<double> win;
  if (window) {
    if (window->rank() != 1)
      return ctx.error("window has shape " + dims_to_string(window->dims()) + " but rank 1 was expected");
    if (frame_len >= 0 && frame_len != window->dims()[0]) {
      return ctx.error("frame_length " + std::to_string(frame_len) + " differs from the window length " +
                       std::to_string(window->dims()[0]));
    }
    frame_len = window->dims()[0];
    win = to_doubles(*window);
  }
  if (frame_len < 1) return ctx.error("needs a window (input 2) or a positive frame_length (input 3)");
  const int64_t batch = sig->dims()[0], length = sig->dims()[1];
  const bool complex_in = sig->dims()[2] == 2;
  if (frame_len > length) {
    return ctx.error("frame length " + std::to_string(frame_len) + " exceeds the signal length " +
                     std::to_string(length));
  }
  win.resize(static_cast<size_t>(frame_len), 1.0);
  if (!window) std::fill(win.begin(), win.end(), 1.0);
  const bool onesided = ctx.attr_int("onesided", 1) != 0;
  const int64_t frames = (length - frame_len) / step + 1;
  const Twiddles tw(frame_len);
  const int64_t bins = onesided ? frame_len / 2 + 1 : frame_len;
  const auto sv = to_doubles(*sig);
  const int64_t cin = complex_in ? 2 : 1;
  std::vector<double> out(static_cast<size_t>(batch * frames * bins * 2));
  std::vector<double> re(static_cast<size_t>(frame_len)), im(static_cast<size_t>(frame_len)), ore, oim;
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t f = 0; f < frames; ++f) {
      for (int64_t j = 0; j < frame_len; ++j) {
        const size_t base = static_cast<size_t>((b * length + f * step + j) * cin);
        re[static_cast<size_t>(j)] = sv[base] * win[static_cast<size_t>(j)];
        im[static_cast<size_t>(j)] = complex_in ? sv[base + 1] * win[static_cast<size_t>(j)] : 0.0;
      }
      dft_line(tw, re, im, frame_len, false, bins, ore, oim);
      for (int64_t k = 0; k < bins; ++k) {
        const size_t base = static_cast<size_t>(((b * frames + f) * bins + k) * 2);
        out[base] = ore[static_cast<size_t>(k)];
        out[base + 1] = oim[static_cast<size_t>(k)];
      }
    }
  }
  return emit(ctx, 0, sig->dtype(), {batch, frames, bins, 2}, out);
}

Status mel_weight_matrix_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(int64_t num_mel, scalar_int(ctx, 0, "num_mel_bins"));
  KILN_ASSIGN_OR_RETURN(int64_t dft_len, scalar_int(ctx, 1, "dft_length"));
  KILN_ASSIGN_OR_RETURN(int64_t rate, scalar_int(ctx, 2, "sample_rate"));
  KILN_ASSIGN_OR_RETURN(double lower, scalar_value(ctx, 3, "lower_edge_hertz"));
  KILN_ASSIGN_OR_RETURN(double upper, scalar_value(ctx, 4, "upper_edge_hertz"));
  KILN_ASSIGN_OR_RETURN(DType dt, dtype_attr(ctx, "output_datatype", DType::kFloat32));
  if (num_mel < 1 || dft_len < 1 || rate < 1) {
    return ctx.error("num_mel_bins, dft_length and sample_rate must be positive (got " + std::to_string(num_mel) +
                     ", " + std::to_string(dft_len) + ", " + std::to_string(rate) + ")");
  }
  if (num_mel > kMaxGenerated / (dft_len / 2 + 1)) return ctx.error("the requested matrix is too large");
  if (lower < 0 || upper < lower) {
    return ctx.error("the edge frequencies must satisfy 0 <= lower_edge_hertz <= upper_edge_hertz");
  }
  const int64_t spec_bins = dft_len / 2 + 1;
  const float low_mel = 2595.0f * std::log10(1.0f + static_cast<float>(lower) / 700.0f);
  const float high_mel = 2595.0f * std::log10(1.0f + static_cast<float>(upper) / 700.0f);
  const float mel_step = (high_mel - low_mel) / static_cast<float>(num_mel + 2);
  std::vector<int64_t> bins(static_cast<size_t>(num_mel + 2));
  for (int64_t i = 0; i < num_mel + 2; ++i) {
    double f = static_cast<double>(i) * static_cast<double>(mel_step) + static_cast<double>(low_mel);
    f = 700.0 * (std::pow(10.0, f / 2595.0) - 1.0);
    bins[static_cast<size_t>(i)] =
        static_cast<int64_t>(std::floor(static_cast<double>(dft_len + 1) * f / static_cast<double>(rate)));
  }
  std::vector<double> out(static_cast<size_t>(spec_bins * num_mel), 0.0);
  auto at = [&](int64_t row, int64_t col) -> double* {
    if (row < 0 || row >= spec_bins) return nullptr;
    return &out[static_cast<size_t>(row * num_mel + col)];
  };
  for (int64_t i = 0; i < num_mel; ++i) {
    const int64_t lo = bins[static_cast<size_t>(i)], center = bins[static_cast<size_t>(i + 1)],
                  hi = bins[static_cast<size_t>(i + 2)];
    const int64_t low_to_center = center - lo;
    if (low_to_center == 0) {
      if (double* p = at(center, i)) *p = 1;
    } else {
      for (int64_t j = lo; j <= center; ++j) {
        if (double* p = at(j, i)) *p = static_cast<double>(j - lo) / static_cast<double>(low_to_center);
      }
    }
    const int64_t center_to_high = hi - center;
    if (center_to_high > 0) {
      for (int64_t j = center; j < hi; ++j) {
        if (double* p = at(j, i)) *p = static_cast<double>(hi - j) / static_cast<double>(center_to_high);
      }
    }
  }
  return emit(ctx, 0, dt, {spec_bins, num_mel}, out);
}

}  // namespace kiln::cpu
