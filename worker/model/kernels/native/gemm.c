/*
 * The engine's float32 matrix products in native code, for CPUs with AVX2 and FMA (x86-64 since 2013).
 *
 * Why native beside the WebAssembly kernels: a prompt is bound by arithmetic, and WebAssembly's vectors are
 * 128 bits wide where these CPUs multiply-add 256 at a time; V8 also keeps at most 8 accumulators of the
 * WebAssembly tile in registers. A prompt's product here runs ~2x as fast, and decoding's products, bound by
 * memory, stream ~1.2x as fast (docs/performance-log.md, section 12).
 * Why hand-written rather than a BLAS: it must read the weights where they lie in the engine's WebAssembly heap
 * (no copy, no second layout), give exactly the bits of the WebAssembly kernels it stands in for (so that a
 * machine with it and one without agree, and the tests can say so), and ship without a library per platform.
 *
 *   gemmPanels(heap, x, rows, k, ldx, w, n, ldw, bias, out, ldo, scratch)     prompts: f32-fma.wat's gemm_panels
 *   gemmRows(heap, x, rows, k, ldx, w, n, ldw, bias, out, ldo, scratch)       1 to 4 rows: f32.wat's gemm_nn
 *     out[r*ldo + j] = bias[j] + sum_i x[r*ldx + i] * w[i*ldw + j]      r < rows, j < n, i in order
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
#endif

/* Whether [at, at + floats * 4) lies in a heap of `length` bytes, at a whole float. */
static int fits(int64_t at, int64_t floats, size_t length) {
  return at >= 0 && at % 4 == 0 && floats >= 0 && floats <= (int64_t)(length / 4) && at <= (int64_t)length - floats * 4;
}

/* A product's arguments, read from JavaScript and checked against the heap. */
typedef struct {
  char *heap;
  int64_t x, rows, k, ldx, w, n, ldw, bias, out, ldo, scratch;
} Product;

/* Reads (heap, x, rows, k, ldx, w, n, ldw, bias, out, ldo, scratch) into p; on a wrong one throws and returns 0.
 * The arguments come from the engine, but a wrong one must be an exception, not a write outside the heap. */
static int read_product(napi_env env, napi_callback_info info, const char *name, int64_t scratch_floats_per_k, Product *p) {
  size_t argc = 12;
  napi_value args[12];
  char message[160];
  void *unavailable; /* the module's reason, checked once when it loaded (cpuid can trap in a virtual machine) */
  if (napi_get_cb_info(env, info, &argc, args, NULL, &unavailable) != napi_ok || argc != 12) {
    snprintf(message, sizeof message, "%s takes a heap view and 11 numbers", name);
    napi_throw_type_error(env, NULL, message);
    return 0;
  }
  napi_typedarray_type type;
  size_t length, byte_offset;
  void *data;
  napi_value buffer;
  if (napi_get_typedarray_info(env, args[0], &type, &length, &data, &buffer, &byte_offset) != napi_ok || type != napi_uint8_array) {
    snprintf(message, sizeof message, "%s: the heap must be a Uint8Array", name);
    napi_throw_type_error(env, NULL, message);
    return 0;
  }
  int64_t v[11];
  for (int i = 0; i < 11; i++) {
    if (napi_get_value_int64(env, args[i + 1], &v[i]) != napi_ok) {
      snprintf(message, sizeof message, "%s: offsets, sizes and strides must be numbers", name);
      napi_throw_type_error(env, NULL, message);
      return 0;
    }
  }
  *p = (Product){(char *)data, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10]};
  /* Offsets up to 4 GiB (a 32-bit WebAssembly heap); sizes within int. */
  const int64_t most = INT32_MAX;
  if (p->rows < 1 || p->k < 1 || p->n < 1 || p->ldx < p->k || p->ldw < p->n || p->ldo < p->n || p->rows > most || p->k > most ||
      p->n > most || p->ldx > most || p->ldw > most || p->ldo > most || !fits(p->x, (p->rows - 1) * p->ldx + p->k, length) ||
      !fits(p->w, (p->k - 1) * p->ldw + p->n, length) || !fits(p->out, (p->rows - 1) * p->ldo + p->n, length) ||
      (p->bias != 0 && !fits(p->bias, p->n, length)) || !fits(p->scratch, scratch_floats_per_k * p->k, length)) {
    snprintf(message, sizeof message, "%s: a matrix lies outside the heap or its sizes do not agree", name);
    napi_throw_range_error(env, NULL, message);
    return 0;
  }
  if (unavailable != NULL) {
    napi_throw_error(env, NULL, (const char *)unavailable);
    return 0;
  }
  return 1;
}

#define AT(p, field) ((float *)((p).heap + (p).field))

static napi_value GemmPanels(napi_env env, napi_callback_info info) {
  Product p;
  if (!read_product(env, info, "gemmPanels", 16, &p)) return NULL;
#if HAVE_X86
  gemm_panels(AT(p, x), (int)p.rows, (int)p.k, (int)p.ldx, AT(p, w), (int)p.n, (int)p.ldw, p.bias ? AT(p, bias) : NULL, AT(p, out),
              (int)p.ldo, AT(p, scratch));
#endif
  return NULL;
}

static napi_value GemmRows(napi_env env, napi_callback_info info) {
  Product p;
  if (!read_product(env, info, "gemmRows", 0, &p)) return NULL;
  if (p.rows > 4) {
    napi_throw_range_error(env, NULL, "gemmRows: 1 to 4 rows");
    return NULL;
  }
#if HAVE_X86
  gemm_rows(AT(p, x), (int)p.rows, (int)p.k, (int)p.ldx, AT(p, w), (int)p.n, (int)p.ldw, p.bias ? AT(p, bias) : NULL, AT(p, out), (int)p.ldo);
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
  return exports;
}
