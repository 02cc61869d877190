# node-gyp build of the native backend's addon (native/*.cc), run by scripts/build-native.mjs during
# `npm ci`/`npm run build`. It lives in native/ (not the repository root) so that node-gyp's build/
# folder is native/build/ and never touches the root build/ (build/kernels.wasm), and so that npm does
# not run its implicit `node-gyp rebuild` on install, which would fail the install without a compiler.
# Compiled for the baseline x86-64 ISA: the AVX2 and AVX-512 kernels carry their own target attributes
# and are chosen at run time by CPUID.
{
  "targets": [
    {
      "target_name": "herd_native",
      "sources": ["napi.cc", "napi_graph.cc", "herd.cc", "gemv.cc", "attention.cc", "rows.cc", "simd_avx512.cc", "simd_avx2.cc", "simd_generic.cc", "quant.cc", "q8dot.cc", "kquant.cc", "memory.cc", "graph.cc", "cpu.cc"],
      "cflags": ["-O3", "-fno-math-errno"],
      "cflags_cc": ["-O3", "-std=c++17", "-fno-math-errno"],
      "cflags!": ["-O2"],
      "cflags_cc!": ["-O2"],
      "libraries": ["-lpthread"]
    }
  ]
}
