"""Small live computations for the dashboard's teaching and inspection views.

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

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bntt_core.nn.encoding import direct_encode, poisson_encode
from bntt_core.nn.neurons import LIF
from bntt_core.nn.norms import BNTT, StepBN
from bntt_core.nn.surrogate import SURROGATES

CURRENT_SHAPES = ("constant", "step", "noisy")


# -------------------------------------------------------------------------------------- run listing
def describe_runs(roots: list[Path]) -> list[dict]:
    """One plain dict per run directory under `roots` (via `bntt_core.runs.find_runs`): path, name,
    root, error (None when healthy), summary (arch, dataset, norm, T, kind, test accuracy, ...), and
    the state of its analysis (`bntt_core.analysis.analysis_status`): tables (present and with rows),
    missing (never computed), stale (made for other weights or another config) and skipped (written
    empty because they do not apply, with the reason). Broken or foreign runs keep their error.
    """
    from bntt_core.analysis import analysis_status
    from bntt_core.analysis.tables import ANALYSIS_DIR, table_file
    from bntt_core.runs import find_runs

    cards = []
    for entry in find_runs(list(roots)):
        path = Path(entry.path)
        root = next((str(r) for r in roots if _is_below(path, Path(r))), str(path.parent))
        card = {"path": str(path), "name": _display_name(path, Path(root)), "root": root, "error": entry.error,
                "summary": {}, "tables": (), "missing": (), "stale": (), "skipped": {}}
        if entry.error is None:
            card["summary"] = {"kind": entry.kind, "arch": entry.arch, "dataset": entry.dataset, "norm": entry.norm,
                               "spiking": entry.spiking, "num_steps": entry.num_steps,
                               "test_accuracy": entry.test_accuracy, "epochs_done": entry.epochs_done,
                               "created": entry.created, "preset": entry.preset,
                               "seed": ((entry.config or {}).get("train") or {}).get("seed")}
            try:
                status = analysis_status(path)
            except Exception as problem:  # an unreadable meta.json must not hide the run
                card["error"] = f"its analysis cannot be read: {problem}"
            else:
                card["tables"] = tuple(name for name in status.present
                                       if name not in status.stale and _has_rows(path / ANALYSIS_DIR / table_file(name)))
                card["missing"], card["stale"] = tuple(status.missing), tuple(status.stale)
                card["skipped"] = {name: str(why) for name, why in status.skipped.items()}
        cards.append(card)
    return cards


def _has_rows(csv_path: Path) -> bool:
    """True when a CSV table holds at least one data row (analysis writes tables that do not apply empty)."""
    try:
        with open(csv_path, encoding="utf-8") as handle:
            handle.readline()
            return bool(handle.readline().strip())
    except UnicodeDecodeError:
        return True  # damaged: the view that reads it says so
    except OSError:
        return False


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
    """Mean of the first `steps` Poisson frames. As `steps` grows it approaches the spike probability
    sign(x)·min(|x|/rescale, 1) of the normalised image x: what the rate code carries."""
    steps = max(1, min(int(steps), coded["poisson"].shape[0]))
    return coded["poisson"][:steps].mean(axis=0)


MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # the usual MNIST statistics, for the drawn fallback digit


def example_digits() -> dict | None:
    """The test split of the embedded mnist10k digits (`bntt_core.data.load_data`), for teaching:
    {"images": [N, 28, 28] float in [0, 1], "labels": [N], "mean": float, "std": float, "source": str};
    None when the data is not on disk (the Learn view then draws `synthetic_digit`)."""
    from bntt_core.data import DataError, load_data, to_pixels

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
    from bntt_core.data import normalize, to_pixels

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
    from bntt_core.data import normalize, to_pixels
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


# ------------------------------------------------------------------------------------ early exit
def early_exit_summary(gamma_mean: pd.DataFrame, accuracy_by_step: pd.DataFrame, threshold: float, *,
                       spike_activity: pd.DataFrame | None = None, energy: pd.DataFrame | None = None) -> dict:
    """What the paper's temporal early exit at γ threshold `threshold` buys on one run.

    Returns exit_step (SPEC rule, `exit_step_from_gamma_mean`), num_steps (T), accuracy at the exit
    step and at T (from the output accumulated up to t), steps_saved and their fraction, and — when
    the spike_activity and energy tables are given — energy_pj (all T steps), energy_saved_pj and
    energy_saved_fraction. The energy after the exit is each layer's energy times the share of that
    layer's spikes that fall after the exit step; a layer the spike table does not list (the input
    or the output layer) is counted in proportion to the steps saved.
    """
    from bntt_core.analysis.early_exit import exit_step_from_gamma_mean

    by_step = accuracy_by_step.sort_values("t")
    num_steps = int(by_step["t"].max())
    exit_step = min(int(exit_step_from_gamma_mean(gamma_mean, float(threshold))), num_steps)
    accuracy = by_step.set_index("t")["accuracy"]
    summary = {
        "threshold": float(threshold),
        "exit_step": exit_step,
        "num_steps": num_steps,
        "accuracy": float(accuracy.get(exit_step, float("nan"))),
        "full_accuracy": float(accuracy.get(num_steps, float("nan"))),
        "steps_saved": num_steps - exit_step,
        "steps_saved_fraction": (num_steps - exit_step) / num_steps,
    }
    if spike_activity is not None and energy is not None and len(energy):
        later_share = {}
        for layer, part in spike_activity.groupby("layer"):
            total = float(part["spikes_per_neuron"].sum())
            later = float(part.loc[part["t"] > exit_step, "spikes_per_neuron"].sum())
            later_share[str(layer)] = later / total if total > 0 else 0.0
        step_share = summary["steps_saved_fraction"]
        total_energy = float(energy["energy_pj"].sum())
        saved = float(sum(float(row.energy_pj) * later_share.get(str(row.layer), step_share)
                          for row in energy.itertuples()))
        summary.update(energy_pj=total_energy, energy_saved_pj=saved,
                       energy_saved_fraction=saved / total_energy if total_energy > 0 else 0.0)
    return summary


# --------------------------------------------------------------------------------------- compare
def run_method(summary: dict) -> str:
    """The method a run stands for on the Compare page: bntt, bn, ln, none, ann or converted."""
    if summary.get("spiking") is False:
        return "ann"
    if summary.get("kind") == "converted":
        return "converted"
    return str(summary.get("norm") or "none")


def _mean_accuracy_over(table: pd.DataFrame, column: str) -> float:
    """Mean accuracy over the table's grid (the area under the curve ÷ the grid's span)."""
    df = table.sort_values(column)
    x, y = df[column].to_numpy(dtype=float), df["accuracy"].to_numpy(dtype=float)
    if len(x) < 2 or x[-1] == x[0]:
        return float(y.mean()) if len(y) else float("nan")
    area = float(np.sum((y[1:] + y[:-1]) / 2.0 * np.diff(x)))  # trapezoids (numpy 1.x and 2.x alike)
    return area / float(x[-1] - x[0])


def comparison_summary(runs: dict[str, dict], *, fgsm_epsilon: float | None = None,
                       threshold: float | None = None, noise_mode: str | None = None) -> pd.DataFrame:
    """One row per run for the Compare page (`bntt_core.viz.compare_figure`).

    `runs`: {run label: {"summary": run summary (as in `describe_runs`), "tables": {name: DataFrame}}}.
    Columns: run, method, accuracy (at T, from accuracy_by_step, else the recorded test accuracy),
    steps (T; 1 for the ANN), spike_rate (mean over layers of the Fig 5 rate), energy_pj (per image,
    summed over layers), noise_auc (mean accuracy over the σ grid of the noise curve of `noise_mode`;
    None: the mode all the runs' tables share, unclipped first, `bntt_core.analysis.tables.common_noise_mode`;
    a run without that mode gets NaN), fgsm_accuracy (at the grid ε nearest
    to `fgsm_epsilon`, default the largest), and with a `threshold`, early_exit_steps and
    early_exit_accuracy for runs that have γ (BNTT). Missing data are NaN (a missing bar).
    """
    from bntt_core.analysis.tables import common_noise_mode, noise_table

    if noise_mode is None:
        noise_mode = common_noise_mode(t for run in runs.values()
                                       if (t := (run.get("tables") or {}).get("noise")) is not None and len(t))
    rows = []
    for label, run in runs.items():
        summary, tables = run.get("summary", {}), run.get("tables", {})
        method = run_method(summary)
        row = {"run": label, "method": method, "accuracy": summary.get("test_accuracy"),
               "steps": 1 if method == "ann" else summary.get("num_steps"), "spike_rate": np.nan,
               "energy_pj": np.nan, "noise_auc": np.nan, "fgsm_accuracy": np.nan}
        by_step = tables.get("accuracy_by_step")
        if by_step is not None and len(by_step):
            row["accuracy"] = float(by_step.sort_values("t")["accuracy"].iloc[-1])
        rate = tables.get("spike_rate")
        if rate is not None and len(rate) and method != "ann":
            row["spike_rate"] = float(rate["rate"].mean())
        energy = tables.get("energy")
        if energy is not None and len(energy):
            row["energy_pj"] = float(energy["energy_pj"].sum())
        noise = tables.get("noise")
        if noise is not None and len(noise) and noise_mode is not None:
            curve = noise_table(noise, noise_mode)
            if len(curve):
                row["noise_auc"] = _mean_accuracy_over(curve, "sigma")
        fgsm = tables.get("fgsm")
        if fgsm is not None and len(fgsm):
            target = float(fgsm["epsilon"].max()) if fgsm_epsilon is None else float(fgsm_epsilon)
            nearest = fgsm.loc[(fgsm["epsilon"] - target).abs().idxmin()]
            row["fgsm_accuracy"] = float(nearest["accuracy"])
        if threshold is not None:
            gamma_mean = tables.get("gamma_mean")
            row["early_exit_steps"], row["early_exit_accuracy"] = np.nan, np.nan
            if gamma_mean is not None and len(gamma_mean) and by_step is not None and len(by_step):
                exit_info = early_exit_summary(gamma_mean, by_step, threshold)
                row["early_exit_steps"], row["early_exit_accuracy"] = exit_info["exit_step"], exit_info["accuracy"]
        rows.append(row)
    frame = pd.DataFrame(rows)
    for column in frame.columns:
        if column not in ("run", "method"):
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def seed_groups(summaries: dict[str, dict]) -> dict[str, str]:
    """{run label: group} where a group is one method on one dataset, architecture and T — the runs of
    one experiment over several training seeds (`summary["seed"]`, config train.seed). Named by the
    method alone when every run shares dataset, architecture and T, else 'method · dataset · arch · T n'."""
    keys = {label: (run_method(s), s.get("dataset"), s.get("arch"), 1 if s.get("spiking") is False else s.get("num_steps"))
            for label, s in summaries.items()}
    shared = len({key[1:] for key in keys.values()}) <= 1
    return {label: key[0] if shared else f"{key[0]} · {key[1]} · {key[2]} · T {key[3]}" for label, key in keys.items()}


def method_verdicts(summary: pd.DataFrame, groups: dict[str, str] | None = None) -> pd.DataFrame:
    """The Compare page's verdicts: for every metric of `summary` (comparison_summary) whose better
    direction is known (bntt_core.viz.COMPARE_METRICS) and that at least two groups have, the groups
    (`seed_groups`; default: each run its own) ranked with `bntt_core.analysis.verdicts.compare_methods`: mean ±
    std over seeds, "tie" within the spread, "one seed" when a group has a single run.

    Columns: metric, better, ranking (best first, '>' ahead, '≈' tie, '?' one seed), best, next,
    verdict (best against next: ahead | tie | one seed), difference (best − next, raw, in the metric's
    unit; accuracies in percentage points), seeds (n per group)."""
    from bntt_core.analysis.verdicts import compare_methods
    from bntt_core.viz import COMPARE_METRICS

    rows = []
    for metric, (_title, _log, is_accuracy, better) in COMPARE_METRICS.items():
        if metric not in summary.columns or better not in ("higher", "lower"):
            continue
        values: dict[str, list[float]] = {}
        for run, value in zip(summary["run"], summary[metric], strict=True):
            if pd.notna(value):
                scale = 100.0 if is_accuracy and float(value) <= 1.0 else 1.0
                values.setdefault((groups or {}).get(run, run), []).append(float(value) * scale)
        if len(values) < 2:
            continue
        comparison = compare_methods(values, higher_is_better=better == "higher")
        best, nxt = comparison.order[0], comparison.order[1]
        pair = comparison.pair(best, nxt)
        digits = 2 if is_accuracy else 3
        rows.append({"metric": metric, "better": better, "ranking": comparison.summary(digits),
                     "best": best, "next": nxt, "verdict": pair.verdict, "difference": pair.difference,
                     "seeds": ", ".join(f"{m} {comparison.stats[m].n}" for m in comparison.order)})
    return pd.DataFrame(rows, columns=["metric", "better", "ranking", "best", "next", "verdict", "difference", "seeds"])


if __name__ == "__main__":
    trace = lif_trace(input_current("step", num_steps=30, amplitude=0.3, onset=5), leak=0.95, threshold=1.0)
    print("LIF on a step current: spikes at t =", trace.loc[trace.spike == 1, "t"].tolist())
    print(bn_vs_bntt_demo(num_steps=6).round(3).to_string(index=False))
