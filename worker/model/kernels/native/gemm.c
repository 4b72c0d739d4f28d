/*
 * The engine's float32 matrix products in native code, for CPUs with AVX2 and FMA (x86-64 since 2013).
 *
 * Why native beside the WebAssembly kernels: a prompt is bound by arithmetic, and WebAssembly's vectors are
 * 128 bits wide where these CPUs multiply-add 256 at a time; V8 also keeps at most 8 accumulators of the
 * WebAssembly tile in registers. A prompt's product here runs ~2x as fast, and decoding's products, bound by
 * memory, stream ~1.2x as fast (docs/performance-log.md, section 12); int8 ones need half the instructions.
 * Why hand-written rather than a BLAS: it must read the weights where they lie in the engine's WebAssembly heap
 * (no copy, no second layout), give exactly the bits of the WebAssembly kernels it stands in for (so that a
 * machine with it and one without agree, and the tests can say so), and ship without a library per platform.
 *
 *   gemmPanels(heap, x, rows, k, ldx, w, n, ldw, bias, out, ldo, scratch)     prompts: f32-fma.wat's gemm_panels
 *   gemmRows(heap, x, rows, k, ldx, w, n, ldw, bias, out, ldo, scratch)       1 to 4 rows: f32.wat's gemm_nn
 *     out[r*ldo + j] = bias[j] + sum_i x[r*ldx + i] * w[i*ldw + j]      r < rows, j < n, i in order
 *   q8Matvec(heap, w, ws, xq, xs, y, bias, in_dim, row_start, row_end, n_x, out_dim)
 *                                                         int8 weights (the fast precision): q8.wat's q8_matvec
 * with heap a Uint8Array over the WebAssembly memory, pointers its byte offsets (bias 0: none) and strides in
 * floats; gemmPanels's scratch holds 16k floats (gemmRows uses none). Each output is the same chain of operations
 * as in the kernel it stands in for, which the build keeps by fusing nothing itself (-ffp-contract=off).
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#if defined(__x86_64__) || defined(_M_X64)
#define HAVE_X86 1
#include <immintrin.h>
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#define TARGET_AVX2
#define ALWAYS_INLINE __forceinline
#else
#define TARGET_AVX2 __attribute__((target("avx2,fma")))
#define ALWAYS_INLINE inline __attribute__((always_inline))
#endif
#else
#define HAVE_X86 0
#endif

/* Why this machine cannot use the kernels, or NULL when it can. */
static const char *unavailable_reason(void) {
#if !HAVE_X86
  return "the native kernels are written for x86-64 (AVX2 and FMA)";
#elif defined(_MSC_VER) && !defined(__clang__)
  int info[4];
  __cpuid(info, 1);
  int fma = (info[2] >> 12) & 1, osxsave = (info[2] >> 27) & 1, avx = (info[2] >> 28) & 1;
  if (!(fma && osxsave && avx) || (_xgetbv(0) & 6) != 6) return "this CPU has no AVX2 and FMA";
  __cpuidex(info, 7, 0);
  return (info[1] >> 5) & 1 ? NULL : "this CPU has no AVX2 and FMA";
#else
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? NULL : "this CPU has no AVX2 and FMA";
#endif
}

#if HAVE_X86
/* Columns [0, width) of k rows of w into panel[i*width + c]; width 8 or 16. */
TARGET_AVX2 static void pack(const float *w, int k, int ldw, int width, float *panel) {
  for (int i = 0; i < k; i++, w += ldw, panel += width) {
    _mm256_storeu_ps(panel, _mm256_loadu_ps(w));
    if (width == 16) _mm256_storeu_ps(panel + 8, _mm256_loadu_ps(w + 8));
  }
}

/* Up to 6 rows of x (nr of them; the others repeat the last and are not written) times a 16-column panel:
 * 12 accumulators, two panel loads and six broadcasts per step of k. */
TARGET_AVX2 static void tile6x16(const float *x, int ldx, int nr, int k, const float *p, const float *bias, float *out, int ldo) {
  const float *x0 = x, *x1 = x + (size_t)ldx * (nr > 1 ? 1 : nr - 1), *x2 = x + (size_t)ldx * (nr > 2 ? 2 : nr - 1),
              *x3 = x + (size_t)ldx * (nr > 3 ? 3 : nr - 1), *x4 = x + (size_t)ldx * (nr > 4 ? 4 : nr - 1),
              *x5 = x + (size_t)ldx * (nr > 5 ? 5 : nr - 1);
  __m256 b0 = bias ? _mm256_loadu_ps(bias) : _mm256_setzero_ps(), b1 = bias ? _mm256_loadu_ps(bias + 8) : _mm256_setzero_ps();
  __m256 c00 = b0, c01 = b1, c10 = b0, c11 = b1, c20 = b0, c21 = b1, c30 = b0, c31 = b1, c40 = b0, c41 = b1, c50 = b0, c51 = b1;
  for (int i = 0; i < k; i++, p += 16) {
    __m256 w0 = _mm256_loadu_ps(p), w1 = _mm256_loadu_ps(p + 8), a;
    a = _mm256_broadcast_ss(x0 + i); c00 = _mm256_fmadd_ps(a, w0, c00); c01 = _mm256_fmadd_ps(a, w1, c01);
    a = _mm256_broadcast_ss(x1 + i); c10 = _mm256_fmadd_ps(a, w0, c10); c11 = _mm256_fmadd_ps(a, w1, c11);
    a = _mm256_broadcast_ss(x2 + i); c20 = _mm256_fmadd_ps(a, w0, c20); c21 = _mm256_fmadd_ps(a, w1, c21);
    a = _mm256_broadcast_ss(x3 + i); c30 = _mm256_fmadd_ps(a, w0, c30); c31 = _mm256_fmadd_ps(a, w1, c31);
    a = _mm256_broadcast_ss(x4 + i); c40 = _mm256_fmadd_ps(a, w0, c40); c41 = _mm256_fmadd_ps(a, w1, c41);
    a = _mm256_broadcast_ss(x5 + i); c50 = _mm256_fmadd_ps(a, w0, c50); c51 = _mm256_fmadd_ps(a, w1, c51);
  }
  _mm256_storeu_ps(out, c00); _mm256_storeu_ps(out + 8, c01);
  if (nr > 1) { out += ldo; _mm256_storeu_ps(out, c10); _mm256_storeu_ps(out + 8, c11); }
  if (nr > 2) { out += ldo; _mm256_storeu_ps(out, c20); _mm256_storeu_ps(out + 8, c21); }
  if (nr > 3) { out += ldo; _mm256_storeu_ps(out, c30); _mm256_storeu_ps(out + 8, c31); }
  if (nr > 4) { out += ldo; _mm256_storeu_ps(out, c40); _mm256_storeu_ps(out + 8, c41); }
  if (nr > 5) { out += ldo; _mm256_storeu_ps(out, c50); _mm256_storeu_ps(out + 8, c51); }
}

/* As tile6x16 for one 8-column panel. */
TARGET_AVX2 static void tile6x8(const float *x, int ldx, int nr, int k, const float *p, const float *bias, float *out, int ldo) {
  __m256 c[6];
  const float *xr[6];
  for (int r = 0; r < 6; r++) {
    xr[r] = x + (size_t)ldx * (nr > r ? r : nr - 1);
    c[r] = bias ? _mm256_loadu_ps(bias) : _mm256_setzero_ps();
  }
  for (int i = 0; i < k; i++, p += 8) {
    __m256 w0 = _mm256_loadu_ps(p);
    for (int r = 0; r < 6; r++) c[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(xr[r] + i), w0, c[r]);
  }
  for (int r = 0; r < nr; r++) _mm256_storeu_ps(out + (size_t)ldo * r, c[r]);
}

/* f32-fma.wat's gemm_panels: each output one chain of fused multiply-adds from its bias, in input order. Its
 * 8-column panels become 16-column ones here (n % 16 >= 8 takes one of 8), and the last n % 8 columns take a
 * separate multiply and add, as there. */
TARGET_AVX2 static void gemm_panels(const float *x, int rows, int k, int ldx, const float *w, int n, int ldw, const float *bias,
                                    float *out, int ldo, float *panel) {
  int j = 0;
  for (; j + 8 <= n; ) {
    int width = j + 16 <= n ? 16 : 8;
    pack(w + j, k, ldw, width, panel);
    for (int r = 0; r < rows; r += 6) {
      int nr = rows - r < 6 ? rows - r : 6;
      (width == 16 ? tile6x16 : tile6x8)(x + (size_t)r * ldx, ldx, nr, k, panel, bias ? bias + j : NULL, out + (size_t)r * ldo + j, ldo);
    }
    j += width;
  }
  for (; j < n; j++) {
    for (int r = 0; r < rows; r++) {
      float f = bias ? bias[j] : 0.0f;
      for (int i = 0; i < k; i++) f = f + x[(size_t)r * ldx + i] * w[(size_t)i * ldw + j];
      out[(size_t)r * ldo + j] = f;
    }
  }
}

/* f32.wat's gemm_nn for up to 4 rows (its nn_stream_* functions), a decode step's products: w is read once for
 * all rows, and each output starts from its bias and adds its products in input order with a separate multiply
 * and add, as there (XNNPACK's bits; how the steps group the inputs does not change a sum made in order).
 * Decoding reads every weight once a token, and 256-bit loads stream it ~1.2x faster than 128-bit ones. */
#define ADD(o, s, v) _mm256_add_ps(o, _mm256_mul_ps(s, v))

/* One row, four inputs a step. */
TARGET_AVX2 static void gemm_row(const float *x, int k, const float *w, int n, int ldw, float *out) {
  int i = 0;
  for (; i + 4 <= k; i += 4) {
    const float *w0 = w + (size_t)i * ldw, *w1 = w0 + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;
    __m256 s0 = _mm256_broadcast_ss(x + i), s1 = _mm256_broadcast_ss(x + i + 1), s2 = _mm256_broadcast_ss(x + i + 2),
           s3 = _mm256_broadcast_ss(x + i + 3);
    int j = 0;
    for (; j + 8 <= n; j += 8) {
      __m256 o = _mm256_loadu_ps(out + j);
      o = ADD(o, s0, _mm256_loadu_ps(w0 + j));
      o = ADD(o, s1, _mm256_loadu_ps(w1 + j));
      o = ADD(o, s2, _mm256_loadu_ps(w2 + j));
      o = ADD(o, s3, _mm256_loadu_ps(w3 + j));
      _mm256_storeu_ps(out + j, o);
    }
    for (; j < n; j++) out[j] = out[j] + x[i] * w0[j] + x[i + 1] * w1[j] + x[i + 2] * w2[j] + x[i + 3] * w3[j];
  }
  for (; i < k; i++) {
    const float *w0 = w + (size_t)i * ldw;
    for (int j = 0; j < n; j++) out[j] = out[j] + x[i] * w0[j];
  }
}

/* 2 to 4 rows (a constant where it is called, so that the row loops unroll), two inputs a step: 8 broadcasts and
 * 2 rows of w in registers. */
TARGET_AVX2 static ALWAYS_INLINE void gemm_few(const float *x, const int rows, int k, int ldx, const float *w, int n, int ldw,
                                               float *out, int ldo) {
  int i = 0;
  for (; i + 2 <= k; i += 2) {
    const float *wa = w + (size_t)i * ldw, *wb = wa + ldw;
    __m256 sa[4], sb[4];
    for (int r = 0; r < rows; r++) {
      sa[r] = _mm256_broadcast_ss(x + (size_t)r * ldx + i);
      sb[r] = _mm256_broadcast_ss(x + (size_t)r * ldx + i + 1);
    }
    int j = 0;
    for (; j + 8 <= n; j += 8) {
      __m256 va = _mm256_loadu_ps(wa + j), vb = _mm256_loadu_ps(wb + j);
      for (int r = 0; r < rows; r++) {
        float *o = out + (size_t)r * ldo + j;
        _mm256_storeu_ps(o, ADD(ADD(_mm256_loadu_ps(o), sa[r], va), sb[r], vb));
      }
    }
    for (; j < n; j++)
      for (int r = 0; r < rows; r++) {
        float *o = out + (size_t)r * ldo + j;
        *o = *o + x[(size_t)r * ldx + i] * wa[j] + x[(size_t)r * ldx + i + 1] * wb[j];
      }
  }
  for (; i < k; i++) {
    const float *wa = w + (size_t)i * ldw;
    for (int r = 0; r < rows; r++)
      for (int j = 0; j < n; j++) out[(size_t)r * ldo + j] = out[(size_t)r * ldo + j] + x[(size_t)r * ldx + i] * wa[j];
  }
}

TARGET_AVX2 static void gemm_rows(const float *x, int rows, int k, int ldx, const float *w, int n, int ldw, const float *bias, float *out,
                                  int ldo) {
  for (int r = 0; r < rows; r++)
    for (int j = 0; j < n; j++) out[(size_t)r * ldo + j] = bias ? bias[j] : 0.0f;
  switch (rows) {
    case 1: gemm_row(x, k, w, n, ldw, out); break;
    case 2: gemm_few(x, 2, k, ldx, w, n, ldw, out, ldo); break;
    case 3: gemm_few(x, 3, k, ldx, w, n, ldw, out, ldo); break;
    default: gemm_few(x, 4, k, ldx, w, n, ldw, out, ldo); break;
  }
}

/* q8.wat's q8_matvec (the fast precision's products): y[j][r] = bias[r] + sum over groups g of
 * float(w[r][g] . xq[j][g]) * (ws[r][g] * xs[j][g]), for r in [row_start, row_end) and j < n_x (1 to 4), in
 * groups of 32. The integer dot products are exact, and they are split into q8.wat's four lanes (lane l: the
 * pairs at 2l, 8 + 2l, 16 + 2l, 24 + 2l); each lane's float sum runs over the groups in order with a separate
 * multiply and add, and the four lanes meet as (l0 + l1) + (l2 + l3) before the bias: its bits. */
TARGET_AVX2 static void q8_matvec(const int8_t *w, const float *ws, const int8_t *xq, const float *xs, float *y, const float *bias,
                                  int in_dim, int row_start, int row_end, int n_x, int out_dim) {
  const int groups = in_dim / 32;
  for (int r = row_start; r < row_end; r++) {
    const int8_t *wr = w + (size_t)r * in_dim;
    const float *sr = ws + (size_t)r * groups;
    __m128 acc[4] = {_mm_setzero_ps(), _mm_setzero_ps(), _mm_setzero_ps(), _mm_setzero_ps()};
    for (int g = 0; g < groups; g++) {
      /* Weights 0-15 and 16-31 as 16-bit lanes; pmaddwd's lane m then holds the pair at 2m (and 16 + 2m). */
      __m256i wlo = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(wr + 32 * g)));
      __m256i whi = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(wr + 32 * g + 16)));
      for (int j = 0; j < n_x; j++) {
        const int8_t *xj = xq + (size_t)j * in_dim + 32 * g;
        __m256i d = _mm256_add_epi32(_mm256_madd_epi16(wlo, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)xj))),
                                     _mm256_madd_epi16(whi, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(xj + 16)))));
        /* Lanes m and m + 4 together: q8.wat's lane m. */
        __m128i lanes = _mm_add_epi32(_mm256_castsi256_si128(d), _mm256_extracti128_si256(d, 1));
        float scale = sr[g] * xs[(size_t)j * groups + g];
        acc[j] = _mm_add_ps(acc[j], _mm_mul_ps(_mm_cvtepi32_ps(lanes), _mm_set1_ps(scale)));
      }
    }
    float b = bias ? bias[r] : 0.0f;
    for (int j = 0; j < n_x; j++) {
      float l[4];
      _mm_storeu_ps(l, acc[j]);
      y[(size_t)j * out_dim + r] = b + ((l[0] + l[1]) + (l[2] + l[3]));
    }
  }
}
#endif

/* Whether [at, at + count * size) lies in a heap of `length` bytes, at a multiple of `size` (1 or 4). */
static int fits(int64_t at, int64_t count, int64_t size, size_t length) {
  return at >= 0 && at % size == 0 && count >= 0 && count <= (int64_t)length / size && at <= (int64_t)length - count * size;
}

/* A call's heap (the bytes of the typed array it was given) and its 11 numbers. */
typedef struct {
  char *heap;
  size_t length;
  int64_t v[11];
} Call;

static int fail(napi_env env, napi_status (*throw_)(napi_env, const char *, const char *), const char *name, const char *what) {
  char message[160];
  snprintf(message, sizeof message, "%s: %s", name, what);
  throw_(env, NULL, message);
  return 0;
}

/* Reads (heap, 11 numbers); on a wrong one throws and returns 0. Where the CPU cannot run the kernels, throws
 * the reason the module found when it loaded (passed as the function's data: cpuid can trap in a virtual machine). */
static int read_call(napi_env env, napi_callback_info info, const char *name, Call *call) {
  size_t argc = 12;
  napi_value args[12];
  void *unavailable;
  if (napi_get_cb_info(env, info, &argc, args, NULL, &unavailable) != napi_ok || argc != 12)
    return fail(env, napi_throw_type_error, name, "takes a heap view and 11 numbers");
  if (unavailable != NULL) return fail(env, napi_throw_error, name, (const char *)unavailable);
  napi_typedarray_type type;
  size_t byte_offset;
  void *data;
  napi_value buffer;
  if (napi_get_typedarray_info(env, args[0], &type, &call->length, &data, &buffer, &byte_offset) != napi_ok || type != napi_uint8_array)
    return fail(env, napi_throw_type_error, name, "the heap must be a Uint8Array");
  call->heap = (char *)data;
  for (int i = 0; i < 11; i++) {
    if (napi_get_value_int64(env, args[i + 1], &call->v[i]) != napi_ok)
      return fail(env, napi_throw_type_error, name, "offsets, sizes and strides must be numbers");
  }
  return 1;
}

/* Offsets up to 4 GiB (a 32-bit WebAssembly heap); sizes within int. The arguments come from the engine, but a
 * wrong one must be an exception, not a write outside the heap. */
static const int64_t MOST = INT32_MAX;
static const char *OUTSIDE = "a matrix lies outside the heap or its sizes do not agree";
#define FLOATS(call, at) ((float *)((call).heap + (at)))

/* (x, rows, k, ldx, w, n, ldw, bias, out, ldo, scratch), with scratch_per_k floats of scratch per input. */
static int read_product(napi_env env, napi_callback_info info, const char *name, int64_t max_rows, int64_t scratch_per_k, Call *c) {
  if (!read_call(env, info, name, c)) return 0;
  int64_t x = c->v[0], rows = c->v[1], k = c->v[2], ldx = c->v[3], w = c->v[4], n = c->v[5], ldw = c->v[6], bias = c->v[7],
          out = c->v[8], ldo = c->v[9], scratch = c->v[10];
  if (rows < 1 || k < 1 || n < 1 || ldx < k || ldw < n || ldo < n || rows > max_rows || k > MOST || n > MOST || ldx > MOST ||
      ldw > MOST || ldo > MOST || !fits(x, (rows - 1) * ldx + k, 4, c->length) || !fits(w, (k - 1) * ldw + n, 4, c->length) ||
      !fits(out, (rows - 1) * ldo + n, 4, c->length) || (bias != 0 && !fits(bias, n, 4, c->length)) ||
      !fits(scratch, scratch_per_k * k, 4, c->length))
    return fail(env, napi_throw_range_error, name, OUTSIDE);
  return 1;
}

static napi_value GemmPanels(napi_env env, napi_callback_info info) {
  Call c;
  if (!read_product(env, info, "gemmPanels", MOST, 16, &c)) return NULL;
#if HAVE_X86
  const int64_t *v = c.v;
  gemm_panels(FLOATS(c, v[0]), (int)v[1], (int)v[2], (int)v[3], FLOATS(c, v[4]), (int)v[5], (int)v[6], v[7] ? FLOATS(c, v[7]) : NULL,
              FLOATS(c, v[8]), (int)v[9], FLOATS(c, v[10]));
#endif
  return NULL;
}

static napi_value GemmRows(napi_env env, napi_callback_info info) {
  Call c;
  if (!read_product(env, info, "gemmRows", 4, 0, &c)) return NULL;
#if HAVE_X86
  const int64_t *v = c.v;
  gemm_rows(FLOATS(c, v[0]), (int)v[1], (int)v[2], (int)v[3], FLOATS(c, v[4]), (int)v[5], (int)v[6], v[7] ? FLOATS(c, v[7]) : NULL,
            FLOATS(c, v[8]), (int)v[9]);
#endif
  return NULL;
}

/* (w, ws, xq, xs, y, bias, in_dim, row_start, row_end, n_x, out_dim), as q8.wat's q8_matvec. */
static napi_value Q8Matvec(napi_env env, napi_callback_info info) {
  Call c;
  if (!read_call(env, info, "q8Matvec", &c)) return NULL;
  int64_t w = c.v[0], ws = c.v[1], xq = c.v[2], xs = c.v[3], y = c.v[4], bias = c.v[5], in_dim = c.v[6], row_start = c.v[7],
          row_end = c.v[8], n_x = c.v[9], out_dim = c.v[10], groups = in_dim / 32;
  if (in_dim < 32 || in_dim % 32 != 0 || in_dim > MOST || n_x < 1 || n_x > 4 || out_dim < 1 || out_dim > MOST || row_start < 0 ||
      row_start > row_end || row_end > out_dim || !fits(w, row_end * in_dim, 1, c.length) || !fits(ws, row_end * groups, 4, c.length) ||
      !fits(xq, n_x * in_dim, 1, c.length) || !fits(xs, n_x * groups, 4, c.length) ||
      !fits(y, (n_x - 1) * out_dim + row_end, 4, c.length) || (bias != 0 && !fits(bias, row_end, 4, c.length))) {
    fail(env, napi_throw_range_error, "q8Matvec", OUTSIDE);
    return NULL;
  }
#if HAVE_X86
  q8_matvec((const int8_t *)(c.heap + w), FLOATS(c, ws), (const int8_t *)(c.heap + xq), FLOATS(c, xs), FLOATS(c, y),
            bias ? FLOATS(c, bias) : NULL, (int)in_dim, (int)row_start, (int)row_end, (int)n_x, (int)out_dim);
#endif
  return NULL;
}

NAPI_MODULE_INIT() {
  const char *reason = unavailable_reason();
  napi_value value;
  if (reason) {
    napi_create_string_utf8(env, reason, NAPI_AUTO_LENGTH, &value);
  } else {
    napi_get_null(env, &value);
  }
  napi_set_named_property(env, exports, "unavailable", value);
  napi_create_function(env, "gemmPanels", NAPI_AUTO_LENGTH, GemmPanels, (void *)reason, &value);
  napi_set_named_property(env, exports, "gemmPanels", value);
  napi_create_function(env, "gemmRows", NAPI_AUTO_LENGTH, GemmRows, (void *)reason, &value);
  napi_set_named_property(env, exports, "gemmRows", value);
  napi_create_function(env, "q8Matvec", NAPI_AUTO_LENGTH, Q8Matvec, (void *)reason, &value);
  napi_set_named_property(env, exports, "q8Matvec", value);
  return exports;
}
