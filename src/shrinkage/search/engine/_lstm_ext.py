"""An optional compiled kernel for the fused LSTM: the time loop in C++, one pass per step.

The eager fused LSTM (:mod:`~shrinkage.search.engine._fused_rnn`) spends about as much time
in its elementwise ops (seven per step forward, six backward, each a pass through memory
and a dispatch) as in its matrix products. Here the loop over time is C++ and so are the
products, one candidate at a time, so that its kernel, inputs and saved tensors stay in the
core's L2: per step, each block of 8 rows gets its gates' product from a register tile
(8 x 32 accumulators), then the cell's elementwise work on them while they are in L1;
backward, the cell's gradient and then the same rows' recurrent gradient, and after the
candidate's time loop its weight gradient in one tiled product, added straight into the
flat gradient. On these shapes (a few dozen rows times one candidate's 41 x 128 kernel) the
tile runs at 87-107% of this CPU's sgemm rate where MKL's batched GEMM runs at 72-78%
(``bench/lstm_products.py``). The layout is "candidate, time, batch, feature"; the results
agree with the eager path to float rounding.

Off by default: building it needs a C++ compiler and ``ninja`` and takes about 30 s
the first time (then it is cached in ``~/.cache/torch_extensions``). Turn it on with
:func:`enable_compiled_lstm` (or ``SHRINKAGE_COMPILED_LSTM=1``); the eager path is used
whenever it is off, cannot be built, or the tensors are not float32 on a CPU.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from shrinkage.errors import ShrinkageError

_SOURCE = r"""
#include <torch/extension.h>
#include <algorithm>
#include <cmath>
#include <vector>

// exp(x) = 2^n 2^f, n = rint(x log2 e), |f| <= 1/2, 2^f by its Taylor series to degree 7
// (relative error ~1e-7, as libm's): inlined, so the cell's loop vectorizes without calls.
static inline float exp_(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  const float t = x * 1.4426950409f;
  const float n = __builtin_rintf(t);
  const float f = t - n;
  float p = 1.525273380e-05f;
  p = p * f + 1.540353039e-04f;
  p = p * f + 1.333355815e-03f;
  p = p * f + 9.618129108e-03f;
  p = p * f + 5.550410866e-02f;
  p = p * f + 2.402265070e-01f;
  p = p * f + 6.931471806e-01f;
  p = p * f + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  __builtin_memcpy(&scale, &bits, 4);
  return p * scale;
}
static inline float sigm(float x) { return 1.0f / (1.0f + exp_(-x)); }
static inline float tanh_(float x) { return 2.0f / (1.0f + exp_(-2.0f * x)) - 1.0f; }

#if defined(__AVX512F__)
#include <immintrin.h>
// The same, 16 floats at a time, for the forward cell: the same polynomial, with 2^n applied
// by vscalefps (it saturates to 0 and inf by itself: no clamp, no integer work). Same
// results as the scalar path; the forward runs 6% faster.
static inline __m512 exp16(__m512 x) {
  const __m512 t = _mm512_mul_ps(x, _mm512_set1_ps(1.4426950409f));
  const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(t, n);
  __m512 p = _mm512_set1_ps(1.525273380e-05f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.540353039e-04f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.333355815e-03f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.618129108e-03f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550410866e-02f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.402265070e-01f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931471806e-01f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}
static inline __m512 sigm16(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f);
  return _mm512_div_ps(one, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}
static inline __m512 tanh16(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 e = exp16(_mm512_mul_ps(x, _mm512_set1_ps(-2.0f)));
  return _mm512_sub_ps(_mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(one, e)), one);
}
#endif

// The products. A register tile: P[r][j] = sum_d A[r*sr + d*sd] * W[d*ldw + j] for
// r < R, j < J (runtime bounds rn <= R, jn <= J at the edges). MKL's batched GEMM runs these
// shapes (a few dozen rows, one candidate's kernel) at 72-78% of its large-matrix rate; a
// tile whose accumulators stay in registers runs them at 87-107% (bench/lstm_products.py).
constexpr int TR = 8, TJ = 32;

template <bool Full>
static inline void tile(int rn, int jn, const float* __restrict A, int64_t sr, int64_t sd,
                        const float* __restrict W, int64_t ldw, float* __restrict P,
                        int64_t ldp, int64_t D) {
  float acc[TR][TJ];
  const int R = Full ? TR : rn, J = Full ? TJ : jn;
  for (int r = 0; r < TR; ++r)
#pragma omp simd
    for (int j = 0; j < TJ; ++j) acc[r][j] = 0.0f;
  for (int64_t d = 0; d < D; ++d) {
    const float* w = W + d * ldw;
    for (int r = 0; r < R; ++r) {
      const float a = A[r * sr + d * sd];
#pragma omp simd
      for (int j = 0; j < J; ++j) acc[r][j] += a * w[j];
    }
  }
  for (int r = 0; r < R; ++r) {
    float* p = P + r * ldp;
#pragma omp simd
    for (int j = 0; j < J; ++j) p[j] = acc[r][j];
  }
}

// P (M x N, row stride ldp) = A (M x D: element (m, d) at A[m*sr + d*sd]) W (D x N, ldw)
static void gemm(int64_t M, int64_t N, int64_t D, const float* A, int64_t sr, int64_t sd,
                 const float* W, int64_t ldw, float* P, int64_t ldp) {
  for (int64_t j = 0; j < N; j += TJ) {
    const int jn = static_cast<int>(std::min<int64_t>(TJ, N - j));
    for (int64_t m = 0; m < M; m += TR) {
      const int rn = static_cast<int>(std::min<int64_t>(TR, M - m));
      const float* a = A + m * sr;
      float* p = P + m * ldp + j;
      if (rn == TR && jn == TJ)
        tile<true>(rn, jn, a, sr, sd, W + j, ldw, p, ldp, D);
      else
        tile<false>(rn, jn, a, sr, sd, W + j, ldw, p, ldp, D);
    }
  }
}

// A candidate's kernel, transposed: WT (D x 4H) = [W_hh | W_ih | b_ih + b_hh]^T, torch's
// gate order (i, f, g, o). b_ih and b_hh are empty when the layer has no bias.
static void kernel_t(int64_t k, const at::Tensor& w_ih, const at::Tensor& w_hh,
                     const at::Tensor& b_ih, const at::Tensor& b_hh, float* wt) {
  const int64_t H4 = w_hh.size(1), H = w_hh.size(2), In = w_ih.size(2), D = H + In + 1;
  const float* wh = w_hh.data_ptr<float>() + k * H4 * H;
  const float* wi = w_ih.data_ptr<float>() + k * H4 * In;
  for (int64_t j = 0; j < H4; ++j) {
    for (int64_t d = 0; d < H; ++d) wt[d * H4 + j] = wh[j * H + d];
    for (int64_t d = 0; d < In; ++d) wt[(H + d) * H4 + j] = wi[j * In + d];
  }
  float* bias = wt + (D - 1) * H4;
  if (b_ih.numel() > 0) {
    const float* bi = b_ih.data_ptr<float>() + k * H4;
    const float* bh = b_hh.data_ptr<float>() + k * H4;
    for (int64_t j = 0; j < H4; ++j) bias[j] = bi[j] + bh[j];
  } else {
    for (int64_t j = 0; j < H4; ++j) bias[j] = 0.0f;
  }
}

// One layer of K candidates, one candidate at a time (its kernel, inputs and saved tensors
// stay in L2). x (K, B, T, In) any strides, h0 and c0 (K, B, H), w_ih (K, 4H, In), w_hh
// (K, 4H, H), b_ih and b_hh (K, 4H) or empty, all contiguous. Fills HXT (K, T+1, B, D), row
// (k, t, b) = [h_{t-1} | x_t | 1] (D = H + In + 1), C (K, T+1, B, H) with the cell states,
// out (K, B, T, H) with h_t, and, when G is not empty, G (K, T, B, 4H) with the activated
// gates (what the backward needs, with HXT and C). Per step, each block of TR rows gets its
// gates' product into an L1-sized buffer, then the cell on them.
void lstm_forward(at::Tensor x, at::Tensor h0, at::Tensor c0, at::Tensor w_ih, at::Tensor w_hh,
                  at::Tensor b_ih, at::Tensor b_hh, at::Tensor HXT, at::Tensor G, at::Tensor C,
                  at::Tensor out) {
  const int64_t K = HXT.size(0), T = HXT.size(1) - 1, B = HXT.size(2), D = HXT.size(3);
  const int64_t H = C.size(3), H4 = 4 * H, In = D - H - 1;
  const bool keep = G.numel() > 0;
  const int64_t sk = x.stride(0), sb = x.stride(1), st = x.stride(2), si = x.stride(3);
  const float* x_ = x.data_ptr<float>();
  const float* h0_ = h0.data_ptr<float>();
  const float* c0_ = c0.data_ptr<float>();
  float* g_ = keep ? G.data_ptr<float>() : nullptr;
  float* c_ = C.data_ptr<float>();
  float* hx_ = HXT.data_ptr<float>();
  float* out_ = out.data_ptr<float>();
  std::vector<float> pre(TR * H4), wt(D * H4);
  for (int64_t k = 0; k < K; ++k) {
    kernel_t(k, w_ih, w_hh, b_ih, b_hh, wt.data());
    float* hxk = hx_ + k * (T + 1) * B * D;
    for (int64_t t = 0; t <= T; ++t)
      for (int64_t b = 0; b < B; ++b) {
        float* row = hxk + (t * B + b) * D;
        const float* xr = x_ + k * sk + b * sb + t * st;
        for (int64_t d = 0; d < In; ++d) row[H + d] = t < T ? xr[d * si] : 0.0f;
        row[D - 1] = 1.0f;
      }
    for (int64_t b = 0; b < B; ++b)
      std::copy(h0_ + (k * B + b) * H, h0_ + (k * B + b + 1) * H, hxk + b * D);
    std::copy(c0_ + k * B * H, c0_ + (k + 1) * B * H, c_ + k * (T + 1) * B * H);
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t b0 = 0; b0 < B; b0 += TR) {
        const int64_t rn = std::min<int64_t>(TR, B - b0);
        const float* a = hxk + (t * B + b0) * D;
        gemm(rn, H4, D, a, D, 1, wt.data(), H4, pre.data(), H4);
        for (int64_t b = b0; b < b0 + rn; ++b) {
          const int64_t ktb = (k * T + t) * B + b;
          const float* zi = pre.data() + (b - b0) * H4;
          const float* zf = zi + H;
          const float* zg = zi + 2 * H;
          const float* zo = zi + 3 * H;
          const float* cp = c_ + ((k * (T + 1) + t) * B + b) * H;
          float* cn = c_ + ((k * (T + 1) + t + 1) * B + b) * H;
          float* h = hxk + ((t + 1) * B + b) * D;
          float* gi = keep ? g_ + ktb * H4 : nullptr;  // (i, f, g, o), kept for the backward
#if defined(__AVX512F__)
          if (H % 16 == 0) {
            for (int64_t r = 0; r < H; r += 16) {
              const __m512 o = sigm16(_mm512_loadu_ps(zo + r));
              const __m512 i = sigm16(_mm512_loadu_ps(zi + r));
              const __m512 f = sigm16(_mm512_loadu_ps(zf + r));
              const __m512 g = tanh16(_mm512_loadu_ps(zg + r));
              const __m512 c = _mm512_fmadd_ps(f, _mm512_loadu_ps(cp + r), _mm512_mul_ps(i, g));
              if (keep) {
                _mm512_storeu_ps(gi + r, i);
                _mm512_storeu_ps(gi + H + r, f);
                _mm512_storeu_ps(gi + 2 * H + r, g);
                _mm512_storeu_ps(gi + 3 * H + r, o);
              }
              _mm512_storeu_ps(cn + r, c);
              _mm512_storeu_ps(h + r, _mm512_mul_ps(o, tanh16(c)));
            }
            continue;
          }
#endif
#pragma omp simd
          for (int64_t r = 0; r < H; ++r) {
            float o = sigm(zo[r]), i = sigm(zi[r]), f = sigm(zf[r]), g = tanh_(zg[r]);
            float c = f * cp[r] + i * g;
            if (keep) {
              gi[r] = i; gi[H + r] = f; gi[2 * H + r] = g; gi[3 * H + r] = o;
            }
            cn[r] = c; h[r] = o * tanh_(c);
          }
        }
      }
    }
    // the outputs in their own order ("batch, time"), copied from the states in HXT: the
    // cell's rows go "time, batch", and writing them there too, 2.5 KB apart, cost more
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t)
        std::copy_n(hxk + ((t + 1) * B + b) * D, H, out_ + ((k * B + b) * T + t) * H);
  }
}

// The backward of lstm_forward, one candidate at a time. dout (K, B, T, H) or empty, dcT
// (K, B, H) or empty; w_hh as in the forward; HXT, G, C as it filled them. Fills dPT with the
// gates' pre-activation gradients: (K, T, B, 4H), or (1, T, B, 4H) reused by every
// candidate (in L2) when no input gradient needs them. Per step, each block of TR rows gets
// the cell's backward (tanh(c_t) recomputed, not stored), then those rows' recurrent
// gradient dh = dP W_hh while their dP is in L1. After its time loop, the candidate's weight
// gradient sum over (t, b) of HXT[k, t, b]^T dPT[k, t, b] (rows t < T) is one tiled product
// (the bias's row a column sum), added to the gradients gw_ih, gw_hh (and gb_ih, gb_hh; any
// strides). Returns {dh0, dc0} (K, B, H).
std::vector<at::Tensor> lstm_backward(at::Tensor dout, at::Tensor dcT, at::Tensor w_hh,
                                      at::Tensor HXT, at::Tensor G, at::Tensor C,
                                      at::Tensor dPT, at::Tensor gw_ih, at::Tensor gw_hh,
                                      at::Tensor gb_ih, at::Tensor gb_hh) {
  const int64_t K = G.size(0), T = G.size(1), B = G.size(2), H = G.size(3) / 4, H4 = 4 * H;
  const int64_t D = HXT.size(3), In = D - H - 1, rows = T * B;
  auto opts = G.options();
  auto dc = dcT.numel() > 0 ? dcT.contiguous().clone() : at::zeros({K, B, H}, opts);
  auto dh0 = at::empty({K, B, H}, opts);
  const bool has_out = dout.numel() > 0, has_bias = gb_ih.numel() > 0;
  std::vector<float> buf_a(B * H), buf_b(B * H), dw(D * H4), dout_k(has_out ? T * B * H : 0);
  const float* g_ = G.data_ptr<float>();
  const float* c_ = C.data_ptr<float>();
  const float* w_ = w_hh.data_ptr<float>();
  const float* hx_ = HXT.data_ptr<float>();
  const float* do_ = has_out ? dout.data_ptr<float>() : nullptr;
  float* dp_ = dPT.data_ptr<float>();
  float* dc_ = dc.data_ptr<float>();
  float* dh0_ = dh0.data_ptr<float>();
  auto gi_ = gw_ih.accessor<float, 3>();
  auto gh_ = gw_hh.accessor<float, 3>();
  const bool shared_dp = dPT.size(0) == 1;
  for (int64_t k = 0; k < K; ++k) {
    float* dpk = dp_ + (shared_dp ? 0 : k * rows * H4);
    float* dh = buf_a.data();
    float* dn = buf_b.data();
    std::fill(dh, dh + B * H, 0.0f);
    // the candidate's output gradient, reordered "time, batch" in one sequential read:
    // read in the cell's order, 2.5 KB apart, it missed the caches (a sixth of the time)
    if (has_out)
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < T; ++t)
          std::copy_n(do_ + ((k * B + b) * T + t) * H, H, dout_k.data() + (t * B + b) * H);
    for (int64_t t = T - 1; t >= 0; --t) {
      for (int64_t b0 = 0; b0 < B; b0 += TR) {
        const int64_t rn = std::min<int64_t>(TR, B - b0);
        for (int64_t b = b0; b < b0 + rn; ++b) {
          const int64_t kb = k * B + b, ktb = (k * T + t) * B + b;
          const float* gi = g_ + ktb * H4;
          const float* gf = gi + H;
          const float* gg = gi + 2 * H;
          const float* go = gi + 3 * H;
          const float* cp = c_ + ((k * (T + 1) + t) * B + b) * H;
          const float* cn = cp + B * H;
          const float* dhk = dh + b * H;
          const float* dok = has_out ? dout_k.data() + (t * B + b) * H : nullptr;
          float* pi = dpk + (t * B + b) * H4;
          float* pf = pi + H;
          float* pg = pi + 2 * H;
          float* po = pi + 3 * H;
          float* dck = dc_ + kb * H;
#pragma omp simd
          for (int64_t r = 0; r < H; ++r) {
            float o = go[r], i = gi[r], f = gf[r], g = gg[r], th = tanh_(cn[r]);
            float d = dhk[r] + (has_out ? dok[r] : 0.0f);
            float dct = dck[r] + d * o * (1.0f - th * th);
            po[r] = d * th * o * (1.0f - o);
            pi[r] = dct * g * i * (1.0f - i);
            pf[r] = dct * cp[r] * f * (1.0f - f);
            pg[r] = dct * i * (1.0f - g * g);
            dck[r] = dct * f;
          }
        }
        const float* p = dpk + (t * B + b0) * H4;
        gemm(rn, H, H4, p, H4, 1, w_ + k * H4 * H, H, dn + b0 * H, H);
      }
      std::swap(dh, dn);
    }
    std::copy(dh, dh + B * H, dh0_ + k * B * H);
    // the weight gradient: dw (D x 4H) = [h; x]^T dP, and the bias row the column sum
    gemm(D - 1, H4, rows, hx_ + k * (T + 1) * B * D, 1, D, dpk, H4, dw.data(), H4);
    float* bias = dw.data() + (D - 1) * H4;
    std::fill(bias, bias + H4, 0.0f);
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = dpk + r * H4;
#pragma omp simd
      for (int64_t j = 0; j < H4; ++j) bias[j] += row[j];
    }
    for (int64_t j = 0; j < H4; ++j) {
      for (int64_t d = 0; d < H; ++d) gh_[k][j][d] += dw[d * H4 + j];
      for (int64_t d = 0; d < In; ++d) gi_[k][j][d] += dw[(H + d) * H4 + j];
    }
    if (has_bias) {
      auto bi = gb_ih.accessor<float, 2>();
      auto bh = gb_hh.accessor<float, 2>();
      for (int64_t j = 0; j < H4; ++j) {
        bi[k][j] += bias[j];
        bh[k][j] += bias[j];
      }
    }
  }
  return {dh0, dc};
}

// P[k] = A[k] W[k] for every k with the kernel's register tiles: A (K, M, D) any strides,
// W (K, D, N) with unit stride along N, P (K, M, N) contiguous. For the tests and
// bench/lstm_products.py.
void batched_product(at::Tensor A, at::Tensor W, at::Tensor P) {
  TORCH_CHECK(W.stride(2) == 1 && P.is_contiguous(), "W needs unit column stride, P contiguous");
  const int64_t K = A.size(0), M = A.size(1), D = A.size(2), N = W.size(2);
  const float* a = A.data_ptr<float>();
  const float* w = W.data_ptr<float>();
  float* p = P.data_ptr<float>();
  for (int64_t k = 0; k < K; ++k)
    gemm(M, N, D, a + k * A.stride(0), A.stride(1), A.stride(2), w + k * W.stride(0),
         W.stride(1), p + k * M * N, N);
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("lstm_forward", &lstm_forward);
  m.def("lstm_backward", &lstm_backward);
  m.def("batched_product", &batched_product);
}
"""

_FLAGS = ["-O3", "-march=native", "-ffast-math", "-fopenmp-simd"]

_STATE: dict[str, Any] = {"enabled": os.environ.get("SHRINKAGE_COMPILED_LSTM") == "1"}


def _load(verbose: bool = False) -> Any:
    """Build (once; cached by torch) and import the extension."""
    if "module" not in _STATE:
        from torch.utils.cpp_extension import load_inline

        digest = hashlib.sha256((_SOURCE + " ".join(_FLAGS)).encode()).hexdigest()[:12]
        _STATE["module"] = load_inline(
            name=f"shrinkage_fused_lstm_{digest}",
            cpp_sources=_SOURCE,
            extra_cflags=_FLAGS,
            verbose=verbose,
        )
    return _STATE["module"]


class _Kernel:
    """The compiled forward and backward of one LSTM layer of K candidates."""

    def __init__(self, module: Any) -> None:
        self._m = module

    def forward(
        self,
        x: Tensor,
        h0: Tensor,
        c0: Tensor,
        params: list[Tensor | None],
        hxt: Tensor,
        gates: Tensor | None,
        c: Tensor,
        out: Tensor,
    ) -> None:
        """One layer's time loop: ``x (K, B, T, In)``, ``h0``/``c0`` ``(K, B, H)``,
        ``params = [w_ih, w_hh, b_ih, b_hh]`` (biases None without). Fills ``hxt (K, T+1,
        B, H+In+1)`` (rows ``[h_{t-1} | x_t | 1]``), ``c (K, T+1, B, H)``, ``out (K, B, T,
        H)`` and, unless None (no backward to come), ``gates (K, T, B, 4H)``."""
        self._m.lstm_forward(
            x,
            h0.contiguous(),
            c0.contiguous(),
            *(p.contiguous() for p in _params(params)),
            hxt,
            _or_empty(gates),
            c,
            out,
        )

    def product(self, a: Tensor, w: Tensor, out: Tensor) -> Tensor:
        """``out[k] = a[k] @ w[k]`` with the kernel's register tiles (``w`` with unit column
        stride, ``out`` contiguous): for the tests and ``bench/lstm_products.py``."""
        self._m.batched_product(a, w, out)
        return out

    def backward(
        self,
        dout: Tensor | None,
        dc_last: Tensor | None,
        w_hh: Tensor,
        saved: tuple[Tensor, Tensor, Tensor],
        dpt: Tensor,
        grads: tuple[Tensor | None, ...],
    ) -> tuple[Tensor, Tensor]:
        """The backward of :meth:`forward`, with ``saved = (hxt, gates, c)`` as it filled
        them. Fills ``dpt`` (the gates' pre-activation gradients, ``(K, T, B, 4H)``, or
        ``(1, T, B, 4H)`` reused by every candidate when no input gradient needs them),
        adds ``[h; x; 1]^T dP`` summed over the steps into ``grads = (w_ih, w_hh, b_ih,
        b_hh)`` (the flat gradient's views), and returns ``(dh0, dc0)``."""
        hxt, gates, c = saved
        dh0, dc0 = self._m.lstm_backward(
            _or_empty(None if dout is None else dout.contiguous()),
            _or_empty(dc_last),
            w_hh.contiguous(),
            hxt,
            gates,
            c,
            dpt,
            *_params(list(grads)),
        )
        return dh0, dc0


_EMPTY = torch.empty(0)


def _or_empty(t: Tensor | None) -> Tensor:
    return _EMPTY if t is None else t


def _params(params: list[Tensor | None]) -> list[Tensor]:
    """``[w_ih, w_hh, b_ih, b_hh]`` for the kernel: biases empty when absent."""
    w_ih, w_hh, b_ih, b_hh = params
    assert w_ih is not None and w_hh is not None
    if b_ih is None or b_hh is None:
        return [w_ih, w_hh, _EMPTY, _EMPTY]
    return [w_ih, w_hh, b_ih, b_hh]


def kernel(x: Tensor) -> _Kernel | None:
    """The compiled kernel, when it is on and ``x`` is a float32 CPU tensor; else None."""
    if not _STATE["enabled"] or x.device.type != "cpu" or x.dtype != torch.float32:
        return None
    if "kernel" not in _STATE:
        try:
            _STATE["kernel"] = _Kernel(_load())
        except Exception:  # noqa: BLE001 - no compiler, no ninja: the eager path runs
            _STATE["enabled"] = False
            return None
    return _STATE["kernel"]


def enable_compiled_lstm(enabled: bool = True, verbose: bool = False) -> bool:
    """Turn the compiled LSTM kernel of the fused stacks on (building it once) or off.

    Args:
        enabled: on or off.
        verbose: show the compiler's output while building.

    Returns:
        Whether the compiled kernel is now on.

    Raises:
        ShrinkageError: it cannot be built (no C++ compiler or ``ninja``), with the error.
    """
    if enabled:
        try:
            _STATE["kernel"] = _Kernel(_load(verbose))
        except Exception as err:  # noqa: BLE001
            _STATE["enabled"] = False
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            raise ShrinkageError(
                "The compiled LSTM kernel needs a C++ compiler and ninja (pip install ninja); "
                f"building it failed: {type(err).__name__}: {first[:160]}"
            ) from None
    _STATE["enabled"] = bool(enabled)
    return bool(enabled)


def is_compiled_lstm() -> bool:
    """Whether fused LSTMs use the compiled kernel (on, and built)."""
    return bool(_STATE["enabled"]) and "kernel" in _STATE


@contextlib.contextmanager
def compiled_lstm(enabled: bool) -> Iterator[None]:
    """Within the block, the compiled kernel is on (built if needed) or off."""
    before = bool(_STATE["enabled"])
    enable_compiled_lstm(enabled)
    try:
        yield
    finally:
        _STATE["enabled"] = before
