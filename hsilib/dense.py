"""Scoring many pixels of one image at once, without cutting a patch for each.

A patch network (CNN2D, CNN3D and every pruned, gated, low-rank or student
variant of them) starts with valid, stride-1 convolutions, batch norm and
ReLU: each output position depends only on the input window under it, so the
features of every patch are windows of the features of the whole padded
image. Computed once over the image, they serve every pixel: for 19x19
patches, CNN2D's first convolution runs at 225 positions a patch but at one
position a pixel over the image. The max-pool that follows (kernel = stride)
has a phase that depends on where the patch starts; pooling the image's
features with stride 1 and reading each pixel's pooled window with a step
of the kernel gives every phase. The layers after the pool then run on each
pixel's window, exactly as in the network's forward pass.

The result equals the patch-by-patch forward pass up to floating-point
rounding (convolutions sum in another order). The image is processed in
bands of rows; a band whose pixels are too few to pay for the image's
positions (sparse validation pixels, say) is scored patch by patch.
Training, and the measurement of latency and throughput, stay per patch:
they measure what a deployed network does with one patch.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .data.patches import PatchSampler
from .models.network import Network

# Output rows of the image computed at once: bounds memory (CNN3D on a
# 340-pixel-wide scene: ~40 MB of features a band) and keeps reuse high.
BAND_ROWS = 32
# Layers a spatial stage may hold: each output position depends only on the window under it.
_SPATIAL = (nn.Conv2d, nn.Conv3d, nn.modules.batchnorm._BatchNorm, nn.Sequential, nn.Identity, nn.ReLU)


def _spatial(module: nn.Module) -> bool:
    """Whether ``module`` computes each output position from the window under it."""
    if isinstance(module, (nn.Conv2d, nn.Conv3d)):
        return (all(s == 1 for s in module.stride) and all(d == 1 for d in module.dilation)
                and module.padding in ("valid", (0,) * len(module.stride)))
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return not module.training
    return isinstance(module, _SPATIAL) and all(_spatial(child) for child in module.children())


def _plan(model: nn.Module) -> tuple[list, nn.Module, list] | None:
    """The stages before the pool, the pool, and the stages after it; ``None``
    where the network is not of that form."""
    if not isinstance(model, Network):
        return None
    stages = model.stages()
    taps = [stage.tap for stage in stages]
    if "pool" not in taps:
        return None
    cut = taps.index("pool")
    pool = getattr(model, "pool", None)
    if not isinstance(pool, (nn.MaxPool2d, nn.MaxPool3d)) or pool.padding not in (0, (0, 0, 0)):
        return None
    kernel, stride = _pair(pool.kernel_size, pool), _pair(pool.stride, pool)
    if kernel != stride or pool.dilation not in (1, (1, 1, 1)) or pool.ceil_mode:
        return None
    if not all(_spatial(getattr(model, name)) for stage in stages[:cut] for name in stage.layers):
        return None
    return stages[:cut], pool, stages[cut + 1:]


def _pair(value, pool: nn.Module) -> tuple[int, ...]:
    """A pool's spatial (last two) kernel or stride; deeper dims must be 1."""
    dims = 3 if isinstance(pool, nn.MaxPool3d) else 2
    value = (value,) * dims if isinstance(value, int) else tuple(value)
    if dims == 3 and value[0] != 1:
        return (-1, -1)  # pooling over bands: not handled
    return value[-2:]


def scores(model: nn.Module, view: Callable, index: np.ndarray,
           patchwise: Callable[[np.ndarray], np.ndarray], context: Callable[[], object]) -> np.ndarray:
    """(N, K) float32 scores of ``model`` (in eval mode, gradients off) on
    pixels ``index``: computed over the image in bands where the view is a
    :class:`~hsilib.data.PatchSampler`'s ``patches`` or ``cubes`` and the
    network is valid convolutions, a pool and a head; by ``patchwise(index)``
    for the rest. ``context()`` is entered around each band (autocast)."""
    sampler = getattr(view, "__self__", None)
    plan = _plan(model)
    name = getattr(view, "__name__", None)
    if not isinstance(sampler, PatchSampler) or name not in ("patches", "cubes") or plan is None:
        return patchwise(index)
    before, pool, after = plan
    cube = name == "cubes"
    s, width = sampler.patch_size, sampler.width
    k = pool.kernel_size if isinstance(pool.kernel_size, int) else pool.kernel_size[-1]
    image = sampler.table.view(-1, sampler.padded_width, sampler.channels).permute(2, 0, 1)
    rows, cols = index // width, index % width
    out, done = None, np.zeros(len(index), bool)
    for band in np.unique(rows // BAND_ROWS):
        members = np.flatnonzero(rows // BAND_ROWS == band)
        r0, r1 = int(rows[members].min()), int(rows[members].max()) + 1
        c0, c1 = int(cols[members].min()), int(cols[members].max()) + 1
        # Output positions of the first layer: over the band's image window, or per patch.
        area, per_patch = (r1 - r0 + s - 1) * (c1 - c0 + s - 1), len(members) * s * s
        if area > per_patch:
            continue
        window = image[:, r0:r1 + s - 1, c0:c1 + s - 1][None]
        x = window.unsqueeze(1) if cube else window
        with context():
            for stage in before:
                x = stage.run(x)
            # One patch's features are (feature side) = (window side) - (c1 - c0) + 1 wide.
            side = (x.shape[-1] - (c1 - c0) + 1) // k
            pooled = F.max_pool2d(x.flatten(1, -3), k, stride=1)
            pooled = pooled.view(*x.shape[1:-2], *pooled.shape[-2:])
            # A pixel's pool output (u, v) is the stride-1 pool at its corner + k * (u, v).
            steps = torch.arange(side, device=pooled.device) * k
            y = torch.as_tensor(rows[members] - r0, device=pooled.device)[:, None] + steps
            z = torch.as_tensor(cols[members] - c0, device=pooled.device)[:, None] + steps
            x = pooled[..., y[:, :, None], z[:, None, :]].movedim(-3, 0)  # (N, C, [D,] side, side)
            for stage in after:
                x = stage.run(x)
        if out is None:
            out = np.empty((len(index), x.shape[1]), np.float32)
        out[members] = x.float().cpu().numpy()
        done[members] = True
    if out is None:
        return patchwise(index)
    missing = np.flatnonzero(~done)
    if len(missing):
        out[missing] = patchwise(index[missing])
    return out
