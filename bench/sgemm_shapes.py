#!/usr/bin/env python3
"""Float32 matrix products of a ViT's shapes through the two libraries vit could use on CPU: oneDNN's
dnnl_sgemm (libdnnl.so.2, what models/cpu_gemm.h calls) and the system BLAS's sgemm_ (libblas.so.3, which
install-deps.sh points at OpenBLAS with OpenMP, and which Debian's LibTorch uses for float32 mm). Both called
through ctypes on the same numpy arrays, with the same thread count; GFLOP/s, median of 10 calls after one.
Not a test: the figures behind cpu_gemm.h's choice.

usage: OMP_NUM_THREADS=2 /usr/bin/python3 bench/sgemm_shapes.py
"""
import ctypes
import statistics
import time

import numpy as np

# (what, transpose A, transpose B, M, N, K): row-major C (M x N) = op(A) op(B); vit_mini_patch4_32 at batch 256
# (16,640 token rows, width 128) and vit_tiny_patch16_224 at batch 32 (6,304 token rows, width 192).
SHAPES = [
    ("mini qkv forward", False, True, 16640, 384, 128),
    ("mini qkv backward dX", False, False, 16640, 128, 384),
    ("mini qkv backward dW", True, False, 384, 128, 16640),
    ("mini fc1 forward", False, True, 16640, 256, 128),
    ("mini fc2 forward", False, True, 16640, 128, 256),
    ("mini fc2 backward dW", True, False, 128, 256, 16640),
    ("tiny qkv forward", False, True, 6304, 576, 192),
    ("tiny qkv backward dW", True, False, 576, 192, 6304),
]


def median_seconds(call):
    call()
    times = []
    for _ in range(10):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    dnnl = ctypes.CDLL("libdnnl.so.2")
    blas = ctypes.CDLL("libblas.so.3")
    f32p = ctypes.POINTER(ctypes.c_float)
    dnnl.dnnl_sgemm.argtypes = [ctypes.c_char, ctypes.c_char] + [ctypes.c_int64] * 3 + [
        ctypes.c_float, f32p, ctypes.c_int64, f32p, ctypes.c_int64, ctypes.c_float, f32p, ctypes.c_int64]
    print(f"{'shape':<22} {'M x N x K':>20} {'OpenBLAS':>10} {'oneDNN':>10}  GFLOP/s")
    for what, ta, tb, m, n, k in SHAPES:
        a = np.random.rand(*((k, m) if ta else (m, k))).astype(np.float32)
        b = np.random.rand(*((n, k) if tb else (k, n))).astype(np.float32)
        c = np.zeros((m, n), np.float32)
        lda, ldb = a.shape[1], b.shape[1]
        ptr = lambda x: x.ctypes.data_as(f32p)

        def onednn():
            dnnl.dnnl_sgemm(b"T" if ta else b"N", b"T" if tb else b"N", m, n, k, 1.0, ptr(a), lda, ptr(b), ldb, 0.0,
                            ptr(c), n)

        # Fortran BLAS is column-major: row-major C = A B is column-major C^T = B^T A^T.
        i = lambda v: ctypes.byref(ctypes.c_int(v))
        f = lambda v: ctypes.byref(ctypes.c_float(v))

        def openblas():
            blas.sgemm_(ctypes.c_char_p(b"T" if tb else b"N"), ctypes.c_char_p(b"T" if ta else b"N"), i(n), i(m), i(k),
                        f(1.0), ptr(b), i(ldb), ptr(a), i(lda), f(0.0), ptr(c), i(n))

        openblas()
        reference = c.copy()
        onednn()
        assert np.allclose(c, reference, rtol=1e-3, atol=1e-2), f"{what}: the two libraries disagree"
        flops = 2.0 * m * n * k
        print(f"{what:<22} {f'{m} x {n} x {k}':>20} {flops / median_seconds(openblas) / 1e9:>10.1f} "
              f"{flops / median_seconds(onednn) / 1e9:>10.1f}")


if __name__ == "__main__":
    main()
