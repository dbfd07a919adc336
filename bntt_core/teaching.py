"""Small live computations for the dashboard's Learn view, its inspection panels and the workshop notebooks.

Everything here returns plain numpy arrays or tidy pandas DataFrames, computed with the engine
(`bntt_core.LIF`, `poisson_encode`, `direct_encode`, `BNTT`, `StepBN`, the surrogates and the model
monitor protocol). The dashboard views only wire widgets to these functions and hand the results to
the figure builders in `bntt_core.viz`; notebooks may call them directly.

    current = input_current("step", num_steps=60, amplitude=0.3, onset=10)
    trace = lif_trace(current, leak=0.95, threshold=1.0, reset="soft")      # t, current, membrane, spike
    coded = encode_image(pixels, mean=0.1307, std=0.3081, num_steps=8)      # {"poisson", "direct"}
    shapes = surrogate_shapes(threshold=1.0)                                 # membrane, surrogate, gradient
    demo = bn_vs_bntt_demo(num_steps=10)                                     # per-step BN vs BNTT stats
    raster = record_spike_raster(model, image, layer="conv1", neurons=[0, 5, 9])

Run `python -m bntt_core.teaching` for a short printed tour.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from bntt_core.nn.encoding import direct_encode, poisson_encode
from bntt_core.nn.neurons import LIF
from bntt_core.nn.norms import BNTT, StepBN
from bntt_core.nn.surrogate import SURROGATES

CURRENT_SHAPES = ("constant", "step", "noisy")


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
    from bntt_core.data.pixels import normalize_channels

    mean_arr = np.broadcast_to(np.asarray(mean, dtype=np.float32).reshape(-1), (channels,))  # one per channel
    std_arr = np.broadcast_to(np.asarray(std, dtype=np.float32).reshape(-1), (channels,))
    normalised = normalize_channels(torch.from_numpy(image.copy()), mean_arr.tolist(), std_arr.tolist())
    normalised = normalised.unsqueeze(0)  # [B=1, C, H, W]
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
    """Mean of the first `steps` Poisson frames. As `steps` grows it approaches the spike probability
    sign(x)·min(|x|/rescale, 1) of the normalised image x: what the rate code carries."""
    steps = max(1, min(int(steps), coded["poisson"].shape[0]))
    return coded["poisson"][:steps].mean(axis=0)


MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # the usual MNIST statistics, for the drawn fallback digit


def example_digits() -> dict | None:
    """The test split of the embedded mnist10k digits (`bntt_core.data.load_data`), for teaching:
    {"images": [N, 28, 28] float in [0, 1], "labels": [N], "mean": float, "std": float, "source": str};
    None when the data is not on disk (the Learn view then draws `synthetic_digit`)."""
    from bntt_core.data.core import DataError
    from bntt_core.data.load import load_data
    from bntt_core.data.pixels import to_pixels

    try:
        _train, test, info = load_data("mnist10k")
    except DataError:
        return None
    images = to_pixels(test.images)[:, 0].numpy()  # [N, 1, 28, 28] uint8 → [N, 28, 28] float
    return {"images": images, "labels": test.labels.numpy(), "mean": float(info.mean[0]),
            "std": float(info.std[0]), "source": info.source}


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
    """∂s/∂U of every surrogate (bntt_core.nn.surrogate) over a membrane range, plus the Heaviside step.

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
    """Why per-step statistics matter: the paper's standard BN (`StepBN`, norm="bn": one BatchNorm
    called at every step, so in training step t is normalised with its own batch statistics, but only
    ONE running mean/var is stored) against BNTT (a running mean/var per step), both fitted in train
    mode on synthetic currents whose mean and spread change over time, then evaluated with their
    running statistics on a fresh batch: the inference mismatch BNTT removes (paper Fig 3).

    A row per step t = 1..T with: input_mean, input_std (what the layer really sees at t),
    bn_running_mean (standard BN's one stored mean, the same at every t), bntt_running_mean (step t's
    own), bn_output_mean/std and bntt_output_mean/std (after normalisation at eval: BNTT stays near 0/1
    at every step; standard BN's output mean drifts with t, biased wherever the step's mean differs
    from the one stored mean).
    """
    if int(num_steps) < 1 or int(channels) < 1 or int(batch_size) < 2 or int(train_batches) < 1:
        raise ValueError("num_steps and channels must be ≥ 1, batch_size ≥ 2, train_batches ≥ 1")
    generator = torch.Generator().manual_seed(int(seed))
    means = torch.as_tensor(_drifting_mean(drift, int(num_steps), float(peak)), dtype=torch.float32)
    spreads = 1.0 + float(spread_growth) * torch.linspace(0.0, 1.0, int(num_steps))

    def sample() -> torch.Tensor:  # [T, B, C]
        noise = torch.randn((int(num_steps), int(batch_size), int(channels)), generator=generator)
        return means.view(-1, 1, 1) + spreads.view(-1, 1, 1) * noise

    standard, per_step = StepBN(int(channels)), BNTT(int(channels), int(num_steps))
    standard.train()
    per_step.train()
    with torch.no_grad():
        for _ in range(int(train_batches)):
            batch = sample()
            standard(batch)
            per_step(batch)
        standard.eval()
        per_step.eval()
        test = sample()
        standard_out, bntt_out = standard(test), per_step(test)
    return pd.DataFrame({
        "t": np.arange(1, int(num_steps) + 1),
        "input_mean": test.mean(dim=(1, 2)).numpy(),
        "input_std": test.std(dim=(1, 2)).numpy(),
        "bn_running_mean": float(standard.running_mean.mean()),
        "bntt_running_mean": per_step.running_mean.mean(dim=1).numpy(),
        "bn_output_mean": standard_out.mean(dim=(1, 2)).numpy(),
        "bn_output_std": standard_out.std(dim=(1, 2)).numpy(),
        "bntt_output_mean": bntt_out.mean(dim=(1, 2)).numpy(),
        "bntt_output_std": bntt_out.std(dim=(1, 2)).numpy(),
    })


# ---------------------------------------------------------------------------------- live recordings
class SpikeRecorder:
    """A `bntt_core.nn.models.Monitor` that keeps the spikes (and optionally membranes) of chosen layers."""

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


@torch.inference_mode()
def record_layer_spikes(model: torch.nn.Module, image: torch.Tensor, layers: list[str] | None = None, *,
                        seed: int = 0) -> dict[str, torch.Tensor]:
    """Spikes [T, B, ...] of the chosen hidden layers for one normalised image batch [B, C, H, W]."""
    recorder = SpikeRecorder(layers)
    generator = torch.Generator(device=image.device).manual_seed(int(seed))
    model.eval()
    model(image, generator=generator, monitor=recorder)
    return recorder.spikes


RASTER_SELECTIONS = ("spread", "most_active")


def record_spike_raster(model: torch.nn.Module, image: torch.Tensor, *, layer: str, neurons: list[int] | None = None,
                        max_neurons: int = 64, selection: str = "most_active", seed: int = 0) -> pd.DataFrame:
    """A raster of one layer for one normalised image [1, C, H, W] (or [C, H, W], or event frames
    [T, 1, C, H, W]).

    `neurons` are flat indices into the layer's neurons (channel-major). Without them, `max_neurons`
    neurons are picked by `selection`: "most_active" the ones with most spikes (the default), "spread"
    neurons that fired at least once, evenly spaced over their ranking by spike count (busy and quiet
    ones alike; silent neurons only if too few fired). Returns one row per (neuron, step) with columns
    neuron, t (1..T), spike (0/1).
    """
    if selection not in RASTER_SELECTIONS:
        raise ValueError(f"unknown selection {selection!r}; choose one of {list(RASTER_SELECTIONS)}")
    if image.dim() == 3:
        image = image.unsqueeze(0)
    if image.dim() == 4:
        image = image[:1]  # (event frames [T, 1, C, H, W] are already one sample)
    spikes = record_layer_spikes(model, image, [layer], seed=seed)
    if layer not in spikes:
        raise ValueError(f"layer {layer!r} not found; the model's hidden layers are {list(model.layer_names)}")
    flat = spikes[layer][:, 0].flatten(1)  # [T, N]
    total = flat.shape[1]
    if neurons is None:
        counts = flat.sum(0)
        order = torch.argsort(counts, descending=True, stable=True)  # busiest first
        wanted = min(int(max_neurons), total)
        if selection == "most_active":
            chosen = order[:wanted].tolist()
        else:
            fired = int((counts > 0).sum())
            pool = order[:max(fired, wanted)]  # the neurons that fired, topped up with silent ones
            picks = np.unique(np.linspace(0, len(pool) - 1, wanted).round().astype(np.int64))
            chosen = pool[torch.as_tensor(picks)].tolist()
        chosen = sorted(chosen)
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


def test_example(test_set, info, index: int) -> dict:
    """One test example ready for display and for a model.

    Returns {"pixels": [H, W, C] ([H, W] for grey) float in [0, 1] for display (None for event frames),
    "model_input": normalised [1, C, H, W] (or time-major event frames [T, 1, C, H, W]), "label": int,
    "class_name": str}.
    """
    from bntt_core.data.pixels import normalize, to_pixels

    count = len(test_set.labels)
    if not 0 <= int(index) < count:
        raise ValueError(f"image index {index} is outside the test set (0..{count - 1})")
    images = test_set.images[int(index):int(index) + 1]
    label = int(test_set.labels[int(index)])
    names = list(getattr(info, "class_names", None) or [])
    class_name = str(names[label]) if label < len(names) else str(label)
    if images.dim() == 5:  # event frames [1, T, C, H, W]: no pixels to normalise
        return {"pixels": None, "model_input": images.float().transpose(0, 1), "label": label,
                "class_name": class_name}
    pixels = to_pixels(images)
    shown = pixels[0].permute(1, 2, 0).numpy()  # [H, W, C]
    return {"pixels": shown[..., 0] if shown.shape[-1] == 1 else shown, "model_input": normalize(pixels, info),
            "label": label, "class_name": class_name}


def _display(pixels: torch.Tensor) -> np.ndarray:
    """[1, C, H, W] pixels in [0, 1] → [H, W] (grey) or [H, W, C] for showing as an image."""
    shown = pixels[0].detach().permute(1, 2, 0).cpu().numpy()
    return shown[..., 0] if shown.shape[-1] == 1 else shown


def perturbation_predictions(models: dict, pixels: torch.Tensor, label: int, *, sigma: float, epsilon: float,
                             seed: int = 0, class_names: list[str] | None = None,
                             noise_mode: str = "unclipped") -> dict:
    """One test image clean, with Gaussian noise and under FGSM, and every model's prediction on each.

    `models`: {name: (model, DataInfo)}; `pixels`: the clean image [1, C, H, W] in [0, 1] (or uint8).
    Noise and attack act on the pixels, which each model then normalises with its own statistics, as
    in `bntt_core.analysis.robustness` (Fig 8): noise x + σ·z (z seeded) as `noise_mode` says (unclipped, the
    default and the paper's; clipped to [0, 1]; or shift: x + σ, no noise); FGSM x + ε·sign(∇_x L)
    with each model's OWN gradient (SNN-crafted through the surrogate for SNNs,
    `bntt_core.analysis.robustness.fgsm_signs`), clipped. Predictions use the Poisson stream seeded with `seed`.

    Returns {"clean", "noisy": display images, "adversarial": {name: display image}, "predictions":
    DataFrame(model, label, clean, clean_confidence, noisy, noisy_confidence, adversarial,
    adversarial_confidence)}.
    """
    from bntt_core.analysis.robustness import NOISE_SEED_OFFSET, check_noise_mode, fgsm_signs, perturb_noise
    from bntt_core.data.pixels import normalize, to_pixels
    from bntt_core.nn.step import eval_logits

    if sigma < 0 or epsilon < 0:
        raise ValueError(f"sigma and epsilon must be ≥ 0; got {sigma} and {epsilon}")
    clean = to_pixels(pixels).float()
    if clean.dim() != 4 or clean.shape[0] != 1:
        raise ValueError(f"expected one image [1, C, H, W]; got shape {tuple(clean.shape)}")
    check_noise_mode(noise_mode)
    noisy = perturb_noise(clean, float(sigma), noise_mode,
                          torch.Generator().manual_seed(int(seed) + NOISE_SEED_OFFSET))
    labels = torch.tensor([int(label)])

    def name_of(index: int) -> str:
        return str(class_names[index]) if class_names and index < len(class_names) else str(index)

    def predict(model, info, x: torch.Tensor) -> tuple[str, float]:
        generator = torch.Generator().manual_seed(int(seed))
        logits = eval_logits(model, normalize(x, info), generator=generator)[0]
        probabilities = torch.softmax(logits.float(), dim=0)
        index = int(probabilities.argmax())
        return name_of(index), float(probabilities[index])

    rows, adversarial = [], {}
    for name, (model, info) in models.items():
        signs = fgsm_signs(model, clean, labels, mean=info.mean, std=info.std, seed=int(seed))
        attacked = (clean + float(epsilon) * signs.float()).clamp(0.0, 1.0)
        adversarial[name] = _display(attacked)
        row = {"model": name, "label": name_of(int(label))}
        for kind, x in (("clean", clean), ("noisy", noisy), ("adversarial", attacked)):
            row[kind], row[f"{kind}_confidence"] = predict(model, info, x)
        rows.append(row)
    return {"clean": _display(clean), "noisy": _display(noisy), "adversarial": adversarial,
            "predictions": pd.DataFrame(rows)}


# ------------------------------------------------------------------ workshop notebooks
def firing_rate_table(currents: Sequence[float], leaks: Sequence[float], threshold: float,
                      resets: Sequence[str] = ("soft",), num_steps: int = 100) -> pd.DataFrame:
    """Spikes per step of one LIF neuron (bntt_core.teaching.lif_trace) driven by each constant current,
    for every leak and reset: columns current, leak, reset, rate."""
    rows = []
    for reset in resets:
        for leak in leaks:
            for current in currents:
                trace = lif_trace(np.full(int(num_steps), float(current)), leak=float(leak),
                                  threshold=float(threshold), reset=reset)
                rows.append({"current": float(current), "leak": float(leak), "reset": reset,
                             "rate": lif_firing_rate(trace)})
    return pd.DataFrame(rows)


def example_digit(index: int = 0) -> dict:
    """Test digit `index` of the embedded mnist10k: {"pixels": [28, 28] in [0, 1], "label", "mean", "std"};
    a drawn 7 (bntt_core.teaching.synthetic_digit) with MNIST's usual statistics when the data is absent."""
    from bntt_core import data

    try:
        _, test_set, info = data.load_data("mnist10k")
    except data.DataError as error:
        print(f"mnist10k not found ({str(error).splitlines()[0]}); using a drawn digit instead")
        return {"pixels": synthetic_digit(), "label": 7, "mean": MNIST_MEAN, "std": MNIST_STD}
    pixels = data.to_pixels(test_set.images[index])[0].numpy()  # [1, 28, 28] uint8 → [28, 28] in [0, 1]
    return {"pixels": pixels, "label": int(test_set.labels[index]), "mean": float(info.mean[0]),
            "std": float(info.std[0])}


def _run_test_set(run) -> tuple:
    """(test ImageSet, DataInfo) the run was evaluated on; a data_dir recorded on another machine that does not
    exist here is ignored: the notebooks run where the shipped runs were not trained."""
    from bntt_core.runs.splits import run_test_set

    return run_test_set(run, ignore_missing_data_dir=True)


def example_input(run, index: int = 0):
    """Test image `index` of a loaded run, normalised as its model reads it: [1, C, H, W]."""
    test_set, info = _run_test_set(run)
    return test_example(test_set, info, index)["model_input"]


def test_pixels(run, count: int, seed: int = 0):
    """(uint8 pixels [N, C, H, W], labels [N]) of `count` class-balanced test images of a loaded run."""
    test_set, _ = _run_test_set(run)
    chosen = test_set.subset(int(count), seed=seed)
    return chosen.images, chosen.labels


if __name__ == "__main__":
    trace = lif_trace(input_current("step", num_steps=30, amplitude=0.3, onset=5), leak=0.95, threshold=1.0)
    print("LIF on a step current: spikes at t =", trace.loc[trace.spike == 1, "t"].tolist())
    print(bn_vs_bntt_demo(num_steps=6).round(3).to_string(index=False))
