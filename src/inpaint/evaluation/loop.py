"""The evaluation loop: a model and OpenCV's classical methods on the same images and masks, per hole-ratio bin.

Every method receives only the known pixels (holes zeroed), every result is composited (known pixels from the input)
and compared with the original in [0, 1]: L1, PSNR, SSIM, the colour bias inside the holes, and LPIPS / FID where
their weights exist. Each mean comes with a bootstrap confidence interval over the images, and the model's gap to
each baseline with a paired one (:mod:`inpaint.evaluation.stats`), both from the per-image values. Batches use the
library convention: image (B, 3, H, W) in [0, 1], mask (B, 1, H, W) with 1 = valid, 0 = hole. The protocol is described in ``docs/evaluation.md``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from inpaint.data.masks.ratio import BIN_NAMES, hole_ratio_bin
from inpaint.evaluation.baselines import BASELINES, inpaint_opencv_batch
from inpaint.evaluation.methods import METHOD_LABELS, MODEL_METHOD
from inpaint.evaluation.metrics import COLOUR_BIAS, BinnedImageMetrics, hole_colour_bias, image_metrics
from inpaint.evaluation.perceptual import WEIGHT_MODES, build_fid, build_lpips
from inpaint.evaluation.report import OVERALL, EvaluationReport, Example
from inpaint.evaluation.stats import BootstrapSettings

if TYPE_CHECKING:
    from inpaint.inference import Inpainter

__all__ = ["evaluate"]

Batch = tuple[torch.Tensor, torch.Tensor] | Mapping[str, Any]
Predictor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@torch.inference_mode()
def evaluate(
    model: Inpainter | nn.Module | Predictor,
    data: Iterable[Batch],
    *,
    baselines: Sequence[str] = ("telea", "navier_stokes"),
    batch_size: int = 8,
    num_workers: int = 0,
    max_images: int | None = None,
    lpips: str = "auto",
    fid: str = "auto",
    num_examples: int = 4,
    progress: bool = True,
    device: str | torch.device | None = None,
    info: Mapping[str, Any] | None = None,
    ci_level: float = 0.95,
    ci_resamples: int = 2000,
    ci_seed: int = 0,
) -> EvaluationReport:
    """Evaluate a model and classical baselines on the same images and masks.

    Args:
        model: an :class:`~inpaint.Inpainter`, a network ``(image, mask) -> output`` (wrapped in an Inpainter on
            ``device``), or any callable ``(image (B,3,H,W), mask (B,1,H,W) 1=valid) -> (B,3,H,W)``.
        data: an iterable of batches, each ``(image, mask)`` or a dict with ``image``, ``mask`` (and optionally
            ``key``/``name`` per sample), image (B, 3, H, W) in [0, 1], mask (B, 1, H, W) 1 = valid; or a map-style
            dataset of such samples (batched here with ``batch_size`` / ``num_workers``).
        baselines: keys of :data:`inpaint.evaluation.baselines.BASELINES` to run on the same inputs.
        batch_size, num_workers: DataLoader settings when ``data`` is a dataset.
        max_images: stop after this many images.
        lpips, fid: ``"auto"`` (computed if the pretrained weights are already on disk, else skipped with the
            reason), ``"on"`` (required; may download), ``"off"``.
        num_examples: how many first / best / worst examples to keep for the grids.
        progress: show a progress bar (redrawn in place on a terminal; elsewhere, e.g. a notebook or a log file,
            written at most every 30 s so that it does not fill the output with lines).
        device: device for ``model`` when it is a plain network (an Inpainter keeps its own); LPIPS runs there too.
        info: extra entries for ``report.info`` (checkpoint path, data description ...).
        ci_level, ci_resamples, ci_seed: the bootstrap intervals of the report (coverage, number of resamples of
            the images, seed; :class:`~inpaint.evaluation.stats.BootstrapSettings`).

    Returns:
        An :class:`~inpaint.evaluation.report.EvaluationReport`.

    Example:
        >>> from inpaint.evaluation import evaluate
        >>> image, mask = torch.rand(2, 3, 32, 32), torch.ones(2, 1, 32, 32)
        >>> mask[:, :, 8:16, 8:16] = 0
        >>> copy_input = lambda img, m: img  # a "model" that leaves the (zeroed) holes black
        >>> report = evaluate(copy_input, [(image, mask)], progress=False, num_examples=0)
        >>> report.methods, int(report.summary["pconv"]["all"]["count"])
        (['pconv', 'telea', 'navier_stokes'], 2)
    """
    for name, mode in (("lpips", lpips), ("fid", fid)):
        if mode not in WEIGHT_MODES:
            raise ValueError(f"{name} must be one of {WEIGHT_MODES}, got {mode!r}")
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; available: {sorted(BASELINES)}")
    # Checked here, before the work, not after an hour of evaluation.
    settings = BootstrapSettings(level=ci_level, resamples=ci_resamples, seed=ci_seed)
    run_on = torch.device(getattr(model, "device", None) or device or "cpu")
    acc = _Accumulator([MODEL_METHOD, *baselines], _as_predictor(model, device), num_examples, run_on)
    acc.lpips_net, lpips_reason = build_lpips(lpips, run_on)
    acc.fid, fid_reason = build_fid(fid, acc.methods)
    acc.skipped = {k: v for k, v in (("lpips", lpips_reason), ("fid", fid_reason)) if v is not None}
    _run_batches(acc, _batches(data, batch_size, num_workers), max_images, progress)
    from inpaint.inference import Inpainter

    # An Inpainter's inference options change what "the model" means: the report says so (see report.to_markdown).
    options = model.options.describe() if isinstance(model, Inpainter) else None
    report = acc.report({"inference": options, **(info or {})})
    report.add_intervals(settings)  # from the per-image rows: nothing is measured twice
    return report


def _run_batches(acc: _Accumulator, batches: Iterable[Batch], max_images: int | None, progress: bool) -> None:
    from tqdm import tqdm  # the plain text bar: tqdm.auto needs ipywidgets in notebooks

    total = len(batches) if hasattr(batches, "__len__") else None  # type: ignore[arg-type]
    # Off a terminal every redraw becomes a line of its own (a notebook cell showed ~38 of them): draw at most every
    # 30 s there, and never just because the image count changed (set_postfix without refresh). A fixed miniters
    # keeps tqdm's monitor thread from forcing extra redraws after 10 s without one.
    sparse = {} if _on_terminal() else {"mininterval": 30.0, "miniters": 1}
    bar = tqdm(batches, total=total, desc="evaluate", unit="batch", disable=not progress, **sparse)
    with bar:
        for batch in bar:
            image, mask, names = _unpack(batch, acc.seen)
            if max_images is not None:
                keep = max_images - acc.seen
                image, mask, names = image[:keep], mask[:keep], names[:keep]
            acc.add(image, mask, names)
            bar.set_postfix(images=acc.seen, refresh=False)
            if max_images is not None and acc.seen >= max_images:
                break
    if acc.seen == 0:
        raise ValueError("no images to evaluate: the data yielded no batches")


def _on_terminal() -> bool:
    isatty = getattr(sys.stderr, "isatty", None)  # tqdm writes to stderr; it may be replaced by anything
    return bool(isatty and isatty())


@dataclass
class _Accumulator:
    """What :func:`evaluate` gathers batch by batch: per-bin metrics, per-image rows, examples and timings."""

    methods: list[str]
    predict: Predictor
    num_examples: int
    run_on: torch.device
    lpips_net: nn.Module | None = None
    fid: dict[str, nn.Module] | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    seen: int = 0
    per_image: list[dict[str, Any]] = field(default_factory=list)
    examples: dict[str, list[Example]] = field(default_factory=lambda: {"first": [], "best": [], "worst": []})
    binned: dict[str, BinnedImageMetrics] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, image: torch.Tensor, mask: torch.Tensor, names: list[str]) -> None:
        """Run every method on one batch and record its metrics."""
        # float64 ratio: a float32 0.1 (= 0.1 + 1.5e-9) would fall past hole_ratio_bin's tolerance into the next bin.
        ratio = 1.0 - mask.double().flatten(1).mean(dim=1)
        outputs: dict[str, torch.Tensor] = {}
        values: dict[str, dict[str, torch.Tensor]] = {}
        for method in self.methods:
            outputs[method] = self._composite(method, image, mask)
            values[method] = self._measure(method, outputs[method], image, mask, ratio)
            self._rows(method, values[method], names, ratio)
        if self.num_examples > 0:
            self._keep_examples(image, mask, names, ratio, outputs, values[MODEL_METHOD]["psnr"])
        self.seen += image.shape[0]

    def _composite(self, method: str, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        masked = image * mask  # methods only ever see the known pixels: nothing can leak from the target
        t0 = time.perf_counter()
        if method == MODEL_METHOD:
            out = self.predict(masked, mask).float().cpu()
            if out.shape != image.shape:
                raise ValueError(f"the model returned {tuple(out.shape)} for images {tuple(image.shape)}")
            out = out.clamp(0, 1)
        else:
            out = inpaint_opencv_batch(masked, mask, method)
        self.seconds[method] = self.seconds.get(method, 0.0) + time.perf_counter() - t0
        # Known pixels exactly as in the target (float, not quantised by OpenCV's uint8).
        return mask * image + (1 - mask) * out

    def _measure(
        self, method: str, out: torch.Tensor, image: torch.Tensor, mask: torch.Tensor, ratio: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        values = image_metrics(out, image) | hole_colour_bias(out, image, mask)
        if self.lpips_net is not None:
            lp = self.lpips_net(out.to(self.run_on), image.to(self.run_on), normalize=True)
            values["lpips"] = lp.flatten().float().cpu()
        if method not in self.binned:
            extra = (*COLOUR_BIAS, "lpips") if self.lpips_net is not None else COLOUR_BIAS
            self.binned[method] = BinnedImageMetrics(extra_metrics=extra)
        self.binned[method].update(out, image, ratio, precomputed=values)
        if self.fid is not None:
            self.fid[method].update(image, real=True)
            self.fid[method].update(out, real=False)
        return values

    def _rows(
        self, method: str, values: dict[str, torch.Tensor], names: list[str], ratio: torch.Tensor
    ) -> None:
        bins = hole_ratio_bin(ratio)
        for i, name in enumerate(names):
            row = {"index": self.seen + i, "name": name, "method": method, "hole_ratio": float(ratio[i])}
            row["bin"] = BIN_NAMES[int(bins[i])] if bins[i] >= 0 else ""
            self.per_image.append(row | {k: float(v[i]) for k, v in values.items()})

    def _keep_examples(
        self,
        image: torch.Tensor,
        mask: torch.Tensor,
        names: list[str],
        ratio: torch.Tensor,
        outputs: dict[str, torch.Tensor],
        model_psnr: torch.Tensor,
    ) -> None:
        shown = mask * image + (1 - mask)  # holes white
        new = [
            Example(
                index=self.seen + i,
                name=name,
                hole_ratio=float(ratio[i]),
                score=float(model_psnr[i]),
                images={"input": shown[i], "target": image[i], **{m: o[i] for m, o in outputs.items()}},
            )
            for i, name in enumerate(names)
        ]
        n, ex = self.num_examples, self.examples
        ex["first"] = (ex["first"] + new)[:n]
        ex["best"] = sorted(ex["best"] + new, key=lambda e: -e.score)[:n]
        ex["worst"] = sorted(ex["worst"] + new, key=lambda e: e.score)[:n]

    def _summary(self, method: str) -> dict[str, dict[str, float]]:
        values = {k: float(v) for k, v in self.binned[method].compute().items()}
        groups: dict[str, dict[str, float]] = {OVERALL: {"count": values["count"]}}
        for key, v in values.items():
            if "/" in key:
                metric, group = key.split("/", 1)
                groups.setdefault(group, {})[metric] = v
            elif key != "count":
                groups[OVERALL][key] = v
        if self.fid is not None:
            groups[OVERALL]["fid"] = float(self.fid[method].compute()) if self.seen >= 2 else float("nan")
        return {g: groups[g] for g in [*BIN_NAMES, OVERALL] if g in groups}

    def report(self, info: Mapping[str, Any] | None) -> EvaluationReport:
        run_info = {
            "num_images": self.seen,
            "methods": {m: METHOD_LABELS.get(m, m) for m in self.methods},
            "seconds": self.seconds,
            "images_per_second": {m: (self.seen / s if s > 0 else None) for m, s in self.seconds.items()},
            "metrics_on": "composited output, images in [0, 1]; L1 = mean absolute error over all pixels",
            **(info or {}),
        }
        return EvaluationReport(
            methods=self.methods,
            summary={m: self._summary(m) for m in self.methods},
            per_image=self.per_image,
            skipped=self.skipped,
            examples=self.examples if self.num_examples > 0 else {},
            info=run_info,
        )


def _unpack(batch: Batch, start: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    if isinstance(batch, Mapping):
        image, mask = batch["image"], batch["mask"]
        names = batch.get("key") or batch.get("name") or batch.get("path")
    elif isinstance(batch, list | tuple) and len(batch) >= 2:
        image, mask, names = batch[0], batch[1], None
    else:
        raise TypeError(
            f"a batch must be (image, mask) or a dict with 'image' and 'mask', got {type(batch).__name__}"
        )
    image, mask = torch.as_tensor(image), torch.as_tensor(mask)
    if mask.dim() == 3:
        mask = mask.unsqueeze(1)
    if image.dim() != 4 or image.shape[1] != 3 or mask.shape != (image.shape[0], 1, *image.shape[-2:]):
        raise ValueError(
            f"expected image (B, 3, H, W) and mask (B, 1, H, W) (1 = valid), got {tuple(image.shape)} and "
            f"{tuple(mask.shape)}"
        )
    n = image.shape[0]
    names = [str(x) for x in names] if isinstance(names, list | tuple) else [str(start + i) for i in range(n)]
    return image.float().clamp(0, 1), (mask.float() > 0.5).float(), names


def _as_predictor(model: Inpainter | nn.Module | Predictor, device: str | torch.device | None) -> Predictor:
    from inpaint.inference import Inpainter

    if isinstance(model, Inpainter):
        return model.inpaint_tensor
    if isinstance(model, nn.Module):
        return Inpainter(model, device=device or "cpu").inpaint_tensor
    if callable(model):
        return model
    raise TypeError(f"model must be an Inpainter, an nn.Module or a callable, got {type(model).__name__}")


def _batches(data: Iterable[Batch], batch_size: int, num_workers: int) -> Iterable[Batch]:
    from torch.utils.data import DataLoader, Dataset, IterableDataset

    if isinstance(data, Dataset) and not isinstance(data, IterableDataset):
        return DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    return data
