"""2-D wavelet scattering features (Bruna & Mallat, TPAMI 2013, arXiv 1203.1513), as SENet, EnSC and
NeuNcut use them for MNIST / Fashion-MNIST (spec clustering.md §1.9, §2.1).

Transform (order 2, J scales, L angles; the filter bank of Kymatio's ``Scattering2D``, Andreux et al.,
JMLR 2020, arXiv 1812.11214, written from its definitions):

- Gabor g_{σ,θ,ξ,s}(u) = exp(−uᵀR_θ diag(1, s²) R_θᵀ u / (2σ²) + i ξ (u₁ cos θ + u₂ sin θ)) / (2πσ²/s),
  periodised over ±2 periods of the grid; Morlet ψ = g_ξ − κ·g_0 with κ making Σψ = 0;
- wavelets ψ_{j,θ}: σ = 0.8·2^j, ξ = (3π/4)·2^{−j}, slant s = 4/L, θ = (L/2 − 1 − ℓ)π/L, j < J, ℓ < L;
  low-pass φ_J: the Gaussian g with σ = 0.8·2^{J−1}, ξ = 0, s = 1;
- S₀x = x ⋆ φ_J, S₁x = |x ⋆ ψ_{j₁,θ₁}| ⋆ φ_J, S₂x = ||x ⋆ ψ_{j₁,θ₁}| ⋆ ψ_{j₂,θ₂}| ⋆ φ_J for j₂ > j₁, each
  sampled every 2^J pixels: 1 + JL + L²J(J−1)/2 channels (217 for J = 3, L = 8) of (H/2^J) × (W/2^J).

Images are reflect-padded by 2^J pixels on each side (as Kymatio does; the image side must be a
multiple of 2^J). Convolutions are products in the Fourier domain; sampling at stride s is summing the
spectrum over its s × s aliases, so |U₁ ⋆ ψ_{j₂}| is computed exactly at stride 2^{j₂} and its low-pass
on that reduced grid (the only approximation: the modulus is not band-limited, as in Kymatio, which
also subsamples first-order terms). Border samples are removed at the end. Against Kymatio 0.3 on the
same images: order 0 identical, orders 1 and 2 within about 1 % (relative L2), correlation > 0.999.

Feature pipeline of SENet's ``feature_generation.py`` (spec §2.1), the default of
:func:`scattering_features`: 28×28 images resized to 32×32 (bilinear, as its torchvision ``Resize``),
scattering with J = 3, each scattering channel of each image divided by its ∞-norm over that image's
4×4 grid (``np.linalg.norm(ord=inf, axis=2)`` on the (N, 217, 16) array), flattened (217·4·4 = 3,472
values), projected on the top 500 eigenvectors of XᵀX without centring, rows L2-normalised (SENet's
``main.py``). Until issue 10's stop 15 the library instead zero-padded to 32×32 and divided each
channel by its maximum over the data set; ``resize=False, channel_norm="dataset"`` keeps that variant,
which the committed Fashion-MNIST table (``fmnist-scat``) was measured on. :func:`scattering_features`
runs in batches with a progress bar and caches the result on disk (keyed by the data's hash and the
parameters); nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from structlearn.data.cache import cache_dir
from structlearn.utils.io import atomic_open
from structlearn.utils.validation import check_choice, check_device, check_int

CACHE_VERSION = 2  # 2: resize / channel_norm options (stop 15)


def _gabor(M: int, N: int, sigma: float, theta: float, xi: float, slant: float) -> torch.Tensor:
    """Gabor filters in space on an M×N grid, periodised over 5×5 tiles (float64 complex)."""
    c, s = math.cos(theta), math.sin(theta)
    R = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    curv = R @ torch.diag(torch.tensor([1.0, slant * slant], dtype=torch.float64)) @ R.T / (2 * sigma * sigma)
    tiles = torch.arange(-2, 3, dtype=torch.float64)
    x = (torch.arange(M, dtype=torch.float64)[None, :] + tiles[:, None] * M).reshape(-1)  # 5M
    y = (torch.arange(N, dtype=torch.float64)[None, :] + tiles[:, None] * N).reshape(-1)  # 5N
    xx, yy = x[:, None], y[None, :]
    quad = curv[0, 0] * xx * xx + (curv[0, 1] + curv[1, 0]) * xx * yy + curv[1, 1] * yy * yy
    phase = xi * (xx * c + yy * s)
    g = torch.exp(torch.complex(-quad, phase))  # (5M, 5N)
    g = g.reshape(5, M, 5, N).sum(dim=(0, 2))  # periodisation
    return g / (2 * math.pi * sigma * sigma / slant)


def _morlet(M: int, N: int, sigma: float, theta: float, xi: float, slant: float) -> torch.Tensor:
    wave = _gabor(M, N, sigma, theta, xi, slant)
    env = _gabor(M, N, sigma, theta, 0.0, slant)
    return wave - (wave.sum() / env.sum()) * env


def filter_bank(M: int, N: int, J: int, L: int = 8) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Fourier transforms of the wavelets (J·L, M, N) and of the low-pass (M, N), real parts (float32),
    and each wavelet's scale j (wavelets ordered by j, then by angle)."""
    psis, scales = [], []
    for j in range(J):
        for ell in range(L):
            theta = (int(L - L / 2 - 1) - ell) * math.pi / L
            psis.append(torch.fft.fft2(_morlet(M, N, 0.8 * 2**j, theta, 0.75 * math.pi / 2**j, 4.0 / L)).real)
            scales.append(j)
    phi = torch.fft.fft2(_gabor(M, N, 0.8 * 2 ** (J - 1), 0.0, 0.0, 1.0)).real
    return torch.stack(psis).float(), phi.float(), scales


class Scattering2D:
    """Order-2 scattering of (B, H, W) images → (B, 1 + JL + L²J(J−1)/2, H/2^J, W/2^J)."""

    def __init__(
        self, shape: tuple[int, int], J: int = 3, L: int = 8, device: str | torch.device = "cpu"
    ) -> None:
        self.J = check_int("J", J, minimum=1)
        self.L = check_int("L", L, minimum=1)
        H, W = (check_int("height", shape[0], minimum=1), check_int("width", shape[1], minimum=1))
        step = 2**J
        if H % step or W % step:
            raise ValueError(f"image size {H}×{W} must be a multiple of 2^J = {step}")
        self.shape = (H, W)
        self.pad = step
        M, N = H + 2 * step, W + 2 * step
        self.device = torch.device(device)
        psi_hat, phi_hat, scales = filter_bank(M, N, J, L)
        self.psi_hat, self.phi_hat = psi_hat.to(self.device), phi_hat.to(self.device)
        self.scales = torch.tensor(scales)
        # Second-order pairs (λ₁, λ₂) with j₂ > j₁, in Kymatio's order (by λ₁, then λ₂).
        pairs = [(a, b) for a in range(J * L) for b in range(J * L) if scales[b] > scales[a]]
        self.pairs = torch.tensor(pairs, dtype=torch.int64).reshape(-1, 2)
        # The second-order terms are computed grouped by j₂; this puts them back in (λ₁, λ₂) order.
        by_j2 = torch.cat([torch.nonzero(self.scales[self.pairs[:, 1]] == j).ravel() for j in range(1, J)])
        self._pair_order = torch.argsort(by_j2)

    @property
    def n_channels(self) -> int:
        return 1 + self.J * self.L + len(self.pairs)

    def _lowpass(self, u_hat: torch.Tensor) -> torch.Tensor:
        """(…, M, N) Fourier → low-passed, sampled every 2^J pixels, border samples removed.

        Sampling every s pixels in space is summing the spectrum over its s × s aliases (periodisation),
        so only a small (M/s) × (N/s) inverse transform is needed."""
        s = 2**self.J
        out = torch.fft.ifft2(self._periodize(u_hat * self.phi_hat, s)).real / (s * s)
        return out[..., 1:-1, 1:-1]

    @staticmethod
    def _periodize(u_hat: torch.Tensor, s: int) -> torch.Tensor:
        M, N = u_hat.shape[-2:]
        return u_hat.reshape(*u_hat.shape[:-2], s, M // s, s, N // s).sum(dim=(-4, -2))

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or tuple(x.shape[1:]) != self.shape:
            raise ValueError(
                f"expected images of shape (B, {self.shape[0]}, {self.shape[1]}), got {tuple(x.shape)}"
            )
        p = self.pad
        x = x.to(self.device)
        xp = F.pad(x.float()[:, None], (p, p, p, p), mode="reflect")[:, 0]
        x_hat = torch.fft.fft2(xp)
        s0 = self._lowpass(x_hat)[:, None]
        U1 = torch.fft.ifft2(x_hat[:, None] * self.psi_hat[None]).abs()  # (B, JL, M, N), full resolution
        U1_hat = torch.fft.fft2(U1)
        s1 = self._lowpass(U1_hat)
        M, N = U1.shape[-2:]
        S = 2**self.J
        s2_parts = []
        # Second order per scale j₂: |U1 ⋆ ψ_{j₂}| is sampled exactly at stride 2^{j₂} (periodised
        # spectrum), the low-pass then uses that reduced grid (its aliasing is Kymatio's approximation).
        for j2 in range(1, self.J):
            sel = self.scales[self.pairs[:, 1]] == j2
            a, b = self.pairs[sel, 0].to(self.device), self.pairs[sel, 1].to(self.device)
            st = 2**j2
            W = self._periodize(U1_hat[:, a] * self.psi_hat[b][None], st)
            U2 = torch.fft.ifft2(W).abs() / (st * st)  # samples of |U1 ⋆ ψ| at stride 2^{j₂}
            Mr, Nr = M // st, N // st
            ri = torch.cat([torch.arange(Mr // 2), torch.arange(M - (Mr - Mr // 2), M)])
            ci = torch.cat([torch.arange(Nr // 2), torch.arange(N - (Nr - Nr // 2), N)])
            phi_band = self.phi_hat[ri.to(self.device)][:, ci.to(self.device)]
            V = self._periodize(torch.fft.fft2(U2) * phi_band * (st * st), S // st)
            s2_parts.append((torch.fft.ifft2(V).real / (S * S))[..., 1:-1, 1:-1])
        s2 = torch.cat(s2_parts, dim=1)[:, self._pair_order]
        return torch.cat([s0, s1, s2], dim=1)


def _to_size(x: torch.Tensor, size: int | None, resize: bool) -> torch.Tensor:
    """(B, H, W) → (B, size, size): bilinear resize (half-pixel centres, antialiased when shrinking, as
    torchvision's ``Resize``) or centred zero-padding."""
    if size is None or tuple(x.shape[1:]) == (size, size):
        return x
    if resize:
        out = F.interpolate(x[:, None], (size, size), mode="bilinear", align_corners=False, antialias=True)
        return out[:, 0]
    ph, pw = size - x.shape[1], size - x.shape[2]
    return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))


def _key(images: np.ndarray, params: dict[str, Any]) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(images).tobytes())
    h.update(repr(sorted(params.items())).encode())
    return h.hexdigest()[:24]


def scattering_features(
    images: np.ndarray,
    *,
    J: int = 3,
    L: int = 8,
    size: int | None = 32,
    resize: bool = True,
    channel_norm: str = "sample",
    n_components: int | None = 500,
    batch_size: int = 128,
    cache: bool = True,
    progress: bool = True,
    device: str = "cpu",
) -> np.ndarray:
    """SENet's scattering pipeline on (N, H, W) images in [0, 1] (module docstring): bring the images to
    ``size`` × ``size`` (None: keep) by bilinear ``resize`` (SENet) or centred zero-padding
    (``resize=False``), scattering, scale each channel by its ∞-norm per image (``channel_norm="sample"``,
    SENet) or over the data set (``"dataset"``), flatten, uncentred PCA to ``n_components`` (None: skip),
    rows L2-normalised. float32 (N, n_components). Cached under the structlearn cache folder (the key
    ignores ``device``: a GPU transform agrees with the CPU one to float32 round-off)."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 3 or x.shape[0] == 0:
        raise ValueError(f"images must be a non-empty (N, H, W) array, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("images contain NaN or infinite values")
    batch_size = check_int("batch_size", batch_size, minimum=1)
    channel_norm = check_choice("channel_norm", channel_norm, ["sample", "dataset"])
    if not isinstance(resize, bool | np.bool_):
        raise ValueError(f"resize must be True or False, got {resize!r}")
    if size is not None:
        size = check_int("size", size, minimum=1 if resize else max(x.shape[1:]))
    params = {
        "J": J,
        "L": L,
        "size": size,
        "resize": bool(resize),
        "channel_norm": channel_norm,
        "n_components": n_components,
        "v": CACHE_VERSION,
    }
    path = cache_dir() / "scattering" / f"{_key(x, params)}.npy"
    if cache and path.exists():
        return np.load(path, allow_pickle=False)
    dev = check_device("device", device)
    S = Scattering2D((x.shape[1], x.shape[2]) if size is None else (size, size), J, L, device=dev)
    feats = []
    for i in tqdm(range(0, len(x), batch_size), desc="scattering", disable=not progress, unit="batch"):
        feats.append(S(_to_size(torch.from_numpy(x[i : i + batch_size]), size, resize)).cpu().numpy())
    Z = np.concatenate(feats)  # (N, C, h, w)
    # SENet scales every (image, channel) map to ∞-norm 1; the data-set variant keeps relative energies.
    scale = np.abs(Z).max(axis=(2, 3) if channel_norm == "sample" else (0, 2, 3), keepdims=True)
    Z = (Z / np.where(scale > 0, scale, 1.0)).reshape(len(Z), -1)
    if n_components is not None:
        k = check_int("n_components", n_components, minimum=1, maximum=Z.shape[1])
        G = Z.T.astype(np.float64) @ Z.astype(np.float64)  # XᵀX, no centring (SENet's eigh)
        _, V = np.linalg.eigh(G)
        Z = Z @ V[:, ::-1][:, :k].astype(np.float32)
    norms = np.linalg.norm(Z, axis=1, keepdims=True)
    Z = (Z / np.where(norms > 0, norms, 1.0)).astype(np.float32)
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path, "wb") as fh:  # a file object: np.save would rename a bare path
            np.save(fh, Z)
    return Z
