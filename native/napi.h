// The N-API side of the native backend, shared by its binding files (napi.cc: every kernel but the
// graph's, and ModuleInit; napi_graph.cc: graphCreate/graphRun/graphFree): Args, which reads and checks
// a call's arguments (typed arrays of a type and a least length, numbers, the argument records such as
// MatmulArgs by field name) and throws the TypeError that tests and callers see, and the registration
// of each file's functions on the addon's exports. Only the binding files include this (and node_api.h);
// the kernels they call are declared in herd.h.
#pragma once
#include <node_api.h>

#include <string>

#include "herd.h"

namespace herd {

struct Args {
  napi_env env;
  napi_value v[16];
  size_t n = 16;
  bool failed = false;
  Args(napi_env e, napi_callback_info info) : env(e) { napi_get_cb_info(e, info, &n, v, nullptr, nullptr); }
  void fail(const char* msg) {
    if (!failed) napi_throw_type_error(env, nullptr, msg);
    failed = true;
  }
  // A typed array of the given type with at least `need` elements (null allowed when `nullable`).
  void* arr(size_t i, napi_typedarray_type want, int64_t need, bool nullable = false) {
    return failed ? nullptr : arrOf(v[i], want, need, nullable);
  }
  void* arrOf(napi_value x, napi_typedarray_type want, int64_t need, bool nullable = false) {
    if (failed) return nullptr;
    napi_valuetype t;
    napi_typeof(env, x, &t);
    if (nullable && (t == napi_null || t == napi_undefined)) return nullptr;
    bool is = false;
    napi_is_typedarray(env, x, &is);
    if (!is) return fail("herd native: expected a typed array"), nullptr;
    napi_typedarray_type type;
    size_t len;
    void* data;
    napi_get_typedarray_info(env, x, &type, &len, &data, nullptr, nullptr);
    if (type != want) return fail("herd native: wrong typed array type"), nullptr;
    if (need < 0 || (int64_t)len < need) return fail("herd native: buffer too small for the shape"), nullptr;
    return data;
  }
  // Field `name` of the argument record at i (the backend interface's MatmulArgs, AttentionArgs, …).
  napi_value field(size_t i, const char* name) {
    napi_value out = nullptr;
    if (failed) return nullptr;
    napi_valuetype t;
    napi_typeof(env, v[i], &t);
    bool has = false;
    if (t != napi_object || napi_has_named_property(env, v[i], name, &has) != napi_ok || !has ||
        napi_get_named_property(env, v[i], name, &out) != napi_ok) {
      const std::string m = std::string("herd native: the argument record lacks '") + name + "'";
      napi_throw_type_error(env, nullptr, m.c_str());
      failed = true;
      return nullptr;
    }
    return out;
  }
  double numField(size_t i, const char* name) {
    napi_value f = field(i, name);
    double d = 0;
    if (!failed && napi_get_value_double(env, f, &d) != napi_ok) fail("herd native: expected a number in the record");
    return d;
  }
  int64_t sizeField(size_t i, const char* name) {
    const double d = numField(i, name);
    if (!failed && !(d >= 0 && d == (double)(int64_t)d)) fail("herd native: record sizes must be non-negative integers");
    return failed ? 0 : (int64_t)d;
  }
  bool flagField(size_t i, const char* name) {
    napi_value f = field(i, name);
    bool b = false;
    if (!failed && napi_get_value_bool(env, f, &b) != napi_ok) fail("herd native: expected a boolean in the record");
    return b;
  }
  float* f32(size_t i, int64_t need, bool nullable = false) {
    return static_cast<float*>(arr(i, napi_float32_array, need, nullable));
  }
  double num(size_t i) {
    double d = 0;
    if (!failed && napi_get_value_double(env, v[i], &d) != napi_ok) fail("herd native: expected a number");
    return d;
  }
  int64_t i64(size_t i) {
    double d = num(i);
    if (!(d >= 0)) fail("herd native: expected a non-negative size");
    return (int64_t)d;
  }
  bool flag(size_t i) {
    bool b = false;
    if (!failed && napi_get_value_bool(env, v[i], &b) != napi_ok) fail("herd native: expected a boolean");
    return b;
  }
};

inline napi_value undef(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

// Elements a batch of matrices needs: (batch-1)·stride + size, or size when the stride is 0.
inline int64_t span(int64_t batch, int64_t stride, int64_t size) {
  return batch == 0 ? 0 : (batch - 1) * stride + size;
}

struct NamedFn {
  const char* name;
  napi_callback fn;
};

// Set exports[name] = fn for each entry.
inline void registerFns(napi_env env, napi_value exports, const NamedFn* fns, size_t count) {
  for (size_t i = 0; i < count; i++) {
    napi_value v;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, nullptr, &v);
    napi_set_named_property(env, exports, fns[i].name, v);
  }
}

// One per binding file; napi.cc's ModuleInit calls them all.
void registerKernels(napi_env env, napi_value exports);  // napi.cc: every kernel but the graph's
void registerGraph(napi_env env, napi_value exports);    // napi_graph.cc: recorded kernel calls, replayed

}  // namespace herd
