"""Writes SVHN-format .mat files with scipy's own MAT writer (not mixbench's test writer), so
the SVHN reader is tested on files produced the way the official ones were read and written
by the Python ecosystem.

    pip install numpy==2.4.6 scipy==1.15.3
    python tools/reference/make_svhn_mat_fixture.py   # writes tests/fixtures/svhn_scipy/

Layout as the official format 2 files: X uint8 [32, 32, 3, N] (MATLAB column-major), y double
[N, 1] with digit 0 stored as label 10. Pixel value of image n, channel c, row h, column w:
(n*37 + c*71 + h*3 + w*11) % 256 (the `px` of tests/common/mod.rs).
"""
import os
import sys

import numpy as np
import scipy
import scipy.io


def make(first, labels):
    n = len(labels)
    x = np.zeros((32, 32, 3, n), dtype=np.uint8)
    for i in range(n):
        for c in range(3):
            for h in range(32):
                for w in range(32):
                    x[h, w, c, i] = ((first + i) * 37 + c * 71 + h * 3 + w * 11) % 256
    y = np.array(labels, dtype=np.float64).reshape(n, 1)
    return {"X": x, "y": y}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(__file__), "..", "..", "tests", "fixtures", "svhn_scipy")
    os.makedirs(out, exist_ok=True)
    scipy.io.savemat(os.path.join(out, "train_32x32.mat"), make(0, [10, 1, 5, 1, 1, 3]),
                     do_compression=True, format="5")
    scipy.io.savemat(os.path.join(out, "test_32x32.mat"), make(20, [2, 10]),
                     do_compression=True, format="5")
    print("numpy", np.__version__, "scipy", scipy.__version__, "->", os.path.abspath(out))


if __name__ == "__main__":
    main()
