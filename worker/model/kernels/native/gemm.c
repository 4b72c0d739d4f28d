/*
 * The prompt's matrix products in native code, for machines whose CPU has AVX2 and FMA (x86-64 since 2013).
 *
 * Why native beside the WebAssembly kernels: a prompt is bound by arithmetic, and WebAssembly's vectors are
 * 128 bits wide where these CPUs multiply-add 256 at a time; V8 also keeps at most 8 accumulators of the
 * WebAssembly tile in registers. The same product here runs ~2x as fast (docs/performance-log.md, section 12).
 * Why hand-written rather than a BLAS: it must read the weights where they lie in the engine's WebAssembly heap
 * (no copy, no second layout), give exactly the bits of f32-fma.wat's gemm_panels (so that a machine with and
 * one without it agree, and the tests can say so), and ship without a library per platform.
 *
 *   gemm_panels(heap, x, rows, k, ldx, w, n, ldw, bias, out, ldo, scratch):
 *     out[r*ldo + j] = bias[j] + sum_i x[r*ldx + i] * w[i*ldw + j]      r < rows, j < n, i in order
 * with heap a typed array over the WebAssembly memory, pointers its byte offsets (bias 0: none) and strides in
 * floats; scratch holds 16k floats. Each output is one chain of fused multiply-adds starting from its bias, in
 * input order, as in f32-fma.wat: its 8-column panels here become 16-column ones (n % 16 >= 8 takes one 8-column
 * panel) and the last n % 8 columns take a separate multiply and add (built with -ffp-contract=off), as there.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) || defined(_M_X64)
#define HAVE_X86 1
#include <immintrin.h>
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#define TARGET_AVX2
#else
#define TARGET_AVX2 __attribute__((target("avx2,fma")))
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
#endif

/* Whether [at, at + floats * 4) lies in a heap of `length` bytes, at a whole float. */
static int fits(int64_t at, int64_t floats, size_t length) {
  return at >= 0 && at % 4 == 0 && floats >= 0 && floats <= (int64_t)(length / 4) && at <= (int64_t)length - floats * 4;
}

static napi_value GemmPanels(napi_env env, napi_callback_info info) {
  size_t argc = 12;
  napi_value args[12];
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok || argc != 12) {
    napi_throw_type_error(env, NULL, "gemmPanels takes a heap view and 11 numbers");
    return NULL;
  }
  napi_typedarray_type type;
  size_t elements, byte_offset;
  void *data;
  napi_value buffer;
  if (napi_get_typedarray_info(env, args[0], &type, &elements, &data, &buffer, &byte_offset) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "gemmPanels: the heap must be a Uint8Array");
    return NULL;
  }
  int64_t v[11];
  for (int i = 0; i < 11; i++) {
    if (napi_get_value_int64(env, args[i + 1], &v[i]) != napi_ok) {
      napi_throw_type_error(env, NULL, "gemmPanels: offsets, sizes and strides must be numbers");
      return NULL;
    }
  }
  /* Offsets up to 4 GiB (a 32-bit WebAssembly heap); sizes within int. */
  int64_t x = v[0], w = v[4], bias = v[7], out = v[8], scratch = v[10];
  const int64_t most = INT32_MAX;
  int64_t rows = v[1], k = v[2], ldx = v[3], n = v[5], ldw = v[6], ldo = v[9];
  /* The arguments come from the engine, but a wrong one must be an exception, not a write outside the heap. */
  if (rows < 1 || k < 1 || n < 1 || ldx < k || ldw < n || ldo < n || rows > most || k > most || n > most || ldx > most ||
      ldw > most || ldo > most ||
      !fits(x, (rows - 1) * ldx + k, elements) || !fits(w, (k - 1) * ldw + n, elements) ||
      !fits(out, (rows - 1) * ldo + n, elements) || (bias != 0 && !fits(bias, n, elements)) || !fits(scratch, 16 * k, elements)) {
    napi_throw_range_error(env, NULL, "gemmPanels: a matrix lies outside the heap or its sizes do not agree");
    return NULL;
  }
#if HAVE_X86
  if (unavailable_reason() == NULL) {
    char *heap = (char *)data;
    gemm_panels((const float *)(heap + x), (int)rows, (int)k, (int)ldx, (const float *)(heap + w), (int)n, (int)ldw,
                bias ? (const float *)(heap + bias) : NULL, (float *)(heap + out), (int)ldo, (float *)(heap + scratch));
    return NULL;
  }
#endif
  napi_throw_error(env, NULL, unavailable_reason());
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
  napi_create_function(env, "gemmPanels", NAPI_AUTO_LENGTH, GemmPanels, NULL, &value);
  napi_set_named_property(env, exports, "gemmPanels", value);
  return exports;
}
