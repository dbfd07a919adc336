"""Fused CPU loops for the LIF scan and the BNTT statistics: one pass over memory instead of ~15.

Why: on a CPU the convolutions of a BNTT network in bf16 are fast (oneDNN, AVX-512 BF16), and what is
left is elementwise work — per step of the LIF scan PyTorch runs charge, compare, copy, five surrogate
ops and the reset as separate passes over the layer, and BNTT copies its input into a side-by-side
layout and back. Measured on the 2-core dev machine, VGG9 at T=10, B=16 in bf16: 0.43 s per training
step against 0.27 s for the convolutions alone (benchmarks/README.md). These loops read each
element once per pass and keep the membrane of a tile of neurons in L1 across all T steps.

Arithmetic: the LIF loops do exactly the operations of the eager scan in `bntt_core.nn.neurons`, in the
same order, in fp32, compiled without contraction into fused multiply-adds (-ffp-contract=off), so
the fp32 spikes equal the eager ones bit for bit. bf16 tensors are read and written as bf16 (round to
nearest even) with all arithmetic in fp32; statistics are accumulated in fp64.

Built on first use with the system C compiler (`cc -O3 -march=native`, about a second; $BNTT_KERNEL_CFLAGS
replaces -march=native, e.g. "-march=x86-64-v3" for AVX2 code on any x86 CPU) into
~/.cache/bntt_core (or $BNTT_KERNEL_CACHE) keyed by a hash of the source and the machine; if there is
no compiler or the build fails, `available()` is False and the engine uses its eager PyTorch code,
which computes the same thing. BNTT_NO_KERNELS=1 forces the eager code (for comparisons).

Layouts: a time-major tensor [T, B, C, *S] whose every step t is one dense block, either
  "planes"   (contiguous NCHW or [T, B, C]): element i of a step has channel (i // inner) % C, or
  "rows"     (channels_last images, or inner == 1): element i of a step has channel i % C.
"""

from __future__ import annotations

import ctypes
import hashlib
import math
import os
import platform
import subprocess
import tempfile
import threading
from pathlib import Path

import torch

from bntt_core.nn import surrogate as surrogate_module

_KERNEL_TEMPLATE = r"""
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#define INLINE static inline __attribute__((always_inline))
typedef uint16_t bf16;
INLINE float bf2f(bf16 h) { uint32_t u = (uint32_t)h << 16; float f; memcpy(&f, &u, 4); return f; }
INLINE bf16 f2bf(float f) {
    uint32_t u; memcpy(&u, &f, 4);
    uint32_t nan = (u & 0x7fffffffu) > 0x7f800000u;
    uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;      /* round to nearest even */
    return (bf16)(nan ? ((u >> 16) | 0x40u) : rounded);             /* keep NaN a (quiet) NaN */
}
INLINE float ld_f32(const float* p, int64_t i) { return p[i]; }
INLINE float ld_bf16(const bf16* p, int64_t i) { return bf2f(p[i]); }
INLINE void st_f32(float* p, int64_t i, float v) { p[i] = v; }
INLINE void st_bf16(bf16* p, int64_t i, float v) { p[i] = f2bf(v); }

/* surrogate slopes, the same operations in the same order as bntt_core/nn/surrogate.py.
   triangle: p = α, α·max(0, 1 − |u/θ − 1|)/θ (the chain rule through u/θ); fast_sigmoid: p = k;
   atan: p = (π/2)·α, p2 = α/2 */
INLINE float slope_of(const int kind, float u, float th, float p, float p2) {
    if (kind == 0) { float a = u / th; a = a - 1.0f; a = fabsf(a); a = 1.0f - a; a = a > 0.0f ? a : 0.0f; a = p * a; return a / th; }
    if (kind == 1) { float a = u - th; a = fabsf(a); a = p * a; a = 1.0f + a; a = a * a; return 1.0f / a; }
    { float a = u - th; a = p * a; a = a * a; a = 1.0f + a; return p2 / a; }
}

#define TILE 4096  /* neurons whose membrane stays in L1/L2 across all T steps */
#define LANES 16
/* LANES floats as one GCC/Clang vector: the recording sums are written with it, since the compilers do
   not vectorise a float reduction without -ffast-math (and that would reorder the LIF arithmetic). */
typedef float lanes_f32 __attribute__((vector_size(LANES * 4)));
typedef uint32_t lanes_u32 __attribute__((vector_size(LANES * 4)));
typedef uint16_t lanes_u16 __attribute__((vector_size(LANES * 2)));
INLINE lanes_f32 ldv_f32(const float* p) { lanes_f32 v; memcpy(&v, p, sizeof v); return v; }
INLINE lanes_f32 ldv_bf16(const bf16* p) {
    lanes_u16 h; memcpy(&h, p, sizeof h);
    lanes_u32 w = __builtin_convertvector(h, lanes_u32) << 16;
    lanes_f32 v; memcpy(&v, &w, sizeof v); return v;
}

/* One step of one segment of L neurons. rows: channel = q (scale/shift vectors); else one channel
   for the whole segment (scalars as, bs). Constant flags make the compiler emit one vector loop each. */
#define DEFINE_FORWARD_SEGMENT(SUFFIX, XT)                                                               \
INLINE void fwd_seg_##SUFFIX(const int kind, const int rows, const int has_m, const int hard,            \
        int64_t L, const XT* restrict x, XT* restrict s, XT* restrict g, XT* restrict m,                 \
        float* restrict u, const float* restrict av, const float* restrict bv, float as, float bs,     \
        float leak, float th, float p, float p2) {                                                     \
    for (int64_t q = 0; q < L; ++q) {                                                                  \
        float y = ld_##SUFFIX(x, q);                                                                   \
        y = y * (rows ? av[q] : as); y = y + (rows ? bv[q] : bs);                                      \
        float v = u[q] * leak; v = v + y;                                  /* charge */               \
        int fire = v > th;                                                 /* fire   */               \
        st_##SUFFIX(s, q, (float)fire);   /* not fire ? 1 : 0, which GCC leaves scalar for AVX2 */    \
        st_##SUFFIX(g, q, slope_of(kind, v, th, p, p2));                   /* σ'(U) for the backward */ \
        if (has_m) st_##SUFFIX(m, q, v);                                                               \
        float r = (float)fire * th;                                        /* exactly th or +0 */      \
        u[q] = hard ? (fire ? 0.0f : v) : v - r;                           /* reset  */               \
    }                                                                                                  \
}                                                                                                      \
/* Recording, on the segment just computed (in L1): Σx and Σx² into float lanes that the caller flushes \
   to fp64 once per tile and step, and the spikes into fp64 counts per position (rows: the segment is \
   one position, counted from the bits — a spike is exactly 1.0, whose exponent's lowest bit is set, \
   bit 7 of a bf16 and bit 23 of a float; else position = element). Every count is exact. */         \
INLINE void stat_seg_##SUFFIX(const int rows, int64_t L, const XT* restrict x, const XT* restrict s,    \
        lanes_f32* restrict lx, lanes_f32* restrict lxx, double* restrict counts) {                    \
    int64_t q = 0;                                                                                     \
    lanes_f32 ax = *lx, axx = *lxx;                                                                    \
    for (; q + LANES <= L; q += LANES) { lanes_f32 v = ldv_##SUFFIX(x + q); ax += v; axx += v * v; }   \
    for (; q < L; ++q) { float v = ld_##SUFFIX(x, q); ax[0] += v; axx[0] += v * v; }                   \
    *lx = ax; *lxx = axx;                                                                              \
    if (!rows) {                                                                                       \
        for (q = 0; q < L; ++q) counts[q] += (double)ld_##SUFFIX(s, q);                                \
    } else {                                                                                           \
        const int64_t per = 8 / (int64_t)sizeof(XT);                                                   \
        const uint64_t mask = sizeof(XT) == 2 ? 0x0080008000800080ULL : 0x0080000000800000ULL;         \
        int64_t n = 0, r = 0;                                                                          \
        for (; r + per <= L; r += per) { uint64_t w; memcpy(&w, s + r, 8); n += __builtin_popcountll(w & mask); } \
        for (; r < L; ++r) n += ld_##SUFFIX(s, r) != 0.0f;                                             \
        counts[0] += (double)n;                                                                        \
    }                                                                                                  \
}                                                                                                      \
INLINE void fwd_range_##SUFFIX(const int kind, const int rows, const int has_m, const int hard,          \
        const int has_st, const XT* x, XT* spikes, XT* slope, XT* membrane, int64_t T, int64_t N,        \
        int64_t L, int64_t seg0, int64_t seg1, int64_t C, const float* scale, const float* shift,        \
        float leak, float th, float p, float p2, float* u, int64_t P, double* stats) {                 \
    int64_t per_tile = TILE / L > 0 ? TILE / L : 1;                                                    \
    for (int64_t s0 = seg0; s0 < seg1; s0 += per_tile) {                                               \
        int64_t s1 = s0 + per_tile < seg1 ? s0 + per_tile : seg1;                                      \
        memset(u, 0, sizeof(float) * (s1 - s0) * L);                                                   \
        for (int64_t t = 0; t < T; ++t) {                                                              \
            lanes_f32 lx = {0}, lxx = {0};                                                             \
            for (int64_t sg = s0; sg < s1; ++sg) {                                                     \
                int64_t o = t * N + sg * L, c = rows ? 0 : sg % C;                                     \
                float as = scale ? scale[t * C + c] : 1.0f, bs = scale ? shift[t * C + c] : 0.0f;      \
                fwd_seg_##SUFFIX(kind, rows, has_m, hard, L, x + o, spikes + o, slope + o,             \
                                 has_m ? membrane + o : 0, u + (sg - s0) * L,                          \
                                 rows ? scale + t * C : 0, rows ? shift + t * C : 0, as, bs,           \
                                 leak, th, p, p2);                                                     \
                if (has_st) stat_seg_##SUFFIX(rows, L, x + o, spikes + o, &lx, &lxx,                   \
                                              stats + 2 * T + t * P + (rows ? sg % P : 0));            \
            }                                                                                          \
            if (has_st) {                                                                              \
                double a = 0.0, b = 0.0;                                                               \
                for (int k = 0; k < LANES; ++k) { a += lx[k]; b += lxx[k]; }                           \
                stats[2 * t] += a; stats[2 * t + 1] += b;                                              \
            }                                                                                          \
        }                                                                                              \
    }                                                                                                  \
}                                                                                                      \
static void lif_forward_##SUFFIX##_range(const XT* x, XT* spikes, XT* slope, XT* membrane, int64_t T,   \
        int64_t N,                                                                                     \
        int64_t L, int64_t seg0, int64_t seg1, int rows, int64_t C, const float* scale,                 \
        const float* shift, float leak, float th, int hard, int kind, float p, float p2, int64_t P,     \
        double* stats) {                                                                               \
    float* u = (float*)malloc(sizeof(float) * (TILE > L ? TILE : L));                                  \
    int has_m = membrane != 0, has_st = stats != 0;     /* stats come with a scale (lif_forward checks) */ \
    rows = rows && scale;                                                                              \
    switch (has_st * 32 + kind * 8 + rows * 4 + has_m * 2 + hard) {                                   \
FORWARD_CASES_##SUFFIX                                                                                 \
    }                                                                                                  \
    free(u);                                                                                           \
}

/* Reverse scan  g_U[t] = g_s[t]·σ'(U_t) + λ·(1 − s_t if hard else 1)·g_U[t+1];  g_I[t] = g_U[t].
   With sums: fp64 per (t, c) sums[0][t][c] += g_U, sums[1][t][c] += g_U·x (the BNTT backward). */
#define DEFINE_BACKWARD(NAME, XT, XS, GT, GS, OT, OS)                                                   \
INLINE void bwd_range_##NAME(const int rows, const int hard, const int has_sums,                         \
        const GT* grad_spikes, const XT* slope, const XT* spikes, OT* grad_out, int64_t T,               \
        int64_t N, int64_t L, int64_t seg0, int64_t seg1, int64_t C, float leak, const XT* x,          \
        double* sums, float* carry) {                                                                  \
    int64_t per_tile = TILE / L > 0 ? TILE / L : 1;                                                    \
    for (int64_t s0 = seg0; s0 < seg1; s0 += per_tile) {                                               \
        int64_t s1 = s0 + per_tile < seg1 ? s0 + per_tile : seg1;                                      \
        memset(carry, 0, sizeof(float) * (s1 - s0) * L);                                               \
        for (int64_t t = T - 1; t >= 0; --t) {                                                         \
            for (int64_t sg = s0; sg < s1; ++sg) {                                                     \
                int64_t o = t * N + sg * L;                                                            \
                const GT* restrict gs = grad_spikes + o; const XT* restrict sl = slope + o;            \
                const XT* restrict sp = hard ? spikes + o : 0; OT* restrict out = grad_out + o;        \
                const XT* restrict xs = has_sums ? x + o : 0;                                          \
                float* restrict cr = carry + (sg - s0) * L;                                            \
                float lane_g[LANES] = {0}, lane_gx[LANES] = {0};                                       \
                double* restrict sum_g = has_sums ? sums + t * C : 0;                                  \
                double* restrict sum_gx = has_sums ? sums + T * C + t * C : 0;                         \
                for (int64_t q = 0; q < L; ++q) {                                                      \
                    float c = cr[q];                                                                   \
                    if (hard) c = ld_##XS(sp, q) != 0.0f ? 0.0f : c;   /* reset after t cuts t → t+1 */ \
                    float g = ld_##GS(gs, q) * ld_##XS(sl, q);                                         \
                    g = c + g;                                                                         \
                    st_##OS(out, q, g);                                                                \
                    cr[q] = g * leak;                                                                  \
                    if (has_sums && rows) { sum_g[q] += g; sum_gx[q] += (double)(g * ld_##XS(xs, q)); } \
                    if (has_sums && !rows) { lane_g[q % LANES] += g; lane_gx[q % LANES] += g * ld_##XS(xs, q); } \
                }                                                                                      \
                if (has_sums && !rows) {                                                               \
                    double a = 0.0, b = 0.0;                                                           \
                    for (int k = 0; k < LANES; ++k) { a += lane_g[k]; b += lane_gx[k]; }               \
                    sum_g[sg % C] += a; sum_gx[sg % C] += b;                                           \
                }                                                                                      \
            }                                                                                          \
        }                                                                                              \
    }                                                                                                  \
}                                                                                                      \
static void NAME##_range(const GT* grad_spikes, const XT* slope, const XT* spikes, OT* grad_out,       \
        int64_t T, int64_t N, int64_t L, int64_t seg0, int64_t seg1, int rows, int64_t C, float leak,  \
        int hard, const XT* x, double* sums) {                                                         \
    float* carry = (float*)malloc(sizeof(float) * (TILE > L ? TILE : L));                              \
    int has_sums = sums != 0;                                                                          \
    switch (rows * 4 + hard * 2 + has_sums) {                                                          \
BACKWARD_CASES_##NAME                                                                                  \
    }                                                                                                  \
    free(carry);                                                                                       \
}

/* fp64 per-(t, c) sums of x and x² over a segment range (the BNTT batch statistics). */
#define DEFINE_CHANNEL_SUMS(SUFFIX, XT)                                                                 \
static void channel_sums_##SUFFIX##_range(const XT* x, int64_t T, int64_t N, int64_t L, int64_t seg0,  \
        int64_t seg1,                                                                                  \
        int rows, int64_t C, double* sums) {                                                           \
    for (int64_t t = 0; t < T; ++t) {                                                                  \
        double* restrict s1 = sums + t * C; double* restrict s2 = sums + T * C + t * C;                \
        for (int64_t sg = seg0; sg < seg1; ++sg) {                                                     \
            const XT* restrict xs = x + t * N + sg * L;                                                \
            if (rows) {                                                                                \
                for (int64_t q = 0; q < L; ++q) { float v = ld_##SUFFIX(xs, q); s1[q] += v; s2[q] += (double)v * v; } \
            } else {                                                                                   \
                float a[LANES] = {0}, b[LANES] = {0}; double da = 0.0, db = 0.0;                       \
                for (int64_t q = 0; q < L; ++q) { float v = ld_##SUFFIX(xs, q); a[q % LANES] += v; b[q % LANES] += v * v; } \
                for (int k = 0; k < LANES; ++k) { da += a[k]; db += b[k]; }                            \
                s1[sg % C] += da; s2[sg % C] += db;                                                    \
            }                                                                                          \
        }                                                                                              \
    }                                                                                                  \
}

/* BNTT input gradient  g_x = g_y·scale + x·a + b  per (t, c), written in x's type. */
#define DEFINE_BN_GRAD_INPUT(NAME, XT, XS, GT, GS)                                                      \
INLINE void bn_seg_##NAME(const int rows, int64_t L, const GT* restrict gy, const XT* restrict x,       \
        XT* restrict gx, const float* restrict sv, const float* restrict av, const float* restrict bv, \
        float ss, float as, float bs) {                                                                \
    for (int64_t q = 0; q < L; ++q) {                                                                  \
        float v = ld_##GS(gy, q) * (rows ? sv[q] : ss);                                                \
        v = v + ld_##XS(x, q) * (rows ? av[q] : as);                                                   \
        v = v + (rows ? bv[q] : bs);                                                                   \
        st_##XS(gx, q, v);                                                                             \
    }                                                                                                  \
}                                                                                                      \
static void NAME##_range(const GT* gy, const XT* x, XT* gx, int64_t T, int64_t N, int64_t L,          \
        int64_t seg0, int64_t seg1, int rows, int64_t C, const float* scale, const float* a,            \
        const float* b) {                                                                              \
    for (int64_t t = 0; t < T; ++t) {                                                                  \
        for (int64_t sg = seg0; sg < seg1; ++sg) {                                                     \
            int64_t o = t * N + sg * L, c = t * C + (rows ? 0 : sg % C);                               \
            if (rows) bn_seg_##NAME(1, L, gy + o, x + o, gx + o, scale + c, a + c, b + c, 0, 0, 0);    \
            else bn_seg_##NAME(0, L, gy + o, x + o, gx + o, 0, 0, 0, scale[c], a[c], b[c]);           \
        }                                                                                              \
    }                                                                                                  \
}

/* Exported entry points: split [seg0, seg1) over `threads` OpenMP threads. Built with -fopenmp, the
   library binds to the libgomp that torch has already loaded (same soname), so these loops run on
   torch's own thread pool instead of competing with its spinning workers. */
#ifdef _OPENMP
#include <omp.h>
#define PARALLEL_BEGIN(threads) _Pragma("omp parallel num_threads(threads)") {                          \
    int k_ = omp_get_thread_num(), n_ = omp_get_num_threads();
#else
#define PARALLEL_BEGIN(threads) { int k_ = 0, n_ = 1; (void)threads;
#endif
#define PARALLEL_END }
#define MY_RANGE int64_t a_ = seg0 + (seg1 - seg0) * k_ / n_, b_ = seg0 + (seg1 - seg0) * (k_ + 1) / n_;

#define EXPORT_FORWARD(SUFFIX, XT)                                                                      \
void lif_forward_##SUFFIX(const XT* x, XT* spikes, XT* slope, XT* membrane, int64_t T, int64_t N,        \
        int64_t L, int64_t seg0, int64_t seg1, int rows, int64_t C, const float* scale,                 \
        const float* shift, float leak, float th, int hard, int kind, float p, float p2, int64_t P,     \
        double* stats, int threads) {                                                                  \
    PARALLEL_BEGIN(threads) MY_RANGE                                                                   \
    lif_forward_##SUFFIX##_range(x, spikes, slope, membrane, T, N, L, a_, b_, rows, C, scale, shift,  \
                                 leak, th, hard, kind, p, p2, P,                                       \
                                 stats ? stats + (int64_t)k_ * (2 * T + T * P) : 0);                    \
    PARALLEL_END                                                                                       \
}
#define EXPORT_BACKWARD(NAME, XT, GT, OT)                                                               \
void NAME(const GT* grad_spikes, const XT* slope, const XT* spikes, OT* grad_out, int64_t T, int64_t N,  \
        int64_t L, int64_t seg0, int64_t seg1, int rows, int64_t C, float leak, int hard,              \
        const XT* x, double* sums, int threads) {                                                      \
    PARALLEL_BEGIN(threads) MY_RANGE                                                                   \
    NAME##_range(grad_spikes, slope, spikes, grad_out, T, N, L, a_, b_, rows, C, leak, hard, x,        \
                 sums ? sums + (int64_t)k_ * 2 * T * C : 0);                                           \
    PARALLEL_END                                                                                       \
}
#define EXPORT_CHANNEL_SUMS(SUFFIX, XT)                                                                 \
void channel_sums_##SUFFIX(const XT* x, int64_t T, int64_t N, int64_t L, int64_t seg0, int64_t seg1,    \
        int rows, int64_t C, double* sums, int threads) {                                              \
    PARALLEL_BEGIN(threads) MY_RANGE                                                                   \
    channel_sums_##SUFFIX##_range(x, T, N, L, a_, b_, rows, C, sums + (int64_t)k_ * 2 * T * C);        \
    PARALLEL_END                                                                                       \
}
#define EXPORT_BN_GRAD_INPUT(NAME, XT, GT)                                                              \
void NAME(const GT* gy, const XT* x, XT* gx, int64_t T, int64_t N, int64_t L, int64_t seg0,             \
        int64_t seg1, int rows, int64_t C, const float* scale, const float* a, const float* b,         \
        int threads) {                                                                                 \
    PARALLEL_BEGIN(threads) MY_RANGE                                                                   \
    NAME##_range(gy, x, gx, T, N, L, a_, b_, rows, C, scale, a, b);                                    \
    PARALLEL_END                                                                                       \
}

DEFINE_FORWARD_SEGMENT(f32, float)
DEFINE_FORWARD_SEGMENT(bf16, bf16)
DEFINE_BACKWARD(lif_backward_f32, float, f32, float, f32, float, f32)
DEFINE_BACKWARD(lif_backward_bf16, bf16, bf16, bf16, bf16, bf16, bf16)
DEFINE_BACKWARD(lif_backward_bf16_gf32, bf16, bf16, float, f32, float, f32)
DEFINE_BACKWARD(lif_backward_bf16_fp32out, bf16, bf16, bf16, bf16, float, f32)
DEFINE_CHANNEL_SUMS(f32, float)
DEFINE_CHANNEL_SUMS(bf16, bf16)
DEFINE_BN_GRAD_INPUT(bn_grad_input_f32, float, f32, float, f32)
DEFINE_BN_GRAD_INPUT(bn_grad_input_bf16, bf16, bf16, float, f32)
DEFINE_BN_GRAD_INPUT(bn_grad_input_bf16_gybf16, bf16, bf16, bf16, bf16)
EXPORT_FORWARD(f32, float)
EXPORT_FORWARD(bf16, bf16)
EXPORT_BACKWARD(lif_backward_f32, float, float, float)
EXPORT_BACKWARD(lif_backward_bf16, bf16, bf16, bf16)
EXPORT_BACKWARD(lif_backward_bf16_gf32, bf16, float, float)
EXPORT_BACKWARD(lif_backward_bf16_fp32out, bf16, bf16, float)
EXPORT_CHANNEL_SUMS(f32, float)
EXPORT_CHANNEL_SUMS(bf16, bf16)
EXPORT_BN_GRAD_INPUT(bn_grad_input_f32, float, float)
EXPORT_BN_GRAD_INPUT(bn_grad_input_bf16, bf16, float)
EXPORT_BN_GRAD_INPUT(bn_grad_input_bf16_gybf16, bf16, bf16)
"""


def _kernel_source() -> str:
    """The C source with its switch cases written out: one specialised loop per flag combination."""
    defines = []
    for suffix in ("f32", "bf16"):
        cases = []
        for has_st in (0, 1):
            for kind in range(3):
                for rows in (0, 1):
                    for has_m in (0, 1):
                        for hard in (0, 1):
                            code = has_st * 32 + kind * 8 + rows * 4 + has_m * 2 + hard
                            cases.append(f"case {code}: fwd_range_{suffix}({kind}, {rows}, {has_m}, {hard}, {has_st}, "
                                         f"x, spikes, slope, membrane, T, N, L, seg0, seg1, C, scale, shift, leak, "
                                         f"th, p, p2, u, P, stats); break;")
        defines.append(f"#define FORWARD_CASES_{suffix} " + " ".join(cases))
    for name in ("lif_backward_f32", "lif_backward_bf16", "lif_backward_bf16_gf32", "lif_backward_bf16_fp32out"):
        cases = []
        for rows in (0, 1):
            for hard in (0, 1):
                for has_sums in (0, 1):
                    cases.append(f"case {rows * 4 + hard * 2 + has_sums}: bwd_range_{name}({rows}, {hard}, {has_sums}, "
                                 f"grad_spikes, slope, spikes, grad_out, T, N, L, seg0, seg1, C, leak, x, sums, carry); break;")
        defines.append(f"#define BACKWARD_CASES_{name} " + " ".join(cases))
    head, body = _KERNEL_TEMPLATE.split("#define INLINE", 1)
    return head + "\n".join(defines) + "\n#define INLINE" + body


_SOURCE = _kernel_source()

_SURROGATE_KINDS = {"triangle": 0, "fast_sigmoid": 1, "atan": 2}
_TYPES = {torch.float32: "f32", torch.bfloat16: "bf16"}
_lock = threading.Lock()
_library: ctypes.CDLL | None | bool = None  # None: not tried yet; False: unavailable
_I64, _INT, _FLOAT, _PTR = ctypes.c_int64, ctypes.c_int, ctypes.c_float, ctypes.c_void_p


def target_flags() -> list[str]:
    """The code-generation flags: $BNTT_KERNEL_CFLAGS (e.g. "-march=x86-64-v3", the AVX2 + FMA level of most
    laptops, to measure that code on a newer CPU), else -march=native. The other flags are fixed: they
    are what makes the loops bit-exact to the eager scan. Part of the cache key, so each builds once."""
    return os.environ.get("BNTT_KERNEL_CFLAGS", "-march=native").split()


def _build() -> ctypes.CDLL | bool:
    if os.environ.get("BNTT_NO_KERNELS"):
        return False
    base = ["-O3", *target_flags(), "-ffp-contract=off", "-fno-math-errno", "-shared", "-fPIC", "-std=c11"]
    for flags in ([*base, "-fopenmp"], base):  # without OpenMP the loops run on one thread
        key = hashlib.sha256((_SOURCE + " ".join(flags) + platform.machine() + platform.node()).encode()).hexdigest()[:16]
        cache = Path(os.environ.get("BNTT_KERNEL_CACHE", Path.home() / ".cache" / "bntt_core"))
        target = cache / f"bntt_kernels_{key}.so"
        try:
            if not target.exists():
                cache.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryDirectory(dir=cache) as work:
                    source = Path(work) / "kernels.c"
                    source.write_text(_SOURCE)
                    built = Path(work) / "kernels.so"
                    subprocess.run([os.environ.get("CC", "cc"), *flags, str(source), "-o", str(built)],
                                   check=True, capture_output=True, timeout=120)
                    os.replace(built, target)  # atomic: concurrent processes never load a half-written file
            return ctypes.CDLL(str(target))
        except (OSError, subprocess.SubprocessError):
            continue
    return False


def _lib() -> ctypes.CDLL | None:
    global _library
    if _library is None:
        with _lock:
            if _library is None:
                _library = _build()
    return _library or None


def available() -> bool:
    """True when the compiled loops can be used (a C compiler was found and the build worked)."""
    return _lib() is not None


def layout(x: torch.Tensor) -> tuple[int, int, bool] | None:
    """(N per step, segment length L, rows mode) for a time-major tensor the loops can read, else None."""
    if x.dtype not in _TYPES or x.device.type != "cpu" or x.dim() < 2:
        return None
    steps, channels = x.shape[0], x.shape[2] if x.dim() >= 3 else 1
    per_step = x[0].numel() if steps else 0
    if x.is_contiguous():
        inner = 1
        for size in x.shape[3:]:
            inner *= size
        if x.dim() == 2:
            return per_step, per_step, False  # [T, N]: one segment per step, no channels
        return per_step, (channels if inner == 1 else inner), inner == 1
    if x.dim() == 5 and x.flatten(0, 1).is_contiguous(memory_format=torch.channels_last):
        return per_step, channels, True  # [T·B, H, W, C] in memory: channel = element % C
    return None


def _run(function, num_segments: int, make_args, sums_shape: tuple[int, ...] | None = None):
    """function(*make_args(0, num_segments, sums), threads): the C side splits the range over torch's
    thread count (OpenMP). With sums_shape, every thread gets its own fp64 accumulator; their sum is returned."""
    threads = max(1, min(torch.get_num_threads(), num_segments))
    partial = torch.zeros((threads, *sums_shape), dtype=torch.float64) if sums_shape else None
    function(*make_args(0, num_segments, partial.data_ptr() if partial is not None else None), threads)
    if partial is None:
        return None
    return partial[0] if threads == 1 else partial.sum(0)


def _surrogate_parameters(name: str) -> tuple[float, float]:
    """The constants of bntt_core.nn.surrogate, as its eager code rounds them (Python double → fp32 scalar)."""
    if name == "triangle":
        return surrogate_module.TRIANGLE_ALPHA, 0.0
    if name == "fast_sigmoid":
        return surrogate_module.FAST_SIGMOID_SLOPE, 0.0
    return (math.pi / 2.0) * surrogate_module.ATAN_ALPHA, surrogate_module.ATAN_ALPHA / 2.0


def supports_surrogate(name: str) -> bool:
    return name in _SURROGATE_KINDS


def _fn(name: str, argtypes: list) -> ctypes._CFuncPtr:
    function = getattr(_lib(), name)
    if function.argtypes is None:
        function.argtypes = [*argtypes, _INT]  # every entry point ends with the thread count
        function.restype = None
    return function


def _ptr(t: torch.Tensor | None):
    return t.data_ptr() if t is not None else None


def lif_forward(current: torch.Tensor, leak: float, threshold: float, hard: bool, surrogate: str,
                keep_membrane: bool, scale: torch.Tensor | None = None, shift: torch.Tensor | None = None,
                stats: dict | None = None, spikes_out: torch.Tensor | None = None):
    """(spikes, σ'(U), pre-reset membrane or None), all in current's dtype and strides.

    spikes_out: write the spikes there (a tensor like `current`, e.g. a buffer to reuse) instead of a new one.

    scale/shift [T, C] fp32: the input is normalised on the fly as y = x·scale + shift (BNTT).
    stats (a dict, filled in; needs scale, and current [T, B, C] or [T, B, C, H, W]): what recording needs,
    read in the same pass — "input_sums" fp64 [2, T] (Σx, Σx² of the un-normalised input per step) and
    "spike_counts" fp64 [T] ([T, B, C]) or [T, H, W] (spikes per step and position, over batch and channels)."""
    per_step, segment, rows = layout(current)
    steps, channels = current.shape[0], current.shape[2] if current.dim() >= 3 else 1
    spikes = torch.empty_like(current) if spikes_out is None else _checked_out(spikes_out, current)
    slope = torch.empty_like(current)
    membrane = torch.empty_like(current) if keep_membrane else None
    positions = 1
    if stats is not None:
        if scale is None or current.dim() not in (3, 5):
            raise ValueError("recording stats need the BNTT scale and a [T, B, C] or [T, B, C, H, W] input")
        positions = current.shape[3] * current.shape[4] if current.dim() == 5 else 1
    function = _fn(f"lif_forward_{_TYPES[current.dtype]}",
                   [_PTR, _PTR, _PTR, _PTR, _I64, _I64, _I64, _I64, _I64, _INT, _I64, _PTR, _PTR, _FLOAT, _FLOAT,
                    _INT, _INT, _FLOAT, _FLOAT, _I64, _PTR])
    parameter, parameter2 = _surrogate_parameters(surrogate)
    totals = _run(function, per_step // segment if segment else 0,
                  lambda a, b, s: (current.data_ptr(), spikes.data_ptr(), slope.data_ptr(), _ptr(membrane), steps,
                                   per_step, segment, a, b, int(rows), channels, _ptr(scale), _ptr(shift), leak,
                                   threshold, int(hard), _SURROGATE_KINDS[surrogate], parameter, parameter2,
                                   positions, s),
                  sums_shape=(2 * steps + steps * positions,) if stats is not None else None)
    if stats is not None:
        stats["input_sums"] = totals[:2 * steps].view(steps, 2).t()  # [2, T]
        counts = totals[2 * steps:].view(steps, positions)  # [T, P]
        stats["spike_counts"] = counts.view(steps, *current.shape[3:]) if current.dim() == 5 else counts[:, 0]
    return spikes, slope, membrane


def lif_backward(grad_spikes: torch.Tensor, slope: torch.Tensor, spikes: torch.Tensor | None, leak: float,
                 hard: bool, *, out_dtype: torch.dtype, x: torch.Tensor | None = None,
                 out: torch.Tensor | None = None):
    """∂L/∂current (out_dtype, slope's strides); with x, also the fp64 sums [2, T, C] of g and g·x.
    out: a buffer like slope (dtype out_dtype) to write ∂L/∂current into, distinct from every input."""
    per_step, segment, rows = layout(slope)
    steps, channels = slope.shape[0], slope.shape[2] if slope.dim() >= 3 else 1
    if slope.dtype == torch.float32:
        grad_spikes = grad_spikes.float()
        name = "lif_backward_f32"
    elif out_dtype == torch.bfloat16:
        grad_spikes = grad_spikes.to(torch.bfloat16)
        name = "lif_backward_bf16"
    elif grad_spikes.dtype == torch.float32:
        name = "lif_backward_bf16_gf32"
    else:
        grad_spikes = grad_spikes.to(torch.bfloat16)
        name = "lif_backward_bf16_fp32out"
    if grad_spikes.stride() != slope.stride():
        grad_spikes = _like(grad_spikes, slope)
    grad = torch.empty_like(slope, dtype=out_dtype) if out is None else _checked_out(out, slope, out_dtype)
    function = _fn(name, [_PTR, _PTR, _PTR, _PTR, _I64, _I64, _I64, _I64, _I64, _INT, _I64, _FLOAT, _INT, _PTR, _PTR])
    sums = _run(function, per_step // segment if segment else 0,
                lambda a, b, s: (grad_spikes.data_ptr(), slope.data_ptr(), _ptr(spikes), grad.data_ptr(), steps,
                                 per_step, segment, a, b, int(rows), channels, leak, int(hard), _ptr(x), s),
                sums_shape=(2, steps, channels) if x is not None else None)
    return grad, sums


def channel_sums(x: torch.Tensor) -> torch.Tensor:
    """fp64 [2, T, C]: Σx and Σx² over every dimension but time and channel."""
    per_step, segment, rows = layout(x)
    steps, channels = x.shape[0], x.shape[2]
    function = _fn(f"channel_sums_{_TYPES[x.dtype]}", [_PTR, _I64, _I64, _I64, _I64, _I64, _INT, _I64, _PTR])
    return _run(function, per_step // segment,
                lambda a, b, s: (x.data_ptr(), steps, per_step, segment, a, b, int(rows), channels, s),
                sums_shape=(2, steps, channels))


def bn_grad_input(grad_y: torch.Tensor, x: torch.Tensor, scale: torch.Tensor, a: torch.Tensor,
                  b: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """g_x = g_y·scale + x·a + b per (t, c) in x's dtype and strides; g_y (fp32, or bf16 with bf16 x) has x's strides.
    out: a buffer like x to write g_x into, distinct from g_y and x."""
    per_step, segment, rows = layout(x)
    steps, channels = x.shape[0], x.shape[2]
    grad = torch.empty_like(x) if out is None else _checked_out(out, x)
    name = f"bn_grad_input_{_TYPES[x.dtype]}" + ("_gybf16" if grad_y.dtype == torch.bfloat16 else "")
    function = _fn(name, [_PTR, _PTR, _PTR, _I64, _I64, _I64, _I64, _I64, _INT, _I64,
                                                          _PTR, _PTR, _PTR])
    scale, a, b = (v.float().contiguous() for v in (scale, a, b))
    _run(function, per_step // segment,
         lambda s0, s1, _s: (grad_y.data_ptr(), x.data_ptr(), grad.data_ptr(), steps, per_step, segment, s0, s1,
                             int(rows), channels, scale.data_ptr(), a.data_ptr(), b.data_ptr()))
    return grad


def _checked_out(out: torch.Tensor, template: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """`out` if it can stand for torch.empty_like(template, dtype=dtype): same shape, strides, dtype, device."""
    if (out.shape != template.shape or out.stride() != template.stride() or out.device != template.device
            or out.dtype != (dtype or template.dtype)):
        raise ValueError(f"output buffer {tuple(out.shape)}/{out.stride()}/{out.dtype} does not match "
                         f"{tuple(template.shape)}/{template.stride()}/{dtype or template.dtype}")
    return out


def _like(values: torch.Tensor, template: torch.Tensor) -> torch.Tensor:
    """values copied into a tensor with template's strides (the loops index both the same way)."""
    out = torch.empty_like(template, dtype=values.dtype)
    out.copy_(values)
    return out
