// Weight-only quantised inference: Q8_0 and Q4_0 blocks (GGUF layouts) and the decode GEMV over
// them. Reference: the js kernels in src/tensor/ (see src/backends/backend.ts).
#include "herd.h"

namespace herd {
namespace {}  // namespace

void registerQuant(napi_env env, napi_value exports) {
  (void)env;
  (void)exports;
}

}  // namespace herd
