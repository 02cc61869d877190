# llama.cpp's own quantiser, for test/model/ggufQuantize.test.ts: calls the shared libraries that
# node-llama-cpp ships prebuilt (no build), through ctypes.
#   python3 llamacpp_quantize.py LIBDIR rows TYPE IN.f32 OUT.bin   quantize_row_<TYPE>_ref over IN's f32s
#   python3 llamacpp_quantize.py LIBDIR file FTYPE IN.gguf OUT.gguf llama_model_quantize (enum llama_ftype)
# Exit status 0 on success; errors go to stderr.
import ctypes
import os
import sys

libdir, mode, kind, src, dst = sys.argv[1:6]

if mode == "rows":
    base = ctypes.CDLL(os.path.join(libdir, "libggml-base.so"))
    block = {"q4_K": (256, 144), "q5_K": (256, 176), "q6_K": (256, 210), "q5_0": (32, 22), "q5_1": (32, 24)}[kind]
    data = open(src, "rb").read()
    n = len(data) // 4
    x = (ctypes.c_float * n).from_buffer_copy(data)
    out = (ctypes.c_uint8 * (n // block[0] * block[1]))()
    f = getattr(base, "quantize_row_%s_ref" % kind)
    f.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    f.restype = None
    f(ctypes.addressof(x), ctypes.addressof(out), n)
    open(dst, "wb").write(bytes(out))
elif mode == "file":

    class Params(ctypes.Structure):  # llama.h: struct llama_model_quantize_params
        _fields_ = [
            ("nthread", ctypes.c_int32),
            ("ftype", ctypes.c_int),
            ("output_tensor_type", ctypes.c_int),
            ("token_embedding_type", ctypes.c_int),
            ("allow_requantize", ctypes.c_bool),
            ("quantize_output_tensor", ctypes.c_bool),
            ("only_copy", ctypes.c_bool),
            ("pure", ctypes.c_bool),
            ("keep_split", ctypes.c_bool),
            ("dry_run", ctypes.c_bool),
            ("imatrix", ctypes.c_void_p),
            ("kv_overrides", ctypes.c_void_p),
            ("tt_overrides", ctypes.c_void_p),
            ("prune_layers", ctypes.c_void_p),
            ("max_buf_size", ctypes.c_size_t),
        ]

    lib = ctypes.CDLL(os.path.join(libdir, "libllama.v0.5.0.so"))
    lib.llama_model_quantize_default_params.restype = Params
    lib.llama_model_quantize.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(Params)]
    lib.llama_model_quantize.restype = ctypes.c_uint32
    lib.llama_backend_init()
    p = lib.llama_model_quantize_default_params()
    p.ftype = int(kind)
    p.nthread = 1
    status = lib.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(p))
    sys.exit(1 if status else 0)
else:
    sys.exit("mode must be rows or file")
