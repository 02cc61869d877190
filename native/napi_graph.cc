// The N-API bindings of the recorded kernel graphs (graph.cc; src/backends/native/graph.ts):
// graphCreate reads a graph's flat arrays into a Graph (herd.h), owned by an external handle that frees
// it when collected or at graphFree; graphRun patches the parameter-dependent numbers and replays the
// nodes (runGraph), turning a refused node into a RangeError. Apart from napi.cc only to keep that file
// short; the same constraints hold (argument checks and errors here, every kernel call in graph.cc).
#include <string>

#include "napi.h"

namespace herd {
namespace {

// The element type of a typed array, as the graph's nodes check it.
BufType bufType(napi_typedarray_type t) {
  switch (t) {
    case napi_float32_array: return BufType::F32;
    case napi_uint16_array: return BufType::U16;
    case napi_int32_array: return BufType::I32;
    case napi_uint8_array: return BufType::U8;
    default: return BufType::Other;
  }
}

struct Handle {
  Graph* g;
};

void finalize(napi_env, void* data, void*) {
  Handle* h = static_cast<Handle*>(data);
  delete h->g;
  delete h;
}

template <typename T>
const T* typed(Args& A, size_t i, napi_typedarray_type t, size_t* len) {
  bool is = false;
  napi_is_typedarray(A.env, A.v[i], &is);
  napi_typedarray_type type;
  void* data = nullptr;
  if (!is || napi_get_typedarray_info(A.env, A.v[i], &type, len, &data, nullptr, nullptr) != napi_ok || type != t)
    return A.fail("herd native: graphCreate takes typed arrays of the documented types"), nullptr;
  return static_cast<const T*>(data);
}

// graphCreate(kinds: Int32Array, bufStart: Int32Array, bufs: (typed array | null)[], numStart: Int32Array,
//             nums: Float64Array, dyn: Float64Array) → handle
//   node i has buffers bufs[bufStart[i] .. bufStart[i+1]) and numbers nums[numStart[i] .. numStart[i+1]);
//   dyn holds quadruples (number index, parameter, mul, add).
napi_value GraphCreate(napi_env env, napi_callback_info info) {
  Args A(env, info);
  size_t nk = 0, nbs = 0, nns = 0, nnum = 0, ndyn = 0;
  const int32_t* kinds = typed<int32_t>(A, 0, napi_int32_array, &nk);
  const int32_t* bufStart = A.failed ? nullptr : typed<int32_t>(A, 1, napi_int32_array, &nbs);
  const int32_t* numStart = A.failed ? nullptr : typed<int32_t>(A, 3, napi_int32_array, &nns);
  const double* nums = A.failed ? nullptr : typed<double>(A, 4, napi_float64_array, &nnum);
  const double* dyn = A.failed ? nullptr : typed<double>(A, 5, napi_float64_array, &ndyn);
  uint32_t nb = 0;
  if (!A.failed && napi_get_array_length(env, A.v[2], &nb) != napi_ok) A.fail("herd native: graphCreate bufs must be an array");
  if (A.failed) return undef(env);
  if (nbs != nk + 1 || nns != nk + 1 || ndyn % 4 != 0 || bufStart[nk] != (int32_t)nb || numStart[nk] != (int32_t)nnum)
    return A.fail("herd native: graphCreate offsets do not match the arrays"), undef(env);
  auto* G = new Graph();
  for (size_t i = 0; i < nk; i++) {
    const int32_t b0 = bufStart[i], b1 = bufStart[i + 1], n0 = numStart[i], n1 = numStart[i + 1];
    if (b0 < 0 || b1 < b0 || n0 < 0 || n1 < n0) {
      delete G;
      return A.fail("herd native: graphCreate offsets must not decrease"), undef(env);
    }
    G->nodes.push_back(Node{kinds[i], b0, b1 - b0, n0, n1 - n0});
  }
  G->nums.assign(nums, nums + nnum);
  for (uint32_t j = 0; j < nb; j++) {
    napi_value e;
    napi_get_element(env, A.v[2], j, &e);
    Buf B;
    bool is = false;
    napi_is_typedarray(env, e, &is);
    if (is) {
      size_t len = 0;
      napi_typedarray_type type;
      napi_get_typedarray_info(env, e, &type, &len, &B.p, nullptr, nullptr);
      B.type = bufType(type);
      B.len = (int64_t)len;
    }
    G->bufs.push_back(B);
  }
  for (size_t j = 0; j < ndyn; j += 4) {
    const Dyn d{(int32_t)dyn[j], (int32_t)dyn[j + 1], dyn[j + 2], dyn[j + 3]};
    if (d.num < 0 || d.num >= (int32_t)nnum || d.param < 0) {
      delete G;
      return A.fail("herd native: graphCreate dyn names a number or parameter that does not exist"), undef(env);
    }
    G->dyn.push_back(d);
  }
  napi_value out;
  auto* h = new Handle{G};
  napi_create_external(env, h, finalize, nullptr, &out);
  return out;
}

Graph* graphOf(Args& A) {
  Handle* h = nullptr;
  napi_valuetype t;
  napi_typeof(A.env, A.v[0], &t);
  if (t != napi_external || napi_get_value_external(A.env, A.v[0], reinterpret_cast<void**>(&h)) != napi_ok || !h)
    return A.fail("herd native: expected a graph handle"), nullptr;
  if (!h->g) return A.fail("herd native: graph used after graphFree"), nullptr;
  return h->g;
}

// graphRun(handle, params: Float64Array)
napi_value GraphRun(napi_env env, napi_callback_info info) {
  Args A(env, info);
  Graph* G = graphOf(A);
  size_t np = 0;
  const double* params = A.failed ? nullptr : typed<double>(A, 1, napi_float64_array, &np);
  if (A.failed) return undef(env);
  for (const Dyn& d : G->dyn) {
    if (d.param >= (int32_t)np) return A.fail("herd native: graphRun is missing a parameter"), undef(env);
    G->nums[d.num] = params[d.param] * d.mul + d.add;
  }
  const std::string err = runGraph(*G);
  if (!err.empty()) napi_throw_range_error(env, nullptr, err.c_str());
  return undef(env);
}

// graphFree(handle): release it now (the handle's finalizer would later).
napi_value GraphFree(napi_env env, napi_callback_info info) {
  Args A(env, info);
  Handle* h = nullptr;
  if (napi_get_value_external(env, A.v[0], reinterpret_cast<void**>(&h)) == napi_ok && h) {
    delete h->g;
    h->g = nullptr;
  }
  return undef(env);
}

}  // namespace

void registerGraph(napi_env env, napi_value exports) {
  static const NamedFn fns[] = {{"graphCreate", GraphCreate}, {"graphRun", GraphRun}, {"graphFree", GraphFree}};
  registerFns(env, exports, fns, sizeof(fns) / sizeof(fns[0]));
}

}  // namespace herd
