// The CPU's vector units, the BLAS under LibTorch and its kernels, and the matmul yardstick (see
// blas_kernels.h). OpenBLAS's entry points are looked up at run time, as launcher/threads.cpp does, so the
// same code reports MKL (the torch wheel) or the reference BLAS and changes nothing there.
#include "runtime/blas_kernels.h"

#include <dlfcn.h>
#include <strings.h>

#include <ATen/Version.h>
#include <torch/torch.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <sstream>
#include <vector>

#include "core/log.h"
#include "core/stopwatch.h"

namespace facetrain {

std::string CpuFeatures::flags() const {
  std::string out;
  for (const auto& [present, flag] : {std::pair{avx2, "avx2"},
                                      {fma, "fma"},
                                      {avx512f, "avx512f"},
                                      {avx512_bf16, "avx512_bf16"},
                                      {amx_bf16, "amx_bf16"}}) {
    if (present) out += (out.empty() ? "" : " ") + std::string(flag);
  }
  return out.empty() ? "no avx2" : out;
}

CpuFeatures cpu_features() {
  CpuFeatures cpu;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  cpu.avx2 = __builtin_cpu_supports("avx2");
  cpu.fma = __builtin_cpu_supports("fma");
  cpu.avx512f = __builtin_cpu_supports("avx512f");
  // Leaf 7 directly for the bf16 units: older compilers' cpu_supports does not know their names. Both need
  // the AVX-512 (or AMX tile) state that avx512f's check already found enabled by the OS.
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) cpu.avx512_bf16 = cpu.avx512f && (a & (1u << 5));
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) cpu.amx_bf16 = (d & (1u << 22)) != 0;
  char brand[49] = {0};
  if (__get_cpuid_max(0x80000000u, nullptr) >= 0x80000004u) {
    for (unsigned i = 0; i < 3; ++i) {
      __get_cpuid(0x80000002u + i, &a, &b, &c, &d);
      const unsigned regs[4] = {a, b, c, d};
      std::memcpy(brand + 16 * i, regs, sizeof(regs));
    }
  }
  cpu.name = brand;
  cpu.name.erase(0, cpu.name.find_first_not_of(' '));
  cpu.name.erase(cpu.name.find_last_not_of(' ') + 1);
#endif
  if (cpu.name.empty()) cpu.name = "unknown CPU";
  return cpu;
}

namespace {

// The first line of LibTorch's build configuration that contains `key`, trimmed; "" when none.
std::string torch_config_line(const std::string& config, const std::string& key) {
  std::istringstream lines(config);
  for (std::string line; std::getline(lines, line);) {
    if (line.find(key) == std::string::npos) continue;
    line.erase(0, line.find_first_not_of(" -"));
    return line;
  }
  return "";
}

}  // namespace

BlasKernels blas_kernels() {
  BlasKernels blas;
  using Text = char* (*)();
  const auto corename = reinterpret_cast<Text>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  const auto config = reinterpret_cast<Text>(dlsym(RTLD_DEFAULT, "openblas_get_config"));
  if (corename != nullptr && config != nullptr) {
    // "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Zen MAX_THREADS=64"
    const std::string built = config();
    std::istringstream words(built);
    std::string name, version;
    words >> name >> version;
    blas.library = "OpenBLAS " + version;
    blas.core = corename();
    blas.dynamic = built.find("DYNAMIC_ARCH") != std::string::npos;
    return blas;
  }
  // Another BLAS. The torch wheel links MKL into libtorch_cpu.so, where no symbol answers: its build
  // configuration names it. Else the library that holds sgemm_ (Debian's reference BLAS, say).
  const std::string built = at::show_config();
  const std::string mkl = torch_config_line(built, "Math Kernel Library");
  if (!mkl.empty()) {
    blas.library = "MKL (" + mkl + ")";
    return blas;
  }
  Dl_info where{};
  if (void* sgemm = dlsym(RTLD_DEFAULT, "sgemm_"); sgemm != nullptr && dladdr(sgemm, &where) && where.dli_fname) {
    blas.library = std::string("the BLAS in ") + where.dli_fname;
    return blas;
  }
  const std::string info = torch_config_line(built, "BLAS_INFO");
  blas.library = info.empty() ? "an unknown BLAS" : "LibTorch's BLAS (" + info + ")";
  return blas;
}

std::string describe(const BlasKernels& blas) {
  if (blas.core.empty()) return blas.library + " (LibTorch's; its kernels are its own choice)";
  return blas.library + ", " + blas.core + " kernels" + (blas.choice.empty() ? "" : " (" + blas.choice + ")");
}

bool is_generic_openblas_core(const std::string& core) {
  // OpenBLAS 0.3.21's x86 core names (driver/others/dynamic.c) whose kernels have no AVX2 FMA. Haswell, Zen,
  // SkylakeX, Cooperlake, SapphireRapids and Excavator are not among them, nor any name a later OpenBLAS adds.
  static const char* const kGeneric[] = {"Katmai", "Coppermine",  "Northwood",    "Prescott",   "Banias",
                                         "Atom",   "Core2",       "Penryn",       "Dunnington", "Nehalem",
                                         "Athlon", "Opteron",     "Opteron_SSE3", "Barcelona",  "Nano",
                                         "Bobcat", "Sandybridge", "Bulldozer",    "Piledriver", "Steamroller"};
  return std::any_of(std::begin(kGeneric), std::end(kGeneric),
                     [&](const char* name) { return strcasecmp(name, core.c_str()) == 0; });
}

std::string openblas_core_for(const CpuFeatures& cpu) {
  // SkylakeX also for CPUs with avx512_bf16: Cooperlake's kernels differ from it only in sbgemm (bf16 GEMM),
  // which LibTorch never calls, and Debian's OpenBLAS 0.3.21 does not take the name (measured:
  // OPENBLAS_CORETYPE=Cooperlake prints "Core not found" and runs Haswell's kernels).
  if (cpu.avx512f) return "SkylakeX";
  if (cpu.avx2 && cpu.fma) return "Haswell";
  return "";
}

double MatmulRates::bf16_gain() const {
  return bf16_size == kMatmulSize && fp32_gflops > 0 ? bf16_gflops / fp32_gflops : 0;
}

namespace {

double gflops(int64_t n, double seconds) { return 2.0 * n * n * n / seconds / 1e9; }

// One n^3 matmul of `dtype`, ready to be timed: its first run (untimed) starts the thread pools, sizes the
// packing buffers and lets oneDNN generate its kernels. Every run writes into that first run's output, so
// the kernels are timed, not the allocator.
struct TimedMatmul {
  TimedMatmul(int64_t n, torch::ScalarType dtype)
      : n(n), a(torch::randn({n, n}).to(dtype)), b(torch::randn({n, n}).to(dtype)), c(torch::mm(a, b)) {}
  // Times one run; keeps the fastest, the rate the kernels reach undisturbed by a busy neighbour.
  double run() {
    const auto t = Clock::now();
    torch::mm_out(c, a, b);
    const double seconds = seconds_since(t);
    fastest = std::min(fastest, seconds);
    return seconds;
  }
  double rate() const { return gflops(n, fastest); }
  int64_t n;
  torch::Tensor a, b, c;
  double fastest = std::numeric_limits<double>::infinity();
};

}  // namespace

MatmulRates measure_matmul_rates(int threads) {
  torch::NoGradGuard no_grad;
  constexpr int64_t n = MatmulRates::kMatmulSize;
  // bf16 is timed at 128^3 first: without bf16 units LibTorch emulates it at 1-5 GFLOP/s, where each 256^3
  // would take 7-30 ms. It runs at 256^3 only when that takes at most kBf16Seconds by the small run's rate
  // (a larger matmul runs at least as fast per FLOP, so this overestimates). The two precisions run in
  // turns, so that a burst of load on a shared machine slows both rather than one.
  constexpr int64_t kSmall = 128;
  constexpr double kBf16Seconds = 0.003, kBudgetSeconds = 0.010;
  constexpr int kRuns = 8;
  MatmulRates rates;
  rates.threads = threads;
  TimedMatmul fp32(n, torch::kFloat32);
  TimedMatmul small(kSmall, torch::kBFloat16);
  small.run();
  const double cubed = static_cast<double>(n / kSmall) * (n / kSmall) * (n / kSmall);
  std::unique_ptr<TimedMatmul> bf16;
  if (small.fastest * cubed <= kBf16Seconds) bf16 = std::make_unique<TimedMatmul>(n, torch::kBFloat16);
  double spent = 0;
  for (int i = 0; i < kRuns && (i == 0 || spent < kBudgetSeconds); ++i) {
    spent += fp32.run();
    spent += bf16 ? bf16->run() : 0;
  }
  rates.fp32_gflops = fp32.rate();
  rates.bf16_gflops = bf16 ? bf16->rate() : small.rate();
  rates.bf16_size = bf16 ? n : kSmall;
  return rates;
}

std::string describe(const MatmulRates& rates) {
  if (rates.threads == 0) return "matmul not measured";
  const auto size = [](int64_t n) { return std::to_string(n) + "^3"; };
  std::string out = "matmul " + size(MatmulRates::kMatmulSize) + " on " + std::to_string(rates.threads) + " thread" +
                    (rates.threads == 1 ? "" : "s") + ": fp32 " + fixed_decimals(rates.fp32_gflops, 1) +
                    " GFLOP/s, bf16 " + fixed_decimals(rates.bf16_gflops, 1) + " GFLOP/s";
  if (rates.bf16_size != MatmulRates::kMatmulSize) {
    out += " (at " + size(rates.bf16_size) + ": too slow for " + size(MatmulRates::kMatmulSize) + ")";
  }
  return out;
}

double measure_matmul_gflops() {
  torch::NoGradGuard no_grad;
  auto a = torch::randn({1024, 1024});
  auto b = torch::randn({1024, 1024});
  auto c = torch::matmul(a, b);  // warm-up
  std::vector<double> rates;
  for (int i = 0; i < 5; ++i) {
    const auto t = Clock::now();
    c = torch::matmul(a, b);
    rates.push_back(gflops(1024, seconds_since(t)));
  }
  return median(rates);
}

}  // namespace facetrain
