#pragma once
// The vector width of vit's own CPU kernels (cpu_softmax.h, cpu_layer_norm.h): 16 float lanes (AVX-512), 8 (AVX2)
// or 4 (the x86-64 baseline, and every other CPU), the widest this CPU runs unless narrowed.

namespace vit::cpu {

int vector_lanes();

// Narrows the width (tests run every width on a machine that has the widest); 0 or a width this CPU lacks restores
// the widest. Not thread-safe: set it before any kernel runs.
void set_vector_lanes(int lanes);

}  // namespace vit::cpu
