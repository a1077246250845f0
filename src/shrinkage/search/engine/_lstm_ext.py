"""An optional compiled kernel for the fused LSTM: the time loop in C++, one pass per step.

The eager fused LSTM (:mod:`~shrinkage.search.engine._fused_rnn`) spends about as much time
in its elementwise ops (seven per step forward, six backward, each a pass through memory
and a dispatch) as in its matrix products. Here the loop over time is C++ and so are the
products: per step and candidate, each block of 8 rows gets its gates' product from a
register tile (8 x 32 accumulators), then the cell's elementwise work on them while they are
in L1; backward, the cell's gradient and then the same rows' recurrent gradient. The weight
gradient of all steps is one tiled product after the loop. On these shapes (a few dozen
rows times one candidate's 41 x 128 kernel) the tile runs at 87-107% of this CPU's sgemm
rate where MKL's batched GEMM runs at 72-78% (``bench/lstm_products.py``). The layout is
"candidate, time, batch, feature"; the results agree with the eager path to float rounding.

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

// The products. A register tile: P[r][j] (+)= sum_d A[r*sr + d*sd] * W[d*ldw + j] for
// r < R, j < J (runtime bounds rn <= R, jn <= J at the edges). MKL's batched GEMM runs these
// shapes (a few dozen rows, one candidate's kernel) at 72-78% of its large-matrix rate; a
// tile whose accumulators stay in registers runs them at 87-107% (bench/lstm_products.py).
constexpr int TR = 8, TJ = 32;

template <bool Full>
static inline void tile(int rn, int jn, const float* __restrict A, int64_t sr, int64_t sd,
                        const float* __restrict W, int64_t ldw, float* __restrict P,
                        int64_t ldp, int64_t D, bool accumulate) {
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
    if (accumulate) {
#pragma omp simd
      for (int j = 0; j < J; ++j) p[j] += acc[r][j];
    } else {
#pragma omp simd
      for (int j = 0; j < J; ++j) p[j] = acc[r][j];
    }
  }
}

// P (M x N, row stride ldp) (+)= A (M x D: element (m, d) at A[m*sr + d*sd]) W (D x N, ldw)
static void gemm(int64_t M, int64_t N, int64_t D, const float* A, int64_t sr, int64_t sd,
                 const float* W, int64_t ldw, float* P, int64_t ldp, bool accumulate) {
  for (int64_t j = 0; j < N; j += TJ) {
    const int jn = static_cast<int>(std::min<int64_t>(TJ, N - j));
    for (int64_t m = 0; m < M; m += TR) {
      const int rn = static_cast<int>(std::min<int64_t>(TR, M - m));
      const float* a = A + m * sr;
      float* p = P + m * ldp + j;
      if (rn == TR && jn == TJ)
        tile<true>(rn, jn, a, sr, sd, W + j, ldw, p, ldp, D, accumulate);
      else
        tile<false>(rn, jn, a, sr, sd, W + j, ldw, p, ldp, D, accumulate);
    }
  }
}

// Layout "candidate, time, batch, feature". HXT (K, T+1, B, D): row (k, t, b) is
// [h_{t-1} | x_t | 1] (x, ones and h0 filled by the caller); WT (K, D, 4H): the kernel,
// transposed, gates in torch's order (i, f, g, o). Fills G (K, T, B, 4H) with the activated
// gates, C (K, T+1, B, H) with the cell states (C[:, 0] given), TC (K, T, B, H) =
// tanh(C[:, 1:]), h_t into HXT[:, t+1, :, :H] and out (K, B, T, H). Per step and candidate,
// each block of TR rows: its gates' product into an L1-sized buffer, then the cell on them.
void lstm_forward(at::Tensor HXT, at::Tensor WT, at::Tensor G, at::Tensor C, at::Tensor TC,
                  at::Tensor out) {
  const int64_t K = HXT.size(0), T = HXT.size(1) - 1, B = HXT.size(2), D = HXT.size(3);
  const int64_t H = C.size(3), H4 = 4 * H;
  const float* w_ = WT.data_ptr<float>();
  float* g_ = G.data_ptr<float>();
  float* c_ = C.data_ptr<float>();
  float* tc_ = TC.data_ptr<float>();
  float* hx_ = HXT.data_ptr<float>();
  float* out_ = out.data_ptr<float>();
  std::vector<float> pre(TR * H4);
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t k = 0; k < K; ++k) {
      for (int64_t b0 = 0; b0 < B; b0 += TR) {
        const int64_t rn = std::min<int64_t>(TR, B - b0);
        const float* a = hx_ + ((k * (T + 1) + t) * B + b0) * D;
        gemm(rn, H4, D, a, D, 1, w_ + k * D * H4, H4, pre.data(), H4, false);
        for (int64_t b = b0; b < b0 + rn; ++b) {
          const int64_t kb = k * B + b, ktb = (k * T + t) * B + b;
          const float* zi = pre.data() + (b - b0) * H4;
          const float* zf = zi + H;
          const float* zg = zi + 2 * H;
          const float* zo = zi + 3 * H;
          float* gi = g_ + ktb * H4;
          float* gf = gi + H;
          float* gg = gi + 2 * H;
          float* go = gi + 3 * H;
          const float* cp = c_ + ((k * (T + 1) + t) * B + b) * H;
          float* cn = c_ + ((k * (T + 1) + t + 1) * B + b) * H;
          float* tc = tc_ + ktb * H;
          float* h = hx_ + ((k * (T + 1) + t + 1) * B + b) * D;
          float* o_ = out_ + (kb * T + t) * H;
#pragma omp simd
          for (int64_t r = 0; r < H; ++r) {
            float o = sigm(zo[r]), i = sigm(zi[r]), f = sigm(zf[r]), g = tanh_(zg[r]);
            float c = f * cp[r] + i * g;
            float th = tanh_(c);
            go[r] = o; gi[r] = i; gf[r] = f; gg[r] = g;
            cn[r] = c; tc[r] = th; h[r] = o * th; o_[r] = o * th;
          }
        }
      }
    }
  }
}

// dout (K, B, T, H) or empty, dcT (K, B, H) or empty; Whh (K, 4H, H) contiguous. Fills
// dPT (K, T, B, 4H) with the gates' pre-activation gradients; returns {dh0, dc0} (K, B, H).
// Per step and candidate, each block of TR rows: the cell's backward, then those rows'
// recurrent gradient dh = dP Whh while their dP is in L1.
std::vector<at::Tensor> lstm_backward(at::Tensor dout, at::Tensor dcT, at::Tensor Whh,
                                      at::Tensor G, at::Tensor C, at::Tensor TC,
                                      at::Tensor dPT) {
  const int64_t K = G.size(0), T = G.size(1), B = G.size(2), H = G.size(3) / 4, H4 = 4 * H;
  auto opts = G.options();
  auto dc = dcT.numel() > 0 ? dcT.contiguous().clone() : at::zeros({K, B, H}, opts);
  auto dh = at::zeros({K, B, H}, opts);
  auto dh_next = at::empty({K, B, H}, opts);
  const bool has_out = dout.numel() > 0;
  const float* g_ = G.data_ptr<float>();
  const float* c_ = C.data_ptr<float>();
  const float* tc_ = TC.data_ptr<float>();
  const float* w_ = Whh.data_ptr<float>();
  const float* do_ = has_out ? dout.data_ptr<float>() : nullptr;
  float* dp_ = dPT.data_ptr<float>();
  float* dc_ = dc.data_ptr<float>();
  for (int64_t t = T - 1; t >= 0; --t) {
    const float* dh_ = dh.data_ptr<float>();
    float* dn_ = dh_next.data_ptr<float>();
    for (int64_t k = 0; k < K; ++k) {
      for (int64_t b0 = 0; b0 < B; b0 += TR) {
        const int64_t rn = std::min<int64_t>(TR, B - b0);
        for (int64_t b = b0; b < b0 + rn; ++b) {
          const int64_t kb = k * B + b, ktb = (k * T + t) * B + b;
          const float* gi = g_ + ktb * H4;
          const float* gf = gi + H;
          const float* gg = gi + 2 * H;
          const float* go = gi + 3 * H;
          const float* cp = c_ + ((k * (T + 1) + t) * B + b) * H;
          const float* tc = tc_ + ktb * H;
          const float* dhk = dh_ + kb * H;
          const float* dok = has_out ? do_ + (kb * T + t) * H : nullptr;
          float* pi = dp_ + ktb * H4;
          float* pf = pi + H;
          float* pg = pi + 2 * H;
          float* po = pi + 3 * H;
          float* dck = dc_ + kb * H;
#pragma omp simd
          for (int64_t r = 0; r < H; ++r) {
            float o = go[r], i = gi[r], f = gf[r], g = gg[r], th = tc[r];
            float d = dhk[r] + (has_out ? dok[r] : 0.0f);
            float dct = dck[r] + d * o * (1.0f - th * th);
            po[r] = d * th * o * (1.0f - o);
            pi[r] = dct * g * i * (1.0f - i);
            pf[r] = dct * cp[r] * f * (1.0f - f);
            pg[r] = dct * i * (1.0f - g * g);
            dck[r] = dct * f;
          }
        }
        const float* p = dp_ + ((k * T + t) * B + b0) * H4;
        gemm(rn, H, H4, p, H4, 1, w_ + k * H4 * H, H, dn_ + (k * B + b0) * H, H, false);
      }
    }
    std::swap(dh, dh_next);
  }
  return {dh, dc};
}

// The weight gradient of every step at once: fills dWT (K, D, 4H) with the sum over (t, b)
// of HXT[k, t, b]^T dPT[k, t, b] (rows t < T of HXT). HXT's last column is the bias's 1: its
// row of dWT is the column sum of dPT (a 1-row edge tile would cost a fifth of the product).
void lstm_weight_grad(at::Tensor HXT, at::Tensor dPT, at::Tensor dwt) {
  const int64_t K = HXT.size(0), T = dPT.size(1), B = HXT.size(2), D = HXT.size(3);
  const int64_t H4 = dPT.size(3), rows = T * B;
  const float* hx_ = HXT.data_ptr<float>();
  const float* dp_ = dPT.data_ptr<float>();
  float* o_ = dwt.data_ptr<float>();
  for (int64_t k = 0; k < K; ++k) {
    const float* dp = dp_ + k * rows * H4;
    float* o = o_ + k * D * H4;
    gemm(D - 1, H4, rows, hx_ + k * (T + 1) * B * D, 1, D, dp, H4, o, H4, false);
    float* bias = o + (D - 1) * H4;
    for (int64_t j = 0; j < H4; ++j) bias[j] = 0.0f;
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = dp + r * H4;
#pragma omp simd
      for (int64_t j = 0; j < H4; ++j) bias[j] += row[j];
    }
  }
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
         W.stride(1), p + k * M * N, N, false);
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("lstm_forward", &lstm_forward);
  m.def("lstm_backward", &lstm_backward);
  m.def("lstm_weight_grad", &lstm_weight_grad);
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
        hxt: Tensor,
        wt: Tensor,
        gates: Tensor,
        c: Tensor,
        tc: Tensor,
        out: Tensor,
    ) -> None:
        """Fill ``gates``, ``c`` (``c[:, 0]`` given), ``tc``, ``hxt``'s states and ``out``."""
        self._m.lstm_forward(hxt, wt, gates, c, tc, out)

    def weight_grad(self, hxt: Tensor, dpt: Tensor, dwt: Tensor) -> Tensor:
        """Fill and return ``dwt (K, D, 4H) = sum over t < T and b of HXT[k, t, b]^T
        dPT[k, t, b]``."""
        self._m.lstm_weight_grad(hxt, dpt, dwt)
        return dwt

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
        gates: Tensor,
        c: Tensor,
        tc: Tensor,
        dpt: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """Fill ``dpt``; return ``(dh0, dc0)``."""
        empty = torch.empty(0)
        dh0, dc0 = self._m.lstm_backward(
            empty if dout is None else dout.contiguous(),
            empty if dc_last is None else dc_last,
            w_hh,
            gates,
            c,
            tc,
            dpt,
        )
        return dh0, dc0


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
