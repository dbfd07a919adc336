"""Robustness view: accuracy under Gaussian input noise and under FGSM for the runs chosen (Fig 8), and
one test image clean / noisy / adversarial with each chosen model's prediction (each model attacked
with its own gradient: SNN-crafted through the surrogate for SNNs, plain FGSM for the ANN).

Curves from the noise / fgsm analysis tables; the single-image predictions from
`bntt_core.teaching.perturbation_predictions`; figures from `bntt_core.viz`. A page of
`dashboard/app.py` (run `make run`).
"""

from __future__ import annotations

import streamlit as st

from bntt_core import viz
from bntt_core.analysis.tables import NOISE_MODE_ORDER, noise_modes
from dashboard import state

NOISE_MODE_HELP = {
    "unclipped": "x + σ·z, not clipped: the paper's Fig 8A (the default for new analyses)",
    "clipped": "clip(x + σ·z, 0, 1): how the shipped runs were analysed; clipping shifts the input's mean",
    "shift": "x + σ, no noise: a pure brightness shift, the mean shift that hurts BNTT's per-step running means",
}

st.title("Robustness")
st.caption("Noise and attacks act on the clean [0, 1] pixels, which are then normalised; noise σ is in pixel "
           "units and, as in the paper, not clipped unless the noise mode says so. The SNN attack "
           "takes its gradient by backpropagation through time through the surrogate and the encoder.")

cards = [c for c in state.list_runs() if c.ok]
if not cards:
    st.info("No readable run found. Train one (see the Runs view) or explore the Learn view.")
    st.stop()


def comparable_first(names: list[str]) -> list[str]:
    """The runs comparable with each other (one dataset and T; state.comparable_names), chosen first."""
    comparable = set(state.comparable_names([c for c in cards if c.name in names]))
    return [name for name in names if name in comparable]


curves_tab, image_tab = state.tabs(["Accuracy curves (Fig 8)", "One test image"], key="robustness_section",
                                on_change="rerun")

if curves_tab.open:
    with curves_tab:
        left, right = st.columns(2)
        with left:
            noise = state.runs_with_table(cards, "noise", key="robustness_noise_runs", label="Runs (noise)",
                                          default=comparable_first)
            if noise:
                present = {name: noise_modes(df) for name, df in noise.items()}
                offered = [m for m in NOISE_MODE_ORDER if any(m in modes for modes in present.values())]
                state.keep_choice("robustness_noise_modes", offered, offered, multi=True)
                modes = st.multiselect("Noise mode", offered, key="robustness_noise_modes",
                                       help=" · ".join(f"{m}: {NOISE_MODE_HELP[m]}" for m in offered))
                lacking = [f"{name} ({', '.join(m for m in modes if m not in have)})"
                           for name, have in present.items() if any(m not in have for m in modes)]
                if lacking:
                    st.caption("No curve for: " + "; ".join(lacking) + ". Tables computed before the noise modes "
                               "are clipped; `bntt analyze RUN --noise-mode unclipped,clipped,shift` adds the others.")
                shown = {name: df for name, df in noise.items() if any(m in present[name] for m in modes)}
                if not modes or not shown:
                    st.info("Choose a noise mode that the chosen runs have.")
                else:
                    state.show_figure(state.figure(viz.robustness_figure, shown, "noise", modes=tuple(modes),
                                                          methods=state.run_methods(cards, shown)), shown,
                                      key="robustness_noise", file_stem="robustness_noise")
        with right:
            fgsm = state.runs_with_table(cards, "fgsm", key="robustness_fgsm_runs", label="Runs (FGSM)",
                                         default=comparable_first)
            if fgsm:
                state.show_figure(state.figure(viz.robustness_figure, fgsm, "fgsm", methods=state.run_methods(cards, fgsm)), fgsm, key="robustness_fgsm",
                                  file_stem="robustness_fgsm")

if image_tab.open:
    with image_tab:
        datasets = sorted({str(c.summary.get("dataset")) for c in cards})
        comparable = set(state.comparable_names(cards))
        default_dataset = next((str(c.summary.get("dataset")) for c in cards if c.name in comparable), datasets[0])
        state.keep_choice("robustness_dataset", datasets, default_dataset)
        dataset = st.selectbox("Dataset", datasets, key="robustness_dataset",
                               help="Models are compared on the same image, so on one dataset at a time.")
        same_data = {c.name: c for c in cards if str(c.summary.get("dataset")) == dataset}
        state.keep_choice("robustness_models", list(same_data), list(same_data)[:4], multi=True)
        chosen = st.multiselect("Models", list(same_data), key="robustness_models")
        if not chosen:
            st.info("Choose at least one model.")
            st.stop()
        first = same_data[chosen[0]]
        controls, images = st.columns([1, 3])
        with controls:
            size = state.test_set_size(first)
            state.bind_url("robustness_image", kind=int, low=0, high=size - 1)
            index = int(st.number_input("Test image", 0, size - 1, 0, 1, key="robustness_image"))
            state.bind_url("robustness_sigma", kind=float, low=0.0, high=1.0)
            sigma = st.slider("Noise σ (pixels)", 0.0, 1.0, 0.2, 0.01, key="robustness_sigma")
            state.bind_url("robustness_image_noise_mode", options=list(NOISE_MODE_ORDER))
            noise_mode = st.selectbox("Noise mode", list(NOISE_MODE_ORDER), key="robustness_image_noise_mode",
                                      help=" · ".join(f"{m}: {text}" for m, text in NOISE_MODE_HELP.items()))
            state.bind_url("robustness_epsilon", kind=float, low=0.0, high=0.3)
            epsilon = st.slider("FGSM ε (pixels)", 0.0, 0.3, 0.05, 0.005, key="robustness_epsilon")
            state.bind_url("robustness_seed", kind=int, low=0, high=10_000)
            seed = int(st.number_input("Seed (noise and Poisson)", 0, 10_000, 0, key="robustness_seed"))
            state.keep_choice("robustness_attacked", chosen, chosen[0])
            attacked = st.selectbox("Adversarial image shown: crafted against", chosen, key="robustness_attacked")
        if getattr(state.loaded_run(first).info, "event", False):
            st.info(f"{dataset} holds event frames, not images: there are no pixels to add noise to or attack.")
            st.stop()
        result = state.perturbation_predictions([same_data[name] for name in chosen], index=index, sigma=sigma,
                                                epsilon=epsilon, seed=seed, noise_mode=noise_mode)
        with images:
            panels = st.columns(3)
            panels[0].image(result["clean"], caption=f"clean (label: {result['predictions']['label'].iloc[0]})",
                            width="stretch", clamp=True)
            panels[1].image(result["noisy"], caption=(f"brightness shift + {sigma:g}" if noise_mode == "shift" else
                                                      f"Gaussian noise σ = {sigma:g} ({noise_mode})"),
                            width="stretch", clamp=True)
            panels[2].image(result["adversarial"][attacked], caption=f"FGSM ε = {epsilon:g} against {attacked}",
                            width="stretch", clamp=True)
            predictions = result["predictions"]
            st.dataframe(predictions, hide_index=True, key="robustness_predictions_table")
            st.download_button("Predictions (CSV)", predictions.to_csv(index=False).encode(),
                               file_name=f"robustness-image{index}.csv", mime="text/csv",
                               key="robustness_predictions_csv", on_click="ignore", icon=":material/table:")
