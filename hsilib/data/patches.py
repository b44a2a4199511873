"""Device-resident patch sampler.

The preprocessed cube is padded once and kept on the device, channels last;
a batch of patches is one gather by index. Nothing per sample runs in Python,
and the full set of patches (over 1 GB for Indian Pines at 19x19x40) is never
built.
"""

from __future__ import annotations

import numpy as np
import torch

PAD_MODES = ("reflect", "constant", "replicate")


class PatchSampler:
    """Gather patches, spectra or 3-D cubes centred on given pixels.

    Parameters
    ----------
    cube : (H, W, C) preprocessed image.
    patch_size : odd side length ``s`` of the square patch.
    device : where the padded cube lives and batches are made.
    pad_mode : how the border is padded: ``"reflect"``, ``"constant"`` (zeros)
        or ``"replicate"``.
    """

    def __init__(self, cube: np.ndarray, patch_size: int = 19,
                 device: str | torch.device = "cpu", pad_mode: str = "reflect"):
        if cube.ndim != 3:
            raise ValueError(f"cube must be (H, W, C), got shape {cube.shape}")
        if not isinstance(patch_size, (int, np.integer)) or patch_size < 1 or patch_size % 2 == 0:
            raise ValueError(f"patch_size must be a positive odd integer, got {patch_size!r}")
        if pad_mode not in PAD_MODES:
            raise ValueError(f"unknown pad_mode {pad_mode!r}; accepted: {', '.join(PAD_MODES)}")
        self.height, self.width, self.channels = cube.shape
        self.patch_size = int(patch_size)
        self.radius = r = self.patch_size // 2
        if pad_mode == "reflect" and r >= min(self.height, self.width):
            raise ValueError(f"patch_size {patch_size} too large for a {self.height}x{self.width} image")
        self.device = torch.device(device)
        chw = torch.as_tensor(np.ascontiguousarray(cube), dtype=torch.float32).permute(2, 0, 1)
        padded = torch.nn.functional.pad(chw[None], (r, r, r, r), mode=pad_mode)[0]
        # (Hp * Wp, C): row ``i`` is the spectrum of padded pixel ``i``, so one
        # index_select fetches whole contiguous spectra.
        self.padded_width = self.width + 2 * r
        self.table = padded.permute(1, 2, 0).reshape(-1, self.channels).contiguous().to(self.device)
        dy, dx = torch.meshgrid(torch.arange(self.patch_size), torch.arange(self.patch_size),
                                indexing="ij")
        self.offsets = (dy * self.padded_width + dx).reshape(-1).to(self.device)

    def _corners(self, index) -> torch.Tensor:
        """Padded flat index of each patch's top-left corner, from image flat indices."""
        index = torch.as_tensor(index, device=self.device)
        if index.is_floating_point() or index.is_complex() or index.dtype == torch.bool:
            raise TypeError(f"pixel indices must be integers, got {index.dtype}")
        index = index.to(torch.int64)
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= self.height * self.width):
            raise IndexError(f"pixel index out of range for a {self.height}x{self.width} image")
        rows, cols = index // self.width, index % self.width
        return rows * self.padded_width + cols  # centre (r+row, r+col) minus (r, r)

    def patches(self, index) -> torch.Tensor:
        """(N, C, s, s) patches centred on the flat pixel indices ``index``."""
        gather = self._corners(index)[:, None] + self.offsets[None, :]
        out = self.table.index_select(0, gather.reshape(-1))
        s = self.patch_size
        return out.view(-1, s, s, self.channels).permute(0, 3, 1, 2)

    def spectra(self, index) -> torch.Tensor:
        """(N, C) centre spectra."""
        centre = self._corners(index) + self.radius * (self.padded_width + 1)
        return self.table.index_select(0, centre)

    def cubes(self, index) -> torch.Tensor:
        """(N, 1, C, s, s) patches for 3-D convolutions."""
        return self.patches(index).unsqueeze(1)
