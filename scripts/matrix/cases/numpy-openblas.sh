#!/usr/bin/env bash
# Debian's python3 + numpy on OpenBLAS (pthreads build, OPENBLAS_NUM_THREADS=4): 6 products of
# 600x600 matrices, a solve and an SVD; results are checked against
# tolerances and printed rounded.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=numeric packages=(python3-numpy libopenblas0-pthread) commands=(python3)
what='numpy + OpenBLAS (4 threads): matmul, solve, svd'
prepare() {
  cat >t.py <<'PY'
import numpy as np
rng = np.random.default_rng(7)
a = rng.standard_normal((600, 600)); b = rng.standard_normal((600, 600))
c = a
for _ in range(6):
    c = (c @ b) / 30.0
x = np.linalg.solve(a, b[:, 0])
print("solve residual ok", bool(np.allclose(a @ x, b[:, 0], atol=1e-8)))
s = np.linalg.svd(a[:300, :300], compute_uv=False)
print("svd", round(float(s[0]), 6), round(float(s[-1]), 6))
print("matmul", f"{float(np.abs(c).sum()):.6e}")
print(np.show_config.__name__ and "blas", [k for k in np.__config__.__dict__ if 'blas' in k.lower()][:1])
PY
}
workload() { OPENBLAS_NUM_THREADS=4 mx_exec /usr/bin/python3 ../t.py; }
mx_main
