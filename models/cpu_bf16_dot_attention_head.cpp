#include "models/cpu_bf16_dot_attention_head.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define VIT_HAVE_BF16_DOT 1  // an x86-64 compiler with AVX-512 intrinsics: the kernels exist, the CPU decides
#endif

#ifdef VIT_HAVE_BF16_DOT
// GCC 12's AVX-512 intrinsics start some results from _mm512_undefined_*() and its -Wmaybe-uninitialized then warns
// inside its own header wherever they are inlined: a false positive, silenced for this file only (GCC's warning;
// clang has none of that name).
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "models/cpu_simd.h"
#endif

#include <algorithm>
#include <limits>

// Every function that runs AVX-512 code carries this target (GCC and clang): the rest of the program is built for
// the x86-64 baseline, and has_bf16_dot() decides at run time whether these run at all.
#define VIT_BF16_DOT __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))
#define VIT_BF16_DOT_INLINE \
  __attribute__((always_inline, target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16"))) inline

namespace vit::cpu {
namespace {

constexpr int kLanes = 16;  // float32 sums per vector; bf16 pairs per vector

int64_t round_up(int64_t x, int64_t multiple) { return (x + multiple - 1) / multiple * multiple; }

// The sizes one head's buffers share: n tokens, d channels, the keys padded to whole vectors (a scores row) and to a
// pair (a probabilities row).
struct Sizes {
  int64_t n, d;
  int64_t key_lanes() const { return round_up(n, kLanes); }
  int64_t prob_row() const { return round_up(n, 2); }
  int64_t token_pairs() const { return prob_row() / 2; }
  int64_t channel_pairs() const { return d / 2; }
};

}  // namespace

#ifdef VIT_HAVE_BF16_DOT
namespace {

// A bf16 pair read or written as one 32-bit word, in memory that also holds bf16 or float32 values, at any even
// address (pairs are 4-byte aligned wherever the tensors are, but a word is not promised more than bf16's alignment).
typedef uint32_t __attribute__((may_alias, aligned(2))) Word;

// The left operand of a product: row r's pair p (a bf16 pair along the products' sum) at words[r * row + p * pair].
// Rows of bf16 in memory (q, the output's gradient, the probabilities) have pair = 1; a matrix packed by token pairs
// read transposed (P^T, dS^T) has row = 1.
struct PairRows {
  const Word* words;
  int64_t row, pair;
};

// Where a product's float32 sums go: as they are (rows of `row` floats), or rounded to bf16 (rows `row` apart).
struct ToFloat {
  float* c;
  int64_t row;
  VIT_BF16_DOT_INLINE void operator()(int64_t r, int64_t col, __m512 x) const {
    _mm512_storeu_ps(c + r * row + col, x);
  }
};
struct ToBf16 {
  uint16_t* c;
  int64_t row;
  VIT_BF16_DOT_INLINE void operator()(int64_t r, int64_t col, __m512 x) const {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + r * row + col), (__m256i)_mm512_cvtneps_pbh(x));
  }
};

// Rows [r0, r0 + M) by vectors [col0, col0 + V * 16) of a · b, b packed as (pairs, b_row) words: M * V float32 sums in
// registers, each step one broadcast pair of a row against V vectors of b.
template <int M, int V, typename Store>
VIT_BF16_DOT_INLINE void tile(const PairRows& a, int64_t r0, const Word* b, int64_t b_row, int64_t col0, int64_t pairs,
                              const Store& store) {
  // The loops over m and v unrolled whatever the optimisation level, so that the sums stay in registers.
  __m512 sums[M][V];
#pragma GCC unroll 12
  for (int m = 0; m < M; ++m)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) sums[m][v] = _mm512_setzero_ps();
  const Word* rows = a.words + r0 * a.row;
  for (int64_t p = 0; p < pairs; ++p) {
    __m512bh columns[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) columns[v] = (__m512bh)_mm512_loadu_si512(b + p * b_row + col0 + v * kLanes);
#pragma GCC unroll 16
    for (int m = 0; m < M; ++m) {
      const auto x = (__m512bh)_mm512_set1_epi32(static_cast<int>(rows[m * a.row + p * a.pair]));
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) sums[m][v] = _mm512_dpbf16_ps(sums[m][v], x, columns[v]);
    }
  }
#pragma GCC unroll 12
  for (int m = 0; m < M; ++m)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) store(r0 + m, col0 + v * kLanes, sums[m][v]);
}

// The last `rest` (< M) rows, one tile of exactly that many.
template <int M, int V, typename Store>
VIT_BF16_DOT_INLINE void tile_of_rest(int64_t rest, const PairRows& a, int64_t r0, const Word* b, int64_t b_row,
                                      int64_t col0, int64_t pairs, const Store& store) {
  if constexpr (M > 0) {
    if (rest == M) return tile<M, V>(a, r0, b, b_row, col0, pairs, store);
    tile_of_rest<M - 1, V>(rest, a, r0, b, b_row, col0, pairs, store);
  }
}

template <int M, int V, typename Store>
VIT_BF16_DOT_INLINE void rows_of_tiles(const PairRows& a, int64_t rows, const Word* b, int64_t b_row, int64_t col0,
                                       int64_t pairs, const Store& store) {
  int64_t r = 0;
  for (; r + M <= rows; r += M) tile<M, V>(a, r, b, b_row, col0, pairs, store);
  tile_of_rest<M - 1, V>(rows - r, a, r, b, b_row, col0, pairs, store);
}

// c (rows, vectors * 16) = a (rows, pairs) · b (pairs, vectors * 16), b's pairs packed as words (pairs, b_row). Tiles
// of 24 sums (of the 32 vector registers) where c is wide enough: 6 rows by 4 vectors, 8 by 3, 12 by 2 (a head's 32
// channels); each step then loads fewer values per dot product than a 4 x 4 tile does (a throwaway timing of these
// kernels, one thread, 65 tokens: 0.9x its time, forward and backward).
template <typename Store>
VIT_BF16_DOT void product(const PairRows& a, int64_t rows, const Word* b, int64_t b_row, int64_t vectors, int64_t pairs,
                          const Store& store) {
  int64_t v = 0;
  for (; v + 4 <= vectors; v += 4) rows_of_tiles<6, 4>(a, rows, b, b_row, v * kLanes, pairs, store);
  switch (vectors - v) {
    case 3:
      return rows_of_tiles<8, 3>(a, rows, b, b_row, v * kLanes, pairs, store);
    case 2:
      return rows_of_tiles<12, 2>(a, rows, b, b_row, v * kLanes, pairs, store);
    case 1:
      return rows_of_tiles<8, 1>(a, rows, b, b_row, v * kLanes, pairs, store);
    default:
      return;
  }
}

// The first `count` of 16 lanes.
VIT_BF16_DOT_INLINE __mmask16 first_lanes(int64_t count) {
  if (count <= 0) return 0;
  return count >= kLanes ? __mmask16{0xffff} : static_cast<__mmask16>((1u << count) - 1);
}

// 16 bf16 values (the first `count`, zeros after) as float32.
VIT_BF16_DOT_INLINE __m512 load_bf16(const uint16_t* x, int64_t count) {
  const __m256i bits = _mm256_maskz_loadu_epi16(first_lanes(count), x);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bits), 16));
}

// Rows of bf16 (`tokens` of them, `row` apart, `length` long) packed by token pairs: word (t / 2, c) of `width`
// words a row holds (x[t][c], x[t + 1][c]); a missing last row and the columns from `length` to `width` zero.
VIT_BF16_DOT void pack_token_pairs(const uint16_t* x, int64_t row, int64_t tokens, int64_t length, int64_t width,
                                   Word* out) {
  for (int64_t t = 0; t < tokens; t += 2) {
    const uint16_t* first = x + t * row;
    const uint16_t* second = first + row;
    const bool pair = t + 1 < tokens;
    for (int64_t c = 0; c < width; c += kLanes) {
      const __mmask16 valid = first_lanes(length - c);
      const __m512i low = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(valid, first + c));
      const __m512i high =
          pair ? _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(valid, second + c)) : _mm512_setzero_si512();
      _mm512_storeu_si512(out + t / 2 * width + c, _mm512_or_si512(low, _mm512_slli_epi32(high, 16)));
    }
  }
}

// 16 vectors of 16 words transposed in registers: r[i][j] becomes r[j][i]. Pairs of rows interleaved by words, then
// by double words (each 128-bit lane then holds four rows' values of one column), then lanes gathered across groups
// of four rows.
VIT_BF16_DOT_INLINE void transpose_16x16(__m512i r[16]) {
  __m512i t[16];
#pragma GCC unroll 16
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);      // per lane: r_i[0] r_i+1[0] r_i[1] r_i+1[1]
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);  // r_i[2] r_i+1[2] r_i[3] r_i+1[3]
  }
  __m512i u[16];  // u[4g + c], lane L: column c + 4L of rows 4g .. 4g + 3
#pragma GCC unroll 4
  for (int g = 0; g < 16; g += 4) {
    u[g] = _mm512_unpacklo_epi64(t[g], t[g + 2]);
    u[g + 1] = _mm512_unpackhi_epi64(t[g], t[g + 2]);
    u[g + 2] = _mm512_unpacklo_epi64(t[g + 1], t[g + 3]);
    u[g + 3] = _mm512_unpackhi_epi64(t[g + 1], t[g + 3]);
  }
#pragma GCC unroll 4
  for (int c = 0; c < 4; ++c) {
    const __m512i even01 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x88);  // lanes 0, 2 of groups 0 and 1
    const __m512i odd01 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xdd);   // lanes 1, 3
    const __m512i even23 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x88);
    const __m512i odd23 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xdd);
    r[c] = _mm512_shuffle_i32x4(even01, even23, 0x88);
    r[c + 4] = _mm512_shuffle_i32x4(odd01, odd23, 0x88);
    r[c + 8] = _mm512_shuffle_i32x4(even01, even23, 0xdd);
    r[c + 12] = _mm512_shuffle_i32x4(odd01, odd23, 0xdd);
  }
}

// Rows of bf16 (`tokens` of them, `row` apart, `channels` long) packed by channel pairs, transposed: word (c / 2, t)
// of `width` (a multiple of 16) words a row holds (x[t][c], x[t][c + 1]); the tokens from `tokens` to `width` zero.
// Blocks of 16 tokens by 16 pairs, transposed in registers.
VIT_BF16_DOT void pack_channel_pairs(const uint16_t* x, int64_t row, int64_t tokens, int64_t channels, int64_t width,
                                     Word* out) {
  const int64_t words = channels / 2;
  for (int64_t t0 = 0; t0 < width; t0 += kLanes) {
    for (int64_t w0 = 0; w0 < words; w0 += kLanes) {
      const __mmask16 valid = first_lanes(words - w0);
      __m512i block[16];
#pragma GCC unroll 16
      for (int i = 0; i < 16; ++i) {
        block[i] =
            t0 + i < tokens ? _mm512_maskz_loadu_epi32(valid, x + (t0 + i) * row + 2 * w0) : _mm512_setzero_si512();
      }
      transpose_16x16(block);
      for (int64_t j = 0; j < std::min<int64_t>(kLanes, words - w0); ++j)
        _mm512_storeu_si512(out + (w0 + j) * width + t0, block[j]);
    }
  }
}

// e^x in place for x <= 0 over `count` (a multiple of 16) floats: cpu_simd.h's at 16 lanes. Not given this file's
// target: its vectors then pass only between functions built alike (clang refuses a 512-bit vector passed between a
// function built for AVX-512 and one not); always inlined into its AVX-512 caller, and built for that.
[[gnu::always_inline]] inline void exp_nonpositive_in_place(float* x, int64_t count) {
  for (int64_t i = 0; i < count; i += kLanes)
    simd::store<kLanes>(x + i, simd::exp_nonpositive<kLanes>(simd::load<kLanes>(x + i)));
}

// One row of probabilities: softmax(scores[0, n) * scale) rounded to bf16 into probs[0, prob_row), the padding zero.
// The row's e^x are written back over its scores (a row of key_lanes()).
VIT_BF16_DOT_INLINE void softmax_row(float* scores, const Sizes& s, float scale, uint16_t* probs) {
  __m512 largest = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t j = 0; j < s.n; j += kLanes)
    largest = _mm512_mask_max_ps(largest, first_lanes(s.n - j), largest, _mm512_loadu_ps(scores + j));
  const __m512 shift = _mm512_set1_ps(_mm512_reduce_max_ps(largest) * scale);
  for (int64_t j = 0; j < s.n; j += kLanes)
    _mm512_storeu_ps(scores + j,
                     _mm512_sub_ps(_mm512_mul_ps(_mm512_loadu_ps(scores + j), _mm512_set1_ps(scale)), shift));
  exp_nonpositive_in_place(scores, s.key_lanes());
  __m512 total = _mm512_setzero_ps();
  for (int64_t j = 0; j < s.n; j += kLanes) {
    const __m512 e = _mm512_maskz_mov_ps(first_lanes(s.n - j), _mm512_loadu_ps(scores + j));  // padding: 0
    _mm512_storeu_ps(scores + j, e);
    total = _mm512_add_ps(total, e);
  }
  const __m512 inverse = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(total));
  for (int64_t j = 0; j < s.prob_row(); j += kLanes) {
    const __m256i p = (__m256i)_mm512_cvtneps_pbh(_mm512_mul_ps(_mm512_loadu_ps(scores + j), inverse));
    _mm256_mask_storeu_epi16(probs + j, first_lanes(s.prob_row() - j), p);
  }
}

// One row of the scores' gradient, the scale folded in: dS_j = p_j (dP_j - sum_j p_j dP_j) * scale, as bf16 into
// grad_scores[0, prob_row) (zero where p is: the padding).
VIT_BF16_DOT_INLINE void softmax_backward_row(const uint16_t* probs, const float* grad_probs, const Sizes& s,
                                              float scale, uint16_t* grad_scores) {
  __m512 dot = _mm512_setzero_ps();
  for (int64_t j = 0; j < s.prob_row(); j += kLanes)
    dot = _mm512_fmadd_ps(load_bf16(probs + j, s.prob_row() - j), _mm512_loadu_ps(grad_probs + j), dot);
  const __m512 sum = _mm512_set1_ps(_mm512_reduce_add_ps(dot));
  for (int64_t j = 0; j < s.prob_row(); j += kLanes) {
    const __m512 p = load_bf16(probs + j, s.prob_row() - j);
    const __m512 g =
        _mm512_mul_ps(_mm512_mul_ps(p, _mm512_sub_ps(_mm512_loadu_ps(grad_probs + j), sum)), _mm512_set1_ps(scale));
    _mm256_mask_storeu_epi16(grad_scores + j, first_lanes(s.prob_row() - j), (__m256i)_mm512_cvtneps_pbh(g));
  }
}

VIT_BF16_DOT void forward_on_avx512(const Sizes& s, const uint16_t* q, const uint16_t* k, const uint16_t* v,
                                    int64_t qkv_row, float scale, uint16_t* out, int64_t out_row, uint16_t* probs,
                                    float* scratch) {
  const int64_t keys = s.key_lanes();
  auto* k_columns = reinterpret_cast<Word*>(scratch);                        // (d / 2, keys): k^T by channel pairs
  Word* v_pairs = k_columns + s.channel_pairs() * keys;                      // (token pairs, d)
  auto* scores = reinterpret_cast<float*>(v_pairs + s.token_pairs() * s.d);  // (n, keys)
  pack_channel_pairs(k, qkv_row, s.n, s.d, keys, k_columns);
  pack_token_pairs(v, qkv_row, s.n, s.d, s.d, v_pairs);
  product(PairRows{reinterpret_cast<const Word*>(q), qkv_row / 2, 1}, s.n, k_columns, keys, keys / kLanes,
          s.channel_pairs(), ToFloat{scores, keys});  // S = q k^T
  for (int64_t i = 0; i < s.n; ++i) softmax_row(scores + i * keys, s, scale, probs + i * s.prob_row());
  product(PairRows{reinterpret_cast<const Word*>(probs), s.prob_row() / 2, 1}, s.n, v_pairs, s.d, s.d / kLanes,
          s.token_pairs(), ToBf16{out, out_row});  // o = P v
}

VIT_BF16_DOT void backward_on_avx512(const Sizes& s, const uint16_t* q, const uint16_t* k, const uint16_t* v,
                                     int64_t qkv_row, float scale, const uint16_t* grad_out, int64_t out_row,
                                     const uint16_t* probs, uint16_t* grad_q, uint16_t* grad_k, uint16_t* grad_v,
                                     float* scratch) {
  const int64_t keys = s.key_lanes(), pairs = s.token_pairs(), d = s.d;
  auto* v_columns = reinterpret_cast<Word*>(scratch);    // (d / 2, keys): v^T by channel pairs
  Word* k_pairs = v_columns + s.channel_pairs() * keys;  // (token pairs, d): k, q and dO by token pairs
  Word* q_pairs = k_pairs + pairs * d;
  Word* grad_out_pairs = q_pairs + pairs * d;
  Word* probs_pairs = grad_out_pairs + pairs * d;        // (query pairs, keys): P by query pairs, P^T's rows
  Word* grad_scores_pairs = probs_pairs + pairs * keys;  // the same for dS
  auto* grad_scores = reinterpret_cast<uint16_t*>(grad_scores_pairs + pairs * keys);           // (n, prob_row) bf16
  auto* grad_probs = reinterpret_cast<float*>(grad_scores + round_up(s.n * s.prob_row(), 2));  // (n, keys)

  pack_channel_pairs(v, qkv_row, s.n, d, keys, v_columns);
  product(PairRows{reinterpret_cast<const Word*>(grad_out), out_row / 2, 1}, s.n, v_columns, keys, keys / kLanes,
          s.channel_pairs(), ToFloat{grad_probs, keys});  // dP = dO v^T
  for (int64_t i = 0; i < s.n; ++i)
    softmax_backward_row(probs + i * s.prob_row(), grad_probs + i * keys, s, scale, grad_scores + i * s.prob_row());

  pack_token_pairs(k, qkv_row, s.n, d, d, k_pairs);
  product(PairRows{reinterpret_cast<const Word*>(grad_scores), s.prob_row() / 2, 1}, s.n, k_pairs, d, d / kLanes, pairs,
          ToBf16{grad_q, qkv_row});  // dq = dS k
  pack_token_pairs(grad_scores, s.prob_row(), s.n, s.prob_row(), keys, grad_scores_pairs);
  pack_token_pairs(q, qkv_row, s.n, d, d, q_pairs);
  product(PairRows{grad_scores_pairs, 1, keys}, s.n, q_pairs, d, d / kLanes, pairs,
          ToBf16{grad_k, qkv_row});  // dk = dS^T q
  pack_token_pairs(probs, s.prob_row(), s.n, s.prob_row(), keys, probs_pairs);
  pack_token_pairs(grad_out, out_row, s.n, d, d, grad_out_pairs);
  product(PairRows{probs_pairs, 1, keys}, s.n, grad_out_pairs, d, d / kLanes, pairs,
          ToBf16{grad_v, qkv_row});  // dv = P^T dO
}

}  // namespace
#endif  // VIT_HAVE_BF16_DOT

bool has_bf16_dot() {
#ifdef VIT_HAVE_BF16_DOT
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bf16");
  }();
  return has;
#else
  return false;
#endif
}

bool bf16_dot_head_dim_supported(int64_t head_dim) { return head_dim > 0 && head_dim % kLanes == 0; }

size_t Bf16DotHead::forward_scratch() const {
  const Sizes s{tokens, head_dim};
  return static_cast<size_t>(s.channel_pairs() * s.key_lanes() + s.token_pairs() * s.d + s.n * s.key_lanes());
}

size_t Bf16DotHead::backward_scratch() const {
  const Sizes s{tokens, head_dim};
  const int64_t keys = s.key_lanes(), pairs = s.token_pairs();
  return static_cast<size_t>(s.channel_pairs() * keys + 3 * pairs * s.d + 2 * pairs * keys +
                             round_up(s.n * s.prob_row(), 2) / 2 + s.n * keys);
}

void Bf16DotHead::forward(const uint16_t* q, const uint16_t* k, const uint16_t* v, int64_t qkv_row, float scale,
                          uint16_t* out, int64_t out_row, uint16_t* probs, float* scratch) const {
#ifdef VIT_HAVE_BF16_DOT
  forward_on_avx512(Sizes{tokens, head_dim}, q, k, v, qkv_row, scale, out, out_row, probs, scratch);
#else  // has_bf16_dot() is false: callers never get here
  (void)q, (void)k, (void)v, (void)qkv_row, (void)scale, (void)out, (void)out_row, (void)probs, (void)scratch;
#endif
}

void Bf16DotHead::backward(const uint16_t* q, const uint16_t* k, const uint16_t* v, int64_t qkv_row, float scale,
                           const uint16_t* grad_out, int64_t out_row, const uint16_t* probs, uint16_t* grad_q,
                           uint16_t* grad_k, uint16_t* grad_v, float* scratch) const {
#ifdef VIT_HAVE_BF16_DOT
  backward_on_avx512(Sizes{tokens, head_dim}, q, k, v, qkv_row, scale, grad_out, out_row, probs, grad_q, grad_k, grad_v,
                     scratch);
#else  // has_bf16_dot() is false: callers never get here
  (void)q, (void)k, (void)v, (void)qkv_row, (void)scale, (void)grad_out, (void)out_row, (void)probs, (void)grad_q,
      (void)grad_k, (void)grad_v, (void)scratch;
#endif
}

}  // namespace vit::cpu
