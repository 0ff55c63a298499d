"""FMI: Haghighat's fast feature mutual information, vectorised (docs/METRICS.md has its derivation and checks)."""
from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from ..config import ConfigError
from ..images import ImageError
from .inputs import _triple


def _octave_sobel_edge(x: np.ndarray) -> np.ndarray:
    """``edge(x)`` of GNU Octave's image package 2.14 (Sobel, automatic threshold).

    Strength^2 from the Sobel pair normalised by 8 (replicate border), threshold
    ``4 * mean(strength^2)``, then Octave's simple thinning (a pixel is an edge if
    it beats both horizontal OR both vertical neighbours).  MATLAB's ``edge``
    thins differently; the reference platform here is Octave.
    """
    h = np.array([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]]) / 8.0
    s2 = ndimage.correlate(x, h, mode="nearest") ** 2 + ndimage.correlate(x, h.T, mode="nearest") ** 2
    thresh2 = 4 * np.mean(s2)
    s2 = np.where(s2 <= thresh2, 0.0, s2)
    left = np.pad(s2, ((0, 0), (1, 0)))[:, :-1]
    right = np.pad(s2, ((0, 0), (0, 1)))[:, 1:]
    up = np.pad(s2, ((1, 0), (0, 0)))[:-1, :]
    down = np.pad(s2, ((0, 1), (0, 0)))[1:, :]
    return ((s2 > left) & (s2 > right)) | ((s2 > up) & (s2 > down))


def _rerange(x: np.ndarray) -> np.ndarray:
    low, high = x.min(), x.max()
    return np.ones_like(x) if high == low else (x - low) / (high - low)


def _fmi_feature(x: np.ndarray, feature: str) -> np.ndarray:
    if feature == "none":
        return x
    if feature == "gradient":
        # MATLAB's gradient(x) with one output: the derivative along the columns.
        return np.gradient(x, axis=1) if x.shape[1] > 1 else np.zeros_like(x)
    if feature == "edge":
        return _octave_sobel_edge(x).astype(np.float64)
    if feature == "dct":
        from scipy.fft import dctn

        return dctn(x, type=2, norm="ortho")
    if feature == "wavelet":
        try:
            import pywt
        except ImportError:
            raise ImportError(
                "FMI with feature='wavelet' needs PyWavelets: pip install PyWavelets "
                "(or the package's optional extra 'wavelet')"
            ) from None
        ca, (ch, cv, cd) = pywt.dwt2(x, "dmey", mode="symmetric")
        return _rerange(np.block([[ca, ch], [cv, cd]]))
    raise ConfigError(f"FMI feature must be one of {fmi_features}, got {feature!r}")


fmi_features = ("none", "gradient", "edge", "dct", "wavelet")


def _windows(x: np.ndarray, k: int) -> np.ndarray:
    """All k x k windows of ``x`` as columns (k*k, n), each flattened column-major like ``x(:)``.

    Windows run along the second axis so that every per-element operation below is
    one contiguous vector operation over all windows.
    """
    view = np.lib.stride_tricks.sliding_window_view(x, (k, k))  # (H', W', row, col)
    return np.ascontiguousarray(view.transpose(3, 2, 0, 1)).reshape(k * k, -1)


def _seq_sum(x: np.ndarray) -> np.ndarray:
    """Sum over the first axis, in order, as Octave's ``sum`` accumulates."""
    total = x[0].copy()
    for row in x[1:]:  # over the k*k window elements, not over windows
        total += row
    return total


def _normalise_windows(x: np.ndarray) -> np.ndarray:
    """Min-max normalise each window (column); a flat window becomes all ones."""
    low, high = x.min(axis=0), x.max(axis=0)
    span = high - low
    flat = span == 0
    out = x - low
    out /= np.where(flat, 1.0, span)
    return np.where(flat, 1.0, out)


def _window_pdf(x: np.ndarray, k: int) -> np.ndarray:
    """``x(:) ./ sum(sum(x))``: column sums first, then their sum, in order."""
    col_sums = np.stack([_seq_sum(x[c * k:(c + 1) * k]) for c in range(k)])
    return x / _seq_sum(col_sums)


def _xlog2_abs(p: np.ndarray) -> np.ndarray:
    """``p * log2(|p|)`` in float32, 0 where ``p == 0`` (MATLAB's ``real(p*log2(p))`` for p < 0).

    Float32 (SIMD, several times faster than float64): its 1e-7 relative error is
    far inside FMI's 1e-4 tolerance.  Magnitudes are clamped to float32's smallest
    normal number, so a nonzero p too small for float32 contributes about 0, as it
    should, instead of 0 * -inf.
    """
    p32 = p.astype(np.float32)
    magnitude = np.abs(p32)
    np.maximum(magnitude, np.finfo(np.float32).tiny, out=magnitude)
    np.log2(magnitude, out=magnitude)
    return np.multiply(p32, magnitude, out=magnitude)


def _xlog2_sum(p: np.ndarray) -> np.ndarray:
    """Sum of :func:`_xlog2_abs` over the element axes (all but the last), in float64."""
    terms = _xlog2_abs(p)
    return np.sum(terms.reshape(-1, terms.shape[-1]), axis=0, dtype=np.float64)


def _cumsum_rows(x: np.ndarray) -> np.ndarray:
    """``np.cumsum(x, axis=0)`` (the same sequential sums) as row additions, much faster
    than numpy's strided cumsum along the first axis."""
    out = np.empty_like(x)
    out[0] = x[0]
    for i in range(1, x.shape[0]):  # over the k*k window elements
        np.add(out[i - 1], x[i], out=out[i])
    return out


class _WindowStats(NamedTuple):
    """What one image's windows contribute to every pair they take part in."""

    norm: np.ndarray  # (l, n) min-max normalised windows
    pdf: np.ndarray  # (l, n) window "pdfs" as analysis_fmi.m forms them
    cdf: np.ndarray  # (l, n) their cumulative sums
    rev: np.ndarray  # (l, n) ends of the reversed partition: 1 - S_{l-2}, ..., 1 - S_0, 1
    dev: np.ndarray  # (l, n) pdf minus its (sequentially summed) mean
    dev_sq: np.ndarray  # (n,) sequential sum of dev^2
    sd: np.ndarray  # (n,) standard deviation of the element index under the pdf
    xlog: np.ndarray  # (n,) sum p log2 p
    tot: np.ndarray  # (n,) sum p
    cdf_sum: np.ndarray  # (n,) sum of the cdf


def _window_stats(windows: np.ndarray, k: int) -> _WindowStats:
    l, n = windows.shape
    norm = _normalise_windows(windows)
    pdf = _window_pdf(norm, k)
    dev = pdf - _seq_sum(pdf) / l
    index = np.arange(1, l + 1, dtype=np.float64)
    sd = np.sqrt(np.maximum(index ** 2 @ pdf - (index @ pdf) ** 2, 0))
    cdf = _cumsum_rows(pdf)
    rev = np.empty_like(cdf)
    np.subtract(1, cdf[-2::-1], out=rev[:-1])
    rev[-1] = 1
    return _WindowStats(norm, pdf, cdf, rev, dev, _seq_sum(dev * dev), sd,
                        _xlog2_sum(pdf), pdf.sum(axis=0), cdf.sum(axis=0))


def _fmi_pairs(s: _WindowStats, f: _WindowStats) -> np.ndarray:
    """Normalised feature MI of each window pair (columns of the source and fused stats).

    Haghighat's fast FMI: the joint pdf of two window "pdfs" is Nelsen's mixture
    ``phi * Frechet bound + (1 - phi) * product``.  Vectorised over windows; the
    only loops run over the k*k window elements.  The branch-deciding sums
    (window totals, mean, correlation numerator) are accumulated in order as
    Octave does, so the flat-window quirk comes out the same.

    The Frechet bound's mass lies on at most 2l cells: merging the two CDFs' ends
    cuts [0, 1] into 2l pieces, and the piece ending at F_i lies in cell
    (i, #S below F_i), the piece ending at S_j in cell (#F at or below S_j, j); its
    length is exactly MATLAB's double difference of ``min(F_i, S_j)``.  So the
    joint entropy is the product part's entropy in closed form, corrected on those
    cells, instead of l*l logarithms.  The lower bound (c < 0) is the upper bound
    against the reversed partition with ends 1 - S_{l-2}, ..., 1 - S_0, 1.

    All 2l pieces are handled as one (2, l, n) array: row 0 the pieces ending at
    F_i, row 1 those ending at S_j; the ranks come from one (l, l, n) comparison
    and the partner's values are gathered with one flat ``take``.
    """
    l, n = f.pdf.shape
    num = _seq_sum(s.dev * f.dev)
    c = np.where(num == 0, 0.0, num / np.sqrt(s.dev_sq * f.dev_sq))
    upper = c >= 0
    if upper.all():
        partner, partner_pdf = s.cdf, s.pdf
    else:
        partner = np.where(upper, s.cdf, s.rev)  # CDF ends of the second partition
        partner_pdf = np.where(upper, s.pdf, s.pdf[::-1])  # its interval masses

    # ends[0] = [0, F_0..F_{l-1}], ends[1] = [0, P_0..P_{l-1}]; masses[r] = [pdf, 0]
    ends = np.zeros((2, l + 1, n))
    ends[0, 1:], ends[1, 1:] = f.cdf, partner
    masses = np.zeros((2, l + 1, n))
    masses[0, :-1], masses[1, :-1] = f.pdf, partner_pdf
    less = (partner[None, :, :] < f.cdf[:, None, :]).view(np.uint8)  # less[i, j]: P_j < F_i
    below = np.empty((2, l, n), dtype=np.uint8)
    np.add.reduce(less, axis=1, dtype=np.uint8, out=below[0])  # #P below F_i
    np.add.reduce(less, axis=0, dtype=np.uint8, out=below[1])
    np.subtract(l, below[1], out=below[1])  # #F at or below P_j
    top = ends[:, 1:]
    counts = (l - below).astype(np.float64)
    counts *= top
    sum_min = np.sum(counts.reshape(2 * l, n), axis=0)  # sum_ij min(F_i, P_j)
    f_sum = f.cdf_sum
    # sum_ij max(F_i + S_j - 1, 0) = l sum F - sum_ij min(F_i, 1 - S_j), and the
    # values 1 - S_j are those of s.rev with its final 1 replaced by 1 - S_{l-1}
    lower_sum = l * f_sum - (sum_min - f_sum + np.minimum(f.cdf, 1 - s.cdf[-1]).sum(axis=0))
    cov = np.where(upper, sum_min, lower_sum) - f_sum * s.cdf_sum
    degenerate = (s.sd == 0) | (f.sd == 0) | (c == 0)
    coef = np.where(degenerate, 0.0, c / (cov / (f.sd * s.sd)))
    rest = 1 - coef

    # the piece ending at F_i borrows P_{below-1} and the partner's pdf at `below`
    # from row 1; the piece ending at P_j borrows F_{below-1} and f's pdf from row 0
    flat = below.astype(np.intp)
    flat *= n
    flat += _gather_offsets(l, n)
    mass = top - np.maximum(ends[:, :-1], ends.take(flat))
    np.copyto(mass, 0.0, where=below == l)  # a piece past the last cell (rounding) has no cell
    product_part = masses[:, :-1] * masses.take(flat)
    product_part *= rest
    cell = mass
    cell *= coef
    cell += product_part
    # where a piece has no mass the cell equals its product part: the terms cancel exactly
    correction = _xlog2_sum(cell) - _xlog2_sum(product_part)
    # sum over all l*l cells of q log2|q| for q = rest * f_i s_j, in closed form
    log_rest = np.where(rest == 0, 0.0, np.log2(np.abs(np.where(rest == 0, 1.0, rest))))
    product_all = rest * (log_rest * f.tot * s.tot + f.xlog * s.tot + f.tot * s.xlog)
    joint_ent = -(product_all + correction)

    s_ent, f_ent = -s.xlog, -f.xlog
    mutual = s_ent + f_ent - joint_ent
    return np.where(mutual == 0, 0.0, 2 * mutual / (s_ent + f_ent))


@functools.lru_cache(maxsize=8)
def _gather_offsets(l: int, n: int) -> np.ndarray:
    """Flat offsets into a (2, l+1, n) table: row 0 reads region 1, row 1 region 0."""
    offsets = np.empty((2, l, n), dtype=np.intp)
    offsets[0] = (l + 1) * n + np.arange(n)
    offsets[1] = np.arange(n)
    offsets.flags.writeable = False
    return offsets


_FMI_BLOCK = 8192  # windows per block: the block's temporaries stay in the L2 cache


def _fmi_block(a_w: np.ndarray, b_w: np.ndarray, f_w: np.ndarray, k: int) -> np.ndarray:
    """FMI map values ``(fmi_af + fmi_bf) / 2`` for windows given as columns.

    The fused window's statistics serve both halves: where the IR half overwrote
    it with its normalised form, normalising that again gives it back unchanged
    (its minimum is exactly 0 and its maximum exactly 1; a flat window stays all
    ones), and where it did not (IR window equal to the fused one), the VIS half
    normalises the raw window itself.  Pairs of equal windows are computed too and
    then replaced by 1, which costs less than gathering the others.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        fs = _window_stats(f_w, k)
        equal_a = np.all(a_w == f_w, axis=0)
        score_a = np.where(equal_a, 1.0, _fmi_pairs(_window_stats(a_w, k), fs))
        # the IR half overwrote the fused window with its normalised form
        equal_b = np.all(b_w == np.where(equal_a, f_w, fs.norm), axis=0)
        score_b = np.where(equal_b, 1.0, _fmi_pairs(_window_stats(b_w, k), fs))
    return (score_a + score_b) / 2


def fmi(ir, vis, fused, feature: str = "none", window: int = 3) -> float:
    """Feature mutual information (Haghighat's fast FMI), 0..1.

    Haghighat, Aghagolzadeh & Seyedarabi, "A non-reference image fusion metric
    based on mutual information of image features", Comput. Electr. Eng. 2011;
    Haghighat & Razian, "Fast-FMI: non-reference image fusion metric", AICT 2014.
    Ports ``analysis_fmi(ir, vis, fused, feature, window)``: the mean over all
    ``window`` x ``window`` sliding windows of ``(nMI(IR_w, F_w) + nMI(VIS_w, F_w)) / 2``.

    Quirks copied from that code: windows are flattened column-major; a pair
    scores 1 when the raw source window equals the raw fused window; otherwise the
    fused window is overwritten with its min-max normalised form, and the second
    half (VIS) compares against and starts from that overwritten window; a flat
    window becomes 1/9 per pixel, whose mean, summed left to right in floating
    point, is not exactly 1/9 -- so two flat windows correlate (score about 1)
    where an exact mean would give 0.  Negative joint-pdf entries contribute
    ``-p log2 |p|`` (the real part MATLAB keeps).

    ``feature``: ``"none"`` (raw pixels, the paper's FMI), ``"gradient"`` (MATLAB
    ``gradient``: x-derivative), ``"edge"`` (Sobel edge map as GNU Octave's
    ``edge``), ``"dct"`` (orthonormal 2-D DCT of the whole image, ``dct2``),
    ``"wavelet"`` (discrete Meyer ``dwt2``, needs PyWavelets; its 62-tap ``dmey``
    differs from MATLAB's 102-tap filter, so this variant is not exact).
    Not the same convention split as the others: both conventions use this code.
    """
    ir, vis, fused = _triple(ir, vis, fused)
    if not isinstance(window, (int, np.integer)) or window < 1:
        raise ConfigError(f"window must be a positive integer, got {window!r}")
    k = 2 * (int(window) // 2) + 1
    a, b, f = (_fmi_feature(x, feature) for x in (ir, vis, fused))
    if a.shape[0] < k or a.shape[1] < k:
        raise ImageError(f"FMI needs images of at least {k}x{k} pixels (after feature extraction)")
    h, w = a.shape[0] - k + 1, a.shape[1] - k + 1
    scores = np.empty(h * w)
    rows = max(1, _FMI_BLOCK // w)
    # blocks of window rows keep the working set in cache; each block is vectorised
    for top in range(0, h, rows):
        bottom = min(h, top + rows)
        a_w, b_w, f_w = (_windows(x[top:bottom + k - 1], k) for x in (a, b, f))
        scores[top * w:bottom * w] = _fmi_block(a_w, b_w, f_w, k)
    return float(np.mean(scores))
