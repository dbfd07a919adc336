/* The fused CPU loops of bntt_core/nn/kernels/cpu.py (LIF scan forward/backward, BNTT channel sums and input
   gradient). Not compiled as it stands: cpu.py inserts the FORWARD_CASES_* / BACKWARD_CASES_* switch cases
   (one specialised loop per flag combination) ahead of the INLINE definition, then builds it once per machine. */
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
