"""Small live computations for the dashboard's teaching and inspection views.

Everything here returns plain numpy arrays or tidy pandas DataFrames, computed with the engine
(`bntt_core.LIF`, `poisson_encode`, `direct_encode`, `BNTT`, `SharedBN`, the surrogates and the model
monitor protocol). The dashboard views only wire widgets to these functions and hand the results to
the figure builders in `bntt_core.plots`; notebooks may call them directly.

    current = input_current("step", num_steps=60, amplitude=0.3, onset=10)
    trace = lif_trace(current, leak=0.95, threshold=1.0, reset="soft")      # t, current, membrane, spike
    coded = encode_image(pixels, mean=0.1307, std=0.3081, num_steps=8)      # {"poisson", "direct"}
    shapes = surrogate_shapes(threshold=1.0)                                 # membrane, surrogate, gradient
    demo = bn_vs_bntt_demo(num_steps=10)                                     # per-step BN vs BNTT stats
    raster = record_spike_raster(model, image, layer="conv1", neurons=[0, 5, 9])

Run `python -m bntt_core.explore` for a short printed tour.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bntt_core.encoding import direct_encode, poisson_encode
from bntt_core.neurons import LIF
from bntt_core.norms import BNTT, SharedBN
from bntt_core.surrogate import SURROGATES

CURRENT_SHAPES = ("constant", "step", "noisy")


# -------------------------------------------------------------------------------------- run listing
def describe_runs(roots: list[Path]) -> list[dict]:
    """One plain dict per run directory under `roots` (via `bntt_core.runs.find_runs`): path, name,
    root, error (None when healthy), summary (arch, dataset, norm, T, kind, test accuracy, ...) and
    the analysis tables present. Broken or foreign runs keep their error message and an empty summary.
    """
    from bntt_core.runs import find_runs
    from bntt_core.tables import ANALYSIS_DIR, TABLES, table_file

    cards = []
    for entry in find_runs(list(roots)):
        path = Path(entry.path)
        root = next((str(r) for r in roots if _is_below(path, Path(r))), str(path.parent))
        summary = {}
        if entry.error is None:
            summary = {"kind": entry.kind, "arch": entry.arch, "dataset": entry.dataset, "norm": entry.norm,
                       "spiking": entry.spiking, "num_steps": entry.num_steps, "test_accuracy": entry.test_accuracy,
                       "epochs_done": entry.epochs_done, "created": entry.created, "preset": entry.preset}
        present = tuple(name for name in TABLES if (path / ANALYSIS_DIR / table_file(name)).is_file())
        cards.append({"path": str(path), "name": _display_name(path, Path(root)), "root": root,
                      "error": entry.error, "summary": summary, "tables": present})
    return cards


def _is_below(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def _display_name(path: Path, root: Path) -> str:
    try:
        relative = path.resolve().relative_to(root.resolve())
    except ValueError:
        return path.name
    return str(relative) if str(relative) != "." else path.name


def run_label(summary: dict) -> str:
    """A short description of a run from its summary: 'vgg9 · bntt · T 25 · cifar10'."""
    if not summary:
        return ""
    if summary.get("spiking") is False:
        model = f"{summary.get('arch')} ANN"
    else:
        model = f"{summary.get('arch')} · {summary.get('norm')} · T {summary.get('num_steps')}"
    if summary.get("kind") == "converted":
        model += " · converted"
    return f"{model} · {summary.get('dataset')}"


# --------------------------------------------------------------------------------------------- LIF
def input_current(shape: str, *, num_steps: int, amplitude: float, onset: int = 0, noise_std: float = 0.0,
                  seed: int = 0) -> np.ndarray:
    """A 1-D input current over `num_steps` steps.

    constant: `amplitude` at every step; step: 0 before step `onset` (0-based), `amplitude` from it on;
    noisy: `amplitude` plus Gaussian noise of std `noise_std` (seeded) at every step.
    """
    if shape not in CURRENT_SHAPES:
        raise ValueError(f"unknown current shape {shape!r}; choose one of {list(CURRENT_SHAPES)}")
    if int(num_steps) < 1:
        raise ValueError(f"num_steps must be ≥ 1; got {num_steps}")
    current = np.full(int(num_steps), float(amplitude), dtype=np.float64)
    if shape == "step":
        current[: max(0, int(onset))] = 0.0
    elif shape == "noisy":
        if noise_std < 0:
            raise ValueError(f"noise_std must be ≥ 0; got {noise_std}")
        current = current + np.random.default_rng(seed).normal(0.0, float(noise_std), size=current.shape)
    return current


def lif_trace(current: np.ndarray, *, leak: float, threshold: float, reset: str = "soft") -> pd.DataFrame:
    """One LIF neuron driven by `current` [T]: a row per step (t = 1..T).

    Columns: t, current, membrane (U after charging, before the reset: what is compared with the
    threshold), membrane_after_reset, spike (0/1), threshold.
    """
    values = torch.as_tensor(np.asarray(current, dtype=np.float64)).view(-1, 1)  # [T, B=1]
    neuron = LIF(leak=leak, threshold=threshold, reset=reset)
    with torch.no_grad():
        spikes, membrane = neuron(values, return_membrane=True)
    spikes_np = spikes.view(-1).numpy().astype(np.int64)
    membrane_np = membrane.view(-1).numpy().astype(np.float64)
    if reset == "soft":
        after = membrane_np - threshold * spikes_np
    else:
        after = np.where(spikes_np > 0, 0.0, membrane_np)
    return pd.DataFrame({
        "t": np.arange(1, len(spikes_np) + 1),
        "current": values.view(-1).numpy(),
        "membrane": membrane_np,
        "membrane_after_reset": after,
        "spike": spikes_np,
        "threshold": float(threshold),
    })


def lif_firing_rate(trace: pd.DataFrame) -> float:
    """Spikes per step of a `lif_trace` table."""
    return float(trace["spike"].mean()) if len(trace) else 0.0


# ---------------------------------------------------------------------------------------- encoding
def encode_image(pixels: np.ndarray, *, mean: float | list[float], std: float | list[float], num_steps: int,
                 seed: int = 0, rescale: float = 2.0) -> dict[str, np.ndarray]:
    """Poisson and direct coding of one image over time.

    `pixels`: [H, W] or [C, H, W] in [0, 1]. The image is normalised with `mean`/`std` (per channel)
    first, as the models see it (SPEC "Input coding"). Returns {"poisson": [T, C, H, W] ternary
    spikes, "direct": [T, C, H, W] the analog normalised image at every step, "normalised": [C, H, W]}.
    """
    image = np.asarray(pixels, dtype=np.float32)
    if image.ndim == 2:
        image = image[None]
    if image.ndim != 3:
        raise ValueError(f"expected an image [H, W] or [C, H, W]; got shape {image.shape}")
    channels = image.shape[0]
    mean_arr = np.broadcast_to(np.asarray(mean, dtype=np.float32).reshape(-1), (channels,)).reshape(-1, 1, 1)
    std_arr = np.broadcast_to(np.asarray(std, dtype=np.float32).reshape(-1), (channels,)).reshape(-1, 1, 1)
    normalised = torch.from_numpy((image - mean_arr) / std_arr).unsqueeze(0)  # [B=1, C, H, W]
    generator = torch.Generator().manual_seed(int(seed))
    poisson = poisson_encode(normalised, num_steps, rescale=rescale, generator=generator)[:, 0]
    direct = direct_encode(normalised, num_steps)[:, 0]
    return {"poisson": poisson.numpy().copy(), "direct": direct.numpy().copy(),
            "normalised": normalised[0].numpy().copy()}


def encoding_summary(coded: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per coding and step: the fraction of non-zero inputs and the mean input (tidy)."""
    rows = []
    for coding in ("poisson", "direct"):
        frames = coded[coding]
        for t in range(frames.shape[0]):
            rows.append({"coding": coding, "t": t + 1, "active_fraction": float((frames[t] != 0).mean()),
                         "mean_input": float(frames[t].mean())})
    return pd.DataFrame(rows)


def poisson_average(coded: dict[str, np.ndarray], steps: int) -> np.ndarray:
    """Mean of the first `steps` Poisson frames ×rescale-free: how the rate code approaches the image."""
    steps = max(1, min(int(steps), coded["poisson"].shape[0]))
    return coded["poisson"][:steps].mean(axis=0)


EMBEDDED_DIGITS = Path(__file__).resolve().parent.parent / "data" / "mnist10k.npz"
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # the usual MNIST statistics, for the coding demo


def example_digits(path: str | Path | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """(images [N, 28, 28] float in [0, 1], labels [N]) of the embedded mnist10k file, or None when
    it is not on disk (the Learn view then draws `synthetic_digit`)."""
    path = Path(path) if path is not None else EMBEDDED_DIGITS
    if not path.is_file():
        return None
    with np.load(path) as archive:
        if "images" not in archive.files or "labels" not in archive.files:
            return None
        images = archive["images"]
        labels = archive["labels"]
    images = images.astype(np.float32) / (255.0 if images.dtype == np.uint8 else 1.0)
    return images.reshape(len(images), *images.shape[-2:]), labels.astype(np.int64)


def synthetic_digit(size: int = 28) -> np.ndarray:
    """A drawn '7' in [0, 1] [size, size]: the Learn view's image when no dataset is on disk."""
    image = np.zeros((size, size), dtype=np.float32)
    top, left, right = size // 5, size // 4, size - size // 4
    image[top:top + max(2, size // 12), left:right] = 1.0  # the bar
    rows = np.arange(top, size - size // 7)
    for r in rows:  # the stroke down to the left
        c = int(right - 1 - (r - top) * (right - left) / (2 * len(rows)))
        image[r, max(0, c - 1):c + 2] = 1.0
    return image


# -------------------------------------------------------------------------------------- surrogates
def surrogate_shapes(*, threshold: float = 1.0, lower: float | None = None, upper: float | None = None,
                     points: int = 401, names: list[str] | None = None) -> pd.DataFrame:
    """∂s/∂U of every surrogate (bntt_core.surrogate) over a membrane range, plus the Heaviside step.

    Columns: membrane, surrogate, value, kind ("gradient" for the surrogates, "forward" for H(U − θ)).
    """
    lower = -threshold if lower is None else lower
    upper = 3.0 * threshold if upper is None else upper
    membrane = torch.linspace(float(lower), float(upper), int(points), dtype=torch.float64)
    frames = []
    for name in names or list(SURROGATES):
        gradient = SURROGATES[name](membrane, float(threshold))
        frames.append(pd.DataFrame({"membrane": membrane.numpy(), "surrogate": name,
                                    "value": gradient.numpy(), "kind": "gradient"}))
    step = (membrane > threshold).to(torch.float64)
    frames.append(pd.DataFrame({"membrane": membrane.numpy(), "surrogate": "heaviside", "value": step.numpy(),
                                "kind": "forward"}))
    return pd.concat(frames, ignore_index=True)


# ---------------------------------------------------------------------------------- BN vs BNTT demo
DRIFTS = ("rise_then_fall", "rising", "falling")


def _drifting_mean(drift: str, num_steps: int, peak: float) -> np.ndarray:
    t = np.linspace(0.0, 1.0, num_steps)
    if drift == "rise_then_fall":
        return peak * np.sin(np.pi * t) ** 2  # activity builds up, peaks mid-way, dies down (Fig 1C)
    if drift == "rising":
        return peak * t
    if drift == "falling":
        return peak * (1.0 - t)
    raise ValueError(f"unknown drift {drift!r}; choose one of {list(DRIFTS)}")


def bn_vs_bntt_demo(*, num_steps: int = 10, channels: int = 4, batch_size: int = 64, drift: str = "rise_then_fall",
                    peak: float = 3.0, spread_growth: float = 1.0, train_batches: int = 40,
                    seed: int = 0) -> pd.DataFrame:
    """Why per-step statistics matter: standard BN (one set of statistics for all steps, `SharedBN`)
    against BNTT (one per step), both fitted in train mode on synthetic currents whose mean and spread
    change over time, then evaluated with their running statistics on a fresh batch.

    A row per step t = 1..T with: input_mean, input_std (what the layer really sees at t),
    bn_running_mean (the single stored mean, the same at every t), bntt_running_mean (step t's own),
    bn_output_mean/std and bntt_output_mean/std (after normalisation at eval: BNTT stays near 0/1 at
    every step, shared BN is biased wherever the step's statistics differ from the average).
    """
    if int(num_steps) < 1 or int(channels) < 1 or int(batch_size) < 2 or int(train_batches) < 1:
        raise ValueError("num_steps and channels must be ≥ 1, batch_size ≥ 2, train_batches ≥ 1")
    generator = torch.Generator().manual_seed(int(seed))
    means = torch.as_tensor(_drifting_mean(drift, int(num_steps), float(peak)), dtype=torch.float32)
    spreads = 1.0 + float(spread_growth) * torch.linspace(0.0, 1.0, int(num_steps))

    def sample() -> torch.Tensor:  # [T, B, C]
        noise = torch.randn((int(num_steps), int(batch_size), int(channels)), generator=generator)
        return means.view(-1, 1, 1) + spreads.view(-1, 1, 1) * noise

    shared, per_step = SharedBN(int(channels)), BNTT(int(channels), int(num_steps))
    shared.train()
    per_step.train()
    with torch.no_grad():
        for _ in range(int(train_batches)):
            batch = sample()
            shared(batch)
            per_step(batch)
        shared.eval()
        per_step.eval()
        test = sample()
        shared_out, bntt_out = shared(test), per_step(test)
    return pd.DataFrame({
        "t": np.arange(1, int(num_steps) + 1),
        "input_mean": test.mean(dim=(1, 2)).numpy(),
        "input_std": test.std(dim=(1, 2)).numpy(),
        "bn_running_mean": float(shared.running_mean.mean()),
        "bntt_running_mean": per_step.running_mean.mean(dim=1).numpy(),
        "bn_output_mean": shared_out.mean(dim=(1, 2)).numpy(),
        "bn_output_std": shared_out.std(dim=(1, 2)).numpy(),
        "bntt_output_mean": bntt_out.mean(dim=(1, 2)).numpy(),
        "bntt_output_std": bntt_out.std(dim=(1, 2)).numpy(),
    })


# ---------------------------------------------------------------------------------- live recordings
class SpikeRecorder:
    """A `bntt_core.models.Monitor` that keeps the spikes (and optionally membranes) of chosen layers."""

    def __init__(self, layers: list[str] | None = None, wants_membrane: bool = False):
        self.layers = None if layers is None else set(layers)
        self.wants_membrane = wants_membrane
        self.spikes: dict[str, torch.Tensor] = {}
        self.membranes: dict[str, torch.Tensor] = {}

    def __call__(self, layer_name: str, values: dict) -> None:
        if self.layers is not None and layer_name not in self.layers:
            return
        self.spikes[layer_name] = values["spikes"].detach().float().cpu()
        if values.get("membrane") is not None:
            self.membranes[layer_name] = values["membrane"].detach().float().cpu()


def layer_neuron_count(model: torch.nn.Module, image: torch.Tensor, layer: str, *, seed: int = 0) -> int:
    """Number of neurons in one hidden layer (channels × positions) for this model's input size."""
    spikes = record_layer_spikes(model, image, [layer], seed=seed)[layer]
    return int(spikes[0, 0].numel())


@torch.inference_mode()
def record_layer_spikes(model: torch.nn.Module, image: torch.Tensor, layers: list[str] | None = None, *,
                        seed: int = 0) -> dict[str, torch.Tensor]:
    """Spikes [T, B, ...] of the chosen hidden layers for one normalised image batch [B, C, H, W]."""
    recorder = SpikeRecorder(layers)
    generator = torch.Generator(device=image.device).manual_seed(int(seed))
    model.eval()
    model(image, generator=generator, monitor=recorder)
    return recorder.spikes


def record_spike_raster(model: torch.nn.Module, image: torch.Tensor, *, layer: str, neurons: list[int] | None = None,
                        max_neurons: int = 64, seed: int = 0) -> pd.DataFrame:
    """A raster of one layer for one normalised image [1, C, H, W] (or [C, H, W]).

    `neurons` are flat indices into the layer's neurons (channel-major); by default the `max_neurons`
    most active ones. Returns one row per (neuron, step) with columns neuron, t (1..T), spike (0/1).
    """
    if image.dim() == 3:
        image = image.unsqueeze(0)
    spikes = record_layer_spikes(model, image[:1], [layer], seed=seed)
    if layer not in spikes:
        raise ValueError(f"layer {layer!r} not found; the model's hidden layers are {list(model.layer_names)}")
    flat = spikes[layer][:, 0].flatten(1)  # [T, N]
    total = flat.shape[1]
    if neurons is None:
        counts = flat.sum(0)
        order = torch.argsort(counts, descending=True, stable=True)
        chosen = sorted(order[: min(int(max_neurons), total)].tolist())
    else:
        bad = [n for n in neurons if not 0 <= int(n) < total]
        if bad:
            raise ValueError(f"neuron indices {bad} are outside layer {layer!r} (it has {total} neurons)")
        chosen = [int(n) for n in neurons]
    steps = flat.shape[0]
    values = flat[:, chosen].numpy()  # [T, len(chosen)]
    return pd.DataFrame({
        "neuron": np.repeat(np.asarray(chosen), steps),
        "t": np.tile(np.arange(1, steps + 1), len(chosen)),
        "spike": values.T.reshape(-1).astype(np.int64),
    })


if __name__ == "__main__":
    trace = lif_trace(input_current("step", num_steps=30, amplitude=0.3, onset=5), leak=0.95, threshold=1.0)
    print("LIF on a step current: spikes at t =", trace.loc[trace.spike == 1, "t"].tolist())
    print(bn_vs_bntt_demo(num_steps=6).round(3).to_string(index=False))
