"""Helpers for the metric tests and benchmark: reference inputs and loop oracles.

``reference_inputs`` rebuilds, from the data root, the exact uint8 image
triples on which the reference MATLAB code was run under GNU Octave (see
``tests/data/metrics_reference.json``).  The ``loop_*`` functions are slow,
line-by-line Python transcriptions of the MATLAB loops; the tests use them as an
independent check of the vectorised code and ``benchmarks/bench_metrics.py``
times them for the speed-up figures.
"""
from __future__ import annotations

import hashlib
import math

import numpy as np

from tf_twogan.datasets import data_root
from tf_twogan.images import list_images, read_gray_uint8

DATA = data_root()


# ----------------------------------------------------------------------------
# reference inputs


def _read(dataset: str, modality: str, stem: str) -> np.ndarray:
    return read_gray_uint8(list_images(DATA / dataset / modality)[stem])


def _fuse(rule: str, ir: np.ndarray, vis: np.ndarray) -> np.ndarray:
    a, b = ir.astype(np.int64), vis.astype(np.int64)
    if rule == "mean":  # rounded half up
        out = (a + b + 1) // 2
    elif rule == "max":
        out = np.maximum(a, b)
    elif rule == "vis":
        out = b
    elif rule == "weighted":
        out = (7 * a + 3 * b) // 10
    elif rule == "ir_inverted":  # flat IR windows become flat, different fused windows
        out = 255 - a
    else:
        raise ValueError(f"unknown fusion rule {rule!r}")
    return out.astype(np.uint8)


def reference_inputs(spec: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (ir, vis, fused) uint8 triple described by one JSON ``inputs`` entry.

    ``{"arrays": {"ir": [[...]], "vis": ..., "fused": ...}}`` holds small synthetic
    images literally.  Otherwise ``dataset``/``stem`` name a pair read with
    :func:`tf_twogan.images.read_gray_uint8`; ``fused`` is a rule of
    :func:`_fuse` or ``"vifb:<method>"`` (that method's published result, made
    gray the same way); ``crop`` is ``[top, left, height, width]`` applied to every
    image after fusing.
    """
    if "arrays" in spec:
        return tuple(np.array(spec["arrays"][k], dtype=np.uint8) for k in ("ir", "vis", "fused"))
    dataset, stem = spec["dataset"], spec["stem"]
    ir, vis = _read(dataset, "ir", stem), _read(dataset, "vis", stem)
    fused_rule = spec["fused"]
    if spec.get("crop_sources_first"):
        top, left, h, w = spec["crop_sources_first"]
        ir, vis = ir[top:top + h, left:left + w], vis[top:top + h, left:left + w]
    if fused_rule.startswith("vifb:"):
        from tf_twogan.images import read_image, to_gray_uint8

        fused = to_gray_uint8(read_image(DATA / "vifb" / "fused" / f"{stem}_{fused_rule[5:]}.jpg"))
    else:
        fused = _fuse(fused_rule, ir, vis)
    if spec.get("crop"):
        top, left, h, w = spec["crop"]
        ir, vis, fused = (x[top:top + h, left:left + w] for x in (ir, vis, fused))
    return ir, vis, fused


def digest(*arrays: np.ndarray) -> str:
    """SHA-256 of the arrays' shapes and bytes: detects a different JPEG decoder."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a, dtype=np.uint8).tobytes())
    return h.hexdigest()


# ----------------------------------------------------------------------------
# loop oracles: literal transcriptions of the MATLAB loops (slow on purpose)


def loop_en(f):
    f = np.asarray(f, dtype=float)
    m, n = f.shape
    hist = [0] * 256
    for i in range(m):
        for j in range(n):
            hist[int(math.floor(f[i, j]))] += 1
    result = 0.0
    for k in range(256):
        p = hist[k] / (m * n)
        if p != 0:
            result += p * math.log2(p)
    return -result


def _loop_mutinf(a, b):
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    m, n = a.shape

    def levels(x):
        lo, hi = float(x.min()), float(x.max())
        out = np.zeros((m, n), dtype=int)
        if hi != lo:
            for i in range(m):
                for j in range(n):
                    v = (x[i, j] - lo) / (hi - lo) * 255
                    out[i, j] = int(math.floor(v + 0.5))
        return out

    la, lb = levels(a), levels(b)
    hab = np.zeros((256, 256))
    ha = np.zeros(256)
    hb = np.zeros(256)
    for i in range(m):
        for j in range(n):
            hab[la[i, j], lb[i, j]] += 1
            ha[la[i, j]] += 1
            hb[lb[i, j]] += 1

    def ent(h):
        s = h.sum()
        total = 0.0
        for v in h.ravel():
            if v:
                p = v / s
                total -= p * math.log(p)
        return total

    return ent(ha) + ent(hb) - ent(hab)


def loop_mi(ir, vis, f):
    return _loop_mutinf(vis, f) + _loop_mutinf(ir, f)


def _loop_ssim(a, b):
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    half = 5
    w = np.zeros((11, 11))
    for y in range(11):
        for x in range(11):
            w[y, x] = math.exp(-((x - half) ** 2 + (y - half) ** 2) / (2 * 1.5 ** 2))
    w /= w.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    m, n = a.shape
    total, count = 0.0, 0
    for i in range(m - 10):
        for j in range(n - 10):
            pa, pb = a[i:i + 11, j:j + 11], b[i:i + 11, j:j + 11]
            ua, ub = float((w * pa).sum()), float((w * pb).sum())
            sa = float((w * pa * pa).sum()) - ua * ua
            sb = float((w * pb * pb).sum()) - ub * ub
            sab = float((w * pa * pb).sum()) - ua * ub
            total += ((2 * ua * ub + c1) * (2 * sab + c2)) / ((ua * ua + ub * ub + c1) * (sa + sb + c2))
            count += 1
    return total / count


def loop_ssim(ir, vis, f):
    return _loop_ssim(vis, f) + _loop_ssim(ir, f)


def loop_sf(f):
    f = np.asarray(f, dtype=float)
    m, n = f.shape
    rf = cf = 0.0
    for i in range(m):
        for j in range(1, n):
            rf += (f[i, j] - f[i, j - 1]) ** 2
    for j in range(n):
        for i in range(1, m):
            cf += (f[i, j] - f[i - 1, j]) ** 2
    return math.sqrt(rf / (m * n) + cf / (m * n))


def loop_sd(f):
    f = np.asarray(f, dtype=float)
    m, n = f.shape
    total = 0.0
    for i in range(m):
        for j in range(n):
            total += f[i, j]
    mean = total / (m * n)
    acc = 0.0
    for i in range(m):
        for j in range(n):
            acc += (f[i, j] - mean) ** 2
    return math.sqrt(acc / (m * n))


def _loop_corr2(a, b):
    m, n = a.shape
    ma = sum(a[i, j] for i in range(m) for j in range(n)) / (m * n)
    mb = sum(b[i, j] for i in range(m) for j in range(n)) / (m * n)
    sab = saa = sbb = 0.0
    for i in range(m):
        for j in range(n):
            da, db = a[i, j] - ma, b[i, j] - mb
            sab += da * db
            saa += da * da
            sbb += db * db
    return sab / math.sqrt(saa * sbb)


def loop_scd(ir, vis, f):
    ir, vis, f = (np.asarray(x, dtype=float) for x in (ir, vis, f))
    return _loop_corr2(f - ir, vis) + _loop_corr2(f - vis, ir)


def loop_qabf(ir, vis, f):
    tg, kg, dg, ta, ka, da = 0.9994, -15, 0.5, 0.9879, -22, 0.8
    h1 = [[1, 2, 1], [0, 0, 0], [-1, -2, -1]]
    h3 = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]

    def conv_same(x, h):
        m, n = x.shape
        out = np.zeros((m, n))
        for i in range(m):
            for j in range(n):
                s = 0.0
                for u in range(3):
                    for v in range(3):
                        ii, jj = i + 1 - u, j + 1 - v  # convolution: flipped kernel
                        if 0 <= ii < m and 0 <= jj < n:
                            s += h[u][v] * x[ii, jj]
                out[i, j] = s
        return out

    def grad(x):
        x = 255 * np.asarray(x, dtype=float)
        sx, sy = conv_same(x, h3), conv_same(x, h1)
        m, n = x.shape
        g = np.zeros((m, n))
        a = np.zeros((m, n))
        for i in range(m):
            for j in range(n):
                g[i, j] = math.sqrt(sx[i, j] ** 2 + sy[i, j] ** 2)
                a[i, j] = math.pi / 2 if sx[i, j] == 0 else math.atan(sy[i, j] / sx[i, j])
        return g, a

    ga, aa = grad(vis)
    gb, ab = grad(ir)
    gf, af = grad(f)
    m, n = ga.shape
    num = den = 0.0
    for i in range(m):
        for j in range(n):
            for g, a, sink in ((ga, aa, 0), (gb, ab, 1)):
                if g[i, j] > gf[i, j]:
                    r = gf[i, j] / g[i, j]
                elif g[i, j] == gf[i, j]:
                    r = gf[i, j]
                else:
                    r = g[i, j] / gf[i, j]
                o = 1 - abs(a[i, j] - af[i, j]) / (math.pi / 2)
                q = tg / (1 + math.exp(kg * (r - dg))) * ta / (1 + math.exp(ka * (o - da)))
                num += q * g[i, j]
                den += g[i, j]
    return num / den


def _loop_fmi_pair(s_sub, f_sub, k):
    """One window pair of analysis_fmi.m; returns (score, fused window after)."""
    if np.array_equal(s_sub, f_sub):
        return 1.0, f_sub
    l = k * k

    def norm(x):
        lo, hi = x.min(), x.max()
        return np.ones((k, k)) if hi == lo else (x - lo) / (hi - lo)

    s_sub, f_sub = norm(s_sub), norm(f_sub)

    def pdf(x):
        cols = []
        for c in range(k):
            t = 0.0
            for r in range(k):
                t += x[r, c]
            cols.append(t)
        total = 0.0
        for t in cols:
            total += t
        return [x[r, c] / total for c in range(k) for r in range(k)]  # column-major

    sp, fp = pdf(s_sub), pdf(f_sub)
    sc, fc = [sp[0]], [fp[0]]
    for i in range(1, l):
        sc.append(sp[i] + sc[-1])
        fc.append(fp[i] + fc[-1])
    ms = 0.0
    mf = 0.0
    for i in range(l):
        ms += sp[i]
        mf += fp[i]
    ms, mf = ms / l, mf / l
    st, ft = [v - ms for v in sp], [v - mf for v in fp]
    num = 0.0
    for i in range(l):
        num += st[i] * ft[i]
    if num == 0:
        c = 0.0
    else:
        a2 = b2 = 0.0
        for i in range(l):
            a2 += st[i] * st[i]
            b2 += ft[i] * ft[i]
        c = num / math.sqrt(a2 * b2)
    e_s = e2_s = e_f = e2_f = 0.0
    for i in range(l):
        e_s += (i + 1) * sp[i]
        e2_s += (i + 1) ** 2 * sp[i]
        e_f += (i + 1) * fp[i]
        e2_f += (i + 1) ** 2 * fp[i]
    s_sd = math.sqrt(max(e2_s - e_s ** 2, 0.0))
    f_sd = math.sqrt(max(e2_f - e_f ** 2, 0.0))
    up = c >= 0

    def bound(x, y):
        return 0.5 * (x + y - abs(x - y)) if up else 0.5 * (x + y - 1 + abs(x + y - 1))

    if (up and (c == 0 or s_sd == 0 or f_sd == 0)) or (not up and (s_sd == 0 or f_sd == 0)):
        coef = 0.0
    else:
        cov = 0.0
        for i in range(l):
            for j in range(l):
                cov += bound(fc[i], sc[j]) - fc[i] * sc[j]
        coef = c / (cov / (f_sd * s_sd))

    def big(i, j):
        return 0.0 if i < 0 or j < 0 else bound(fc[i], sc[j])

    joint = 0.0
    for i in range(l):
        for j in range(l):
            jb = big(i, j) - big(i - 1, j) - big(i, j - 1) + big(i - 1, j - 1)
            p = coef * jb + (1 - coef) * fp[i] * sp[j]
            if p != 0:
                joint += -p * math.log2(abs(p))
    h_s = -sum(v * math.log2(v) for v in sp if v != 0)
    h_f = -sum(v * math.log2(v) for v in fp if v != 0)
    mi = h_s + h_f - joint
    return (0.0 if mi == 0 else 2 * mi / (h_s + h_f)), f_sub


def loop_fmi(ir, vis, f, window=3):
    """analysis_fmi(ir, vis, f, 'none', window), one window at a time."""
    a, b, f = (np.asarray(x, dtype=float) for x in (ir, vis, f))
    r = window // 2
    k = 2 * r + 1
    m, n = a.shape
    total, count = 0.0, 0
    for p in range(r, m - r):
        for q in range(r, n - r):
            a_sub = a[p - r:p + r + 1, q - r:q + r + 1]
            b_sub = b[p - r:p + r + 1, q - r:q + r + 1]
            f_sub = f[p - r:p + r + 1, q - r:q + r + 1]
            s_a, f_sub = _loop_fmi_pair(a_sub, f_sub, k)
            s_b, _ = _loop_fmi_pair(b_sub, f_sub, k)
            total += (s_a + s_b) / 2
            count += 1
    return total / count


LOOP_ORACLES = {
    "EN": lambda ir, vis, f: loop_en(f),
    "MI": loop_mi,
    "SSIM": loop_ssim,
    "SF": lambda ir, vis, f: loop_sf(f),
    "SD": lambda ir, vis, f: loop_sd(f),
    "SCD": loop_scd,
    "FMI": loop_fmi,
    "QABF": loop_qabf,
}
