// What this process's matrix arithmetic runs on: the CPU's vector units (cpuid), the BLAS under LibTorch and
// the kernels it chose (OpenBLAS chooses once, when it loads), and the matmul rates measured here. One owner
// of the matmul yardstick: the start-up line, the run summary, `facetrain bench step` and every "this would
// be faster" hint quote these measurements, never a CPU flag alone.
#pragma once

#include <cstdint>
#include <string>

namespace facetrain {

// The vector units that decide which BLAS kernels fit, from cpuid (false on other architectures). avx2,
// fma and avx512f count only when the OS saves their registers (what the compiler's cpu_supports checks).
struct CpuFeatures {
  std::string name;  // the CPU's brand string ("AMD EPYC", "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz")
  bool avx2 = false, fma = false, avx512f = false, avx512_bf16 = false, amx_bf16 = false;
  // Those present, as /proc/cpuinfo spells them ("avx2 fma"), or "no avx2".
  std::string flags() const;
};
CpuFeatures cpu_features();

// The BLAS that LibTorch's float matmuls call and, for OpenBLAS, the kernels it chose. Found through the
// process's symbols (dlsym), so any BLAS may sit behind libblas.so.3 and no BLAS routine runs.
struct BlasKernels {
  std::string library;   // "OpenBLAS 0.3.21", "MKL" (the torch wheel), else what LibTorch was built with
  std::string core;      // OpenBLAS's kernels ("Haswell", "Zen", "Prescott"); empty for another BLAS
  bool dynamic = false;  // OpenBLAS built with DYNAMIC_ARCH: OPENBLAS_CORETYPE can choose its kernels
  std::string choice;    // how the kernels were chosen, for the start-up line (the launcher says: blas_start.h)
};
BlasKernels blas_kernels();
// "OpenBLAS 0.3.21, Haswell kernels (<choice>)", "MKL (LibTorch's; its kernels are its own choice)".
std::string describe(const BlasKernels& blas);

// True for OpenBLAS's kernels below Haswell (Prescott, Core2, Nehalem, Sandybridge, ... : no AVX2 FMA), the
// generic ones it falls back to on a CPU it does not know.
bool is_generic_openblas_core(const std::string& core);
// The OpenBLAS kernels (an OPENBLAS_CORETYPE value) for `cpu`: "SkylakeX" with AVX-512, "Haswell" with AVX2
// and FMA, "" when the generic kernels are all it can run.
std::string openblas_core_for(const CpuFeatures& cpu);

// Matmul rates of this process at start-up, with its current thread count, GFLOP/s: a few milliseconds of
// fp32 and of bf16 (what the forward pass runs under distributed.precision=bf16) at kMatmulSize^3, the size
// of the ViTs' GEMMs (width 192-768). bf16 is first timed at a small size: where it would take more than a
// few milliseconds at kMatmulSize (no bf16 units: it is emulated) it is not run there, and bf16_size says at
// which size it was measured. 256^3 rather than 512^3: a run of ~0.5 ms fits between the preemptions of a
// busy machine, so the fastest of several is the kernels' rate (at 512^3, ~5 ms a run, start-up rates on a
// 2-core machine shared with builds came out at 12-35 GFLOP/s where OpenBLAS does 61; at 256^3 it does 69).
struct MatmulRates {
  static constexpr int64_t kMatmulSize = 256;
  int threads = 0;  // 0: not measured
  double fp32_gflops = 0, bf16_gflops = 0;
  int64_t bf16_size = 0;
  // bf16 over fp32 at the same size; 0 when bf16 was measured only at a smaller size (no claim made then).
  double bf16_gain() const;
};
// At most ~25 ms (runs stop after 10 ms of them), ~10 ms on an AVX2 core; `threads`: the compute threads set
// now (launcher/threads.h), recorded.
MatmulRates measure_matmul_rates(int threads);
// "matmul 256^3 on 2 threads: fp32 95.1 GFLOP/s, bf16 3.2 GFLOP/s (at 128^3: too slow for 256^3)".
std::string describe(const MatmulRates& rates);

// The least measured gain a hint names: below it a "faster" suggestion is within what a busy machine and a
// different workload move by, so the hint stays silent.
constexpr double kHintMinGain = 1.3;

// Plain 1024^3 float32 matmul rate of this process now, GFLOP/s (median of 5): the yardstick beside a
// model's achieved GFLOP/s in run summaries and `facetrain bench step` (a few hundred ms: not at start-up).
double measure_matmul_gflops();

}  // namespace facetrain
