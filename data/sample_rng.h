#pragma once
// The random-number engine of the image pipeline: one per image, seeded from (seed, epoch, image index), so an
// image's augmentation is the same whatever the number of loader threads or their timing.
//
// Why not std::mt19937: seeding one costs more than augmenting a small image (624 words of state built from a
// seed_seq, then regenerated at the first draw: 85% of the loader's time on Fashion-MNIST, measured with perf).
// This is xoshiro256** (Blackman and Vigna, "Scrambled linear pseudorandom number generators", 2021; .NET's
// default generator), 32 bytes of state filled by splitmix64 as its authors recommend; it meets the standard's
// UniformRandomBitGenerator, so the <random> distributions take it.

#include <array>
#include <cstdint>
#include <limits>

namespace vit::data {

class SampleRng {
 public:
  using result_type = uint64_t;

  explicit SampleRng(uint64_t seed, uint64_t epoch = 0, uint64_t index = 0) {
    // splitmix64 over the three keys in turn: every key changes every word of the state.
    uint64_t mix = seed;
    for (uint64_t key : {epoch, index}) mix = splitmix64(mix) ^ key;
    for (auto& word : state_) word = splitmix64(mix);
  }

  // An engine with exactly this state (not all zero), for checking against the reference implementation.
  static SampleRng from_state(const std::array<uint64_t, 4>& state) {
    SampleRng rng(0);
    for (size_t i = 0; i < 4; ++i) rng.state_[i] = state[i];
    return rng;
  }

  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return std::numeric_limits<result_type>::max(); }

  // Equal engines produce equal sequences (as the standard engines' operator==).
  friend bool operator==(const SampleRng& a, const SampleRng& b) {
    return a.state_[0] == b.state_[0] && a.state_[1] == b.state_[1] && a.state_[2] == b.state_[2] &&
           a.state_[3] == b.state_[3];
  }
  friend bool operator!=(const SampleRng& a, const SampleRng& b) { return !(a == b); }

  result_type operator()() {
    const uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  // Advances `x` and returns the next output of the splitmix64 sequence.
  static uint64_t splitmix64(uint64_t& x) {
    uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

  uint64_t state_[4];
};

}  // namespace vit::data
