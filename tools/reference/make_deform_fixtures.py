#!/usr/bin/env python3
"""Generate deformation (rotate / shear / zoom) fixtures for mixbench.

Re-implements the image deformations of the Manifold Mixup reference code,
``supervised/affine_transforms.py`` of vikasverma1077/manifold_mixup (added in
commit f14738c, 2018-06-12, unchanged up to the newest commit 870ef77), and
used by ``supervised/interpolation_exp.py`` (``Rotation(deg)``,
``Shear(rad)``, ``Zoom((z, z))``), and writes
``tests/fixtures/reference/deform.json``.

What is reproduced exactly (see the "convention" string in the JSON):

* matrices: rotation ``[[cos t, -sin t], [sin t, cos t]]`` with
  ``t = math.pi / 180 * degrees``; shear ``[[1, -sin s], [0, cos s]]`` with
  ``s`` in radians; zoom ``[[zx, 0], [0, zy]]`` where ``Zoom((z, z))`` gives
  ``zx = zy = random.uniform(z, z) = z``;
* centring: ``transform_matrix_offset_center(M, H, W)`` with
  ``o_x = H / 2 + 0.5`` and ``o_y = W / 2 + 0.5`` (the Keras-legacy centre,
  one half pixel below/right of the geometric centre ``(H-1)/2``);
* resampling: per channel ``scipy.ndimage.affine_transform(channel, M,
  offset, order=0, mode='constant', cval=0.)`` on a float32 copy of the
  (C, H, W) image, axis 0 = rows, axis 1 = columns.

Floating-point canonicalisation.  Only samples whose input coordinate is an
exact tie (k + 0.5, or exactly 0 / H-1 / W-1) depend on the last bits of the
float64 arithmetic, and two details of the reference pipeline are
environment dependent there:
  - the offset comes from ``np.dot`` of 3x3 matrices, i.e. BLAS dgemm; an FMA
    kernel (OpenBLAS Haswell, as here) computes
    ``fma(M[k][1], -c1, M[k][0] * -c0) + c_k`` instead of the plain
    ``(M[k][0] * -c0 + M[k][1] * -c1) + c_k``;
  - scipy <= 1.15 (the reference ran 2018 scipy, ~1.0/1.1) evaluates the
    input coordinate as ``((0.0 + o0*M[k][0]) + o1*M[k][1]) + offset_k``,
    scipy >= 1.16 (commit 5ed5aa5b04, 2025) as
    ``(offset_k + o0*M[k][0]) + o1*M[k][1]``.
The fixture therefore fixes a CANONICAL, FMA-free version: plain offset
formula and the scipy <= 1.15 coordinate order, implemented in numpy below.
Its output is cross-checked against scipy: with scipy <= 1.15 and the
canonical offset it must agree exactly (asserted); with any scipy, both the
canonical-offset call and the verbatim reference ``apply_transform``
(np.dot offset) must agree everywhere except at positions flagged as ties
(asserted), and the number of differing positions is recorded per case.
The JSON shipped in the repo was generated with scipy 1.15.3 (exact check)
and re-checked with scipy 1.17.1.

Usage (numpy + scipy only; ``pip install numpy scipy``)::

    python3 tools/reference/make_deform_fixtures.py [--out PATH]

Default output: tests/fixtures/reference/deform.json (relative to the repo
root, found from this file's location).  The numpy / scipy / python versions
used are written into the JSON "metadata".  To regenerate the shipped file
exactly as checked: ``python3 -m venv /tmp/v && /tmp/v/bin/pip install
numpy==2.4.6 scipy==1.15.3 && /tmp/v/bin/python tools/reference/make_deform_fixtures.py``
(the output bytes do not depend on the scipy version; only the strength of
the cross-check does).

JSON layout::

    {"metadata": {...}, "convention": "...",
     "images": [{"shape": [C, H, W], "data": [uint8, ...]}, ...],   # C,H,W order
     "cases": [{"image": i, "kind": "rotate"|"shear"|"zoom", "value": v,
                "matrix": [[m00, m01], [m10, m11]], "offset": [f0, f1],
                "matrix_hex": [...], "offset_hex": [...],   # canonical, float.hex
                "offset_np_dot_hex": [...],                 # what np.dot gave here
                "scipy_diff_positions": n,       # installed scipy, canonical offset
                "reference_diff_positions": n,   # verbatim apply_transform
                "input_coords_boundary": n, "input_coords_edge": n,
                "boundary_samples": [[o0, o1, i0, i1], ...],
                "output": [uint8, ...]}, ...]}               # C,H,W order
"""

import argparse
import json
import math
import os
import platform
import sys

import numpy as np
import scipy
import scipy.ndimage as ndi

SEED = 0
TOL = 1e-6
MAX_BOUNDARY_SAMPLES = 40
SIZE_LIMIT = 1_500_000

# ---------------------------------------------------------------------------
# Reference code (supervised/affine_transforms.py @ f14738c), kept as close to
# verbatim as possible; only the torch wrapping and the random draw are gone.
# ---------------------------------------------------------------------------


def transform_matrix_offset_center(matrix, x, y):
    o_x = float(x) / 2 + 0.5
    o_y = float(y) / 2 + 0.5
    offset_matrix = np.array([[1, 0, o_x], [0, 1, o_y], [0, 0, 1]])
    reset_matrix = np.array([[1, 0, -o_x], [0, 1, -o_y], [0, 0, 1]])
    transform_matrix = np.dot(np.dot(offset_matrix, matrix), reset_matrix)
    return transform_matrix


def reference_final_matrix(x, transform):
    """The (2x2 matrix, offset) pair apply_transform hands to scipy."""
    transform = transform_matrix_offset_center(transform, x.shape[1], x.shape[2])
    return transform[:2, :2], transform[:2, 2]


def apply_transform(x, transform, fill_mode='constant', fill_value=0.):
    # Reference default in apply_transform is fill_mode='nearest', but every
    # caller (Rotation/Shear/Zoom.__call__) passes its own fill_mode, whose
    # default is 'constant' with fill_value 0.
    x = x.astype('float32')
    transform = transform_matrix_offset_center(transform, x.shape[1], x.shape[2])
    final_affine_matrix = transform[:2, :2]
    final_offset = transform[:2, 2]
    channel_images = [ndi.affine_transform(x_channel, final_affine_matrix,
                      final_offset, order=0, mode=fill_mode, cval=fill_value)
                      for x_channel in x]
    x = np.stack(channel_images, axis=0)
    return x


def rotation_matrix(degree):
    theta = math.pi / 180 * degree
    return np.array([[math.cos(theta), -math.sin(theta), 0],
                     [math.sin(theta), math.cos(theta), 0],
                     [0, 0, 1]])


def shear_matrix(shear):
    return np.array([[1, -math.sin(shear), 0],
                     [0, math.cos(shear), 0],
                     [0, 0, 1]])


def zoom_matrix(zoom):
    zx = zy = zoom  # Zoom((z, z)): random.uniform(z, z) == z exactly
    return np.array([[zx, 0, 0],
                     [0, zy, 0],
                     [0, 0, 1]])


MATRIX = {"rotate": rotation_matrix, "shear": shear_matrix, "zoom": zoom_matrix}

# ---------------------------------------------------------------------------
# Independent implementation of the documented convention.
# ---------------------------------------------------------------------------


def canonical_offset(m, h, w):
    """offset_k = (M[k][0] * -c0 + M[k][1] * -c1) + c_k, no FMA."""
    c0 = float(h) / 2 + 0.5
    c1 = float(w) / 2 + 0.5
    return np.array([(m[0, 0] * (-c0) + m[0, 1] * (-c1)) + c0,
                     (m[1, 0] * (-c0) + m[1, 1] * (-c1)) + c1], dtype=np.float64)


def scipy_version_tuple():
    return tuple(int(p) for p in scipy.__version__.split(".")[:2])


def scipy_channels(img, m, off):
    x = img.astype("float32")
    return np.stack([ndi.affine_transform(ch, m, off, order=0, mode="constant", cval=0.)
                     for ch in x], axis=0)


def input_coords(m, off, h, w):
    """float64 input coordinates, in scipy (<= 1.15) evaluation order:
    i_k = ((0.0 + o0 * m[k][0]) + o1 * m[k][1]) + off[k]."""
    o0, o1 = np.meshgrid(np.arange(h, dtype=np.float64),
                         np.arange(w, dtype=np.float64), indexing="ij")
    i0 = ((0.0 + o0 * m[0, 0]) + o1 * m[0, 1]) + off[0]
    i1 = ((0.0 + o0 * m[1, 0]) + o1 * m[1, 1]) + off[1]
    return i0, i1


def nearest_convention(img, m, off):
    c, h, w = img.shape
    i0, i1 = input_coords(m, off, h, w)
    valid = (i0 >= 0) & (i0 <= h - 1) & (i1 >= 0) & (i1 <= w - 1)
    r = np.floor(np.where(valid, i0, 0.0) + 0.5).astype(np.int64)
    q = np.floor(np.where(valid, i1, 0.0) + 0.5).astype(np.int64)
    out = np.zeros_like(img)
    for ch in range(c):
        out[ch] = np.where(valid, img[ch][r, q], 0)
    return out


def near_half_integer(v):
    return np.abs(v - (np.floor(v) + 0.5)) < TOL


def near_edge(v, n):
    return (np.abs(v) < TOL) | (np.abs(v - (n - 1)) < TOL)


# ---------------------------------------------------------------------------

IMAGE_SHAPES = [(3, 16, 16)] * 3 + [(3, 32, 32)] * 2 + [(3, 15, 13)]

VALUES = {
    "rotate": [0.0, 7.5, 20.0, -33.3, 45.0, 90.0, 170.0],
    "shear": [0.0, 0.3, -0.5, 1.0, 2.5, 3.0],
    "zoom": [1.0, 0.2, 0.6, 0.8, 1.2, 1.8],
}
# every value on a 16x16, a 32x32 and the 15x13 image; a few extra images
IMAGES_ALL = [0, 3, 5]
EXTRA = {
    "rotate": {1: [20.0, 90.0], 2: [-33.3], 4: [45.0, 170.0]},
    "shear": {1: [0.3, 2.5], 4: [-0.5]},
    "zoom": {1: [0.8, 1.2], 2: [0.6], 4: [1.8, 0.8]},
}

CONVENTION = (
    "Images are uint8 arrays (C,H,W): axis 0 = channel, axis 1 = row (length H), "
    "axis 2 = column (length W). The same 2-D mapping is applied to every channel "
    "independently. Let c0 = H/2 + 0.5 and c1 = W/2 + 0.5 (float64; NOTE this is the "
    "reference's transform_matrix_offset_center centre, one half pixel below/right of "
    "the geometric centre (H-1)/2). The 2x2 matrix M (row-major, acting on (row, col) "
    "column vectors) is: rotate by d degrees: t = (pi/180)*d (evaluated as pi/180 first, "
    "then *d), M = [[cos t, -sin t], [sin t, cos t]]; shear by s radians: M = [[1, -sin s], "
    "[0, cos s]]; zoom by z: M = [[z, 0], [0, z]] (z<1 magnifies, z>1 shrinks). "
    "offset = c - M c, evaluated in float64 without FMA as "
    "offset_k = (M[k][0]*(-c0) + M[k][1]*(-c1)) + c_k (the reference takes the last column "
    "of np.dot(np.dot([[1,0,c0],[0,1,c1],[0,0,1]], [[M,0],[0,0,1]]), [[1,0,-c0],[0,1,-c1],[0,0,1]]), "
    "which is this value unless the BLAS uses FMA). For output pixel (row o0, col o1) the "
    "input coordinate is i = M @ (o0, o1) + offset = M (o - c) + c, evaluated in float64 "
    "without FMA in scipy<=1.15 order: i_k = ((0.0 + o0*M[k][0]) + o1*M[k][1]) + offset_k. "
    "scipy.ndimage.affine_transform(order=0, mode='constant', cval=0): the sample is "
    "valid iff 0 <= i_0 <= H-1 and 0 <= i_1 <= W-1 (closed interval, no tolerance, "
    "e.g. -1e-15 or (H-1)+1e-15 is already outside); a valid sample takes "
    "input[ch][floor(i_0 + 0.5)][floor(i_1 + 0.5)] (round half up, towards +inf); an "
    "invalid one (either axis outside) is cval = 0 in all channels. 'output' is exactly "
    "this canonical mapping. input_coords_boundary counts output positions (o0, o1) "
    "(spatial positions, not multiplied by C) where i_0 or i_1 is within 1e-6 of some "
    "k+0.5 (nearest rounding ambiguous); input_coords_edge counts positions where i_0 is "
    "within 1e-6 of 0 or H-1, or i_1 within 1e-6 of 0 or W-1 (validity test ambiguous). "
    "boundary_samples lists up to 40 such positions as [o0, o1, i0, i1] (union of both "
    "kinds, i computed canonically). scipy_diff_positions / reference_diff_positions: "
    "positions where the installed scipy (canonical offset) / the verbatim reference "
    "apply_transform (np.dot offset) give another value; always a subset of the flagged "
    "positions (asserted)."
)


def build(out_path):
    rng = np.random.default_rng(SEED)
    images = [rng.integers(0, 256, size=s, dtype=np.uint8) for s in IMAGE_SHAPES]

    plan = []
    for kind, vals in VALUES.items():
        for v in vals:
            for i in IMAGES_ALL:
                plan.append((i, kind, v))
        for i, vs in EXTRA[kind].items():
            for v in vs:
                plan.append((i, kind, v))

    cases = []
    offset_formula_mismatch = 0
    n_sp_diff = n_ref_diff = 0
    exact_scipy = scipy_version_tuple() < (1, 16)
    for (i, kind, v) in plan:
        img = images[i]
        _, h, w = img.shape
        mat3 = MATRIX[kind](v)
        reference_out = apply_transform(img, mat3)  # verbatim reference path
        assert reference_out.dtype == np.float32
        assert np.all(reference_out == np.round(reference_out))
        assert reference_out.min() >= 0 and reference_out.max() <= 255

        m, off_dot = reference_final_matrix(img, mat3)
        m = np.ascontiguousarray(m, dtype=np.float64)
        off_dot = np.ascontiguousarray(off_dot, dtype=np.float64)
        # the 2x2 block must be M itself, bit for bit
        assert np.array_equal(m, mat3[:2, :2]), (kind, v)
        off = canonical_offset(m, h, w)
        if not np.array_equal(off, off_dot):
            offset_formula_mismatch += 1

        # canonical output (the fixture)
        out = nearest_convention(img, m, off)

        i0, i1 = input_coords(m, off, h, w)
        half = near_half_integer(i0) | near_half_integer(i1)
        edge = near_edge(i0, h) | near_edge(i1, w)
        tie = half | edge

        # cross-checks against scipy
        sp = scipy_channels(img, m, off)
        assert np.all(sp == np.round(sp)) and sp.min() >= 0 and sp.max() <= 255
        sp_diff = np.any(sp.astype(np.uint8) != out, axis=0)
        ref = reference_out.astype(np.uint8)
        ref_diff = np.any(ref != out, axis=0)
        if exact_scipy:
            assert not sp_diff.any(), f"scipy mismatch {kind} {v} image {i}"
        assert not (sp_diff & ~tie).any(), f"scipy mismatch off-tie {kind} {v} image {i}"
        assert not (ref_diff & ~tie).any(), f"reference mismatch off-tie {kind} {v} image {i}"
        n_sp_diff += int(sp_diff.sum())
        n_ref_diff += int(ref_diff.sum())

        if (kind, v) in (("rotate", 0.0), ("shear", 0.0), ("zoom", 1.0)):
            assert np.array_equal(out, img), f"identity failed {kind} {v} image {i}"
            assert np.array_equal(ref, img), f"reference identity failed {kind} {v} image {i}"

        samples = []
        for (a, b) in zip(*np.nonzero(tie)):
            if len(samples) >= MAX_BOUNDARY_SAMPLES:
                break
            samples.append([int(a), int(b), float(i0[a, b]), float(i1[a, b])])

        cases.append({
            "image": i,
            "kind": kind,
            "value": v,
            "matrix": [[float(m[0, 0]), float(m[0, 1])], [float(m[1, 0]), float(m[1, 1])]],
            "offset": [float(off[0]), float(off[1])],
            "matrix_hex": [[float(m[0, 0]).hex(), float(m[0, 1]).hex()],
                           [float(m[1, 0]).hex(), float(m[1, 1]).hex()]],
            "offset_hex": [float(off[0]).hex(), float(off[1]).hex()],
            "offset_np_dot_hex": [float(off_dot[0]).hex(), float(off_dot[1]).hex()],
            "scipy_diff_positions": int(sp_diff.sum()),
            "reference_diff_positions": int(ref_diff.sum()),
            "input_coords_boundary": int(half.sum()),
            "input_coords_edge": int(edge.sum()),
            "boundary_samples": samples,
            "output": out.reshape(-1).tolist(),
        })

    doc = {
        "metadata": {
            "generator": "tools/reference/make_deform_fixtures.py",
            "reference": "vikasverma1077/manifold_mixup supervised/affine_transforms.py "
                         "(commit f14738c, unchanged through 870ef77)",
            "seed": SEED,
            "image_rng": "numpy.random.default_rng(0).integers(0, 256, size=shape, dtype=uint8), "
                         "one call per image in order",
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "scipy_check": ("exact (scipy <= 1.15 kernel)" if exact_scipy else
                            "ties only (scipy >= 1.16 evaluates coordinates in another order)"),
            "cases_where_np_dot_offset_differs_from_canonical": offset_formula_mismatch,
            "positions_where_installed_scipy_differs": n_sp_diff,
            "positions_where_verbatim_reference_differs": n_ref_diff,
        },
        "convention": CONVENTION,
        "images": [{"shape": list(im.shape), "data": im.reshape(-1).tolist()} for im in images],
        "cases": cases,
    }
    text = json.dumps(doc, separators=(",", ":"))
    assert len(text) < SIZE_LIMIT, len(text)
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w") as f:
        f.write(text)
        f.write("\n")
    nb = sum(c["input_coords_boundary"] for c in cases)
    ne = sum(c["input_coords_edge"] for c in cases)
    print(f"wrote {out_path}: {len(cases)} cases, {len(text)} bytes, "
          f"{nb} half-integer-boundary and {ne} edge-boundary positions, "
          f"np.dot offset != canonical in {offset_formula_mismatch} cases; differing positions: "
          f"scipy {n_sp_diff}, verbatim reference {n_ref_diff} "
          f"(scipy {scipy.__version__}, exact check: {exact_scipy})", file=sys.stderr)


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(root, "tests", "fixtures", "reference",
                                                  "deform.json"))
    build(ap.parse_args().out)


if __name__ == "__main__":
    main()
