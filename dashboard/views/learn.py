"""Learn view (workshops; needs no trained run): a LIF neuron playground, Poisson vs direct coding of
an image over time, the surrogate-gradient shapes, and a BN-vs-BNTT demo of why per-step statistics
matter. Computations: `bntt_core.teaching` (on the engine's LIF, encoders, BNTT and StepBN);
figures: `bntt_core.viz`. A page of `dashboard/app.py` (run `make run`).
"""

from __future__ import annotations

import streamlit as st

from bntt_core import teaching, viz
from dashboard import state


@st.cache_resource(show_spinner="Loading the embedded digits…")
def _digits() -> dict | None:
    return teaching.example_digits()


@st.fragment
def lif_playground() -> None:
    """The LIF playground: a current in, the membrane trace and spikes out."""
    st.markdown("A leaky integrate-and-fire neuron: **U ← λ·U + I**, a spike when **U > θ**, then a "
                "*soft* reset (U ← U − θ, the paper's) or a *hard* one (U ← 0).")
    controls, plot = st.columns([1, 3])
    with controls:
        shape = st.radio("Input current", teaching.CURRENT_SHAPES, key="learn_lif_shape", horizontal=True)
        amplitude = st.slider("Current amplitude I", 0.0, 1.5, 0.3, 0.01, key="learn_lif_amplitude")
        num_steps = st.slider("Time steps", 10, 200, 60, 5, key="learn_lif_steps")
        onset = st.slider("Step onset", 0, num_steps - 1, min(10, num_steps - 1), key="learn_lif_onset",
                          disabled=shape != "step")
        noise = st.slider("Noise std", 0.0, 1.0, 0.2, 0.01, key="learn_lif_noise", disabled=shape != "noisy")
        leak = st.slider("Leak λ", 0.5, 1.0, 0.95, 0.01, key="learn_lif_leak")
        threshold = st.slider("Threshold θ", 0.1, 3.0, 1.0, 0.05, key="learn_lif_threshold")
        reset = st.radio("Reset", ("soft", "hard"), key="learn_lif_reset", horizontal=True)
    current = teaching.input_current(shape, num_steps=num_steps, amplitude=amplitude, onset=onset,
                                    noise_std=noise, seed=0)
    trace = teaching.lif_trace(current, leak=leak, threshold=threshold, reset=reset)
    with plot:
        spikes = int(trace["spike"].sum())
        first, second = st.columns(2)
        first.metric("Spikes", spikes)
        second.metric("Firing rate (spikes / step)", f"{teaching.lif_firing_rate(trace):.3f}")
        figure = state.figure(viz.lif_trace_figure, trace["current"], trace["membrane"], trace["spike"], threshold,
                              membrane_after_reset=trace["membrane_after_reset"])
        state.show_figure(figure, trace, key="learn_lif", file_stem="lif_trace")


@st.fragment
def input_coding() -> None:
    """Poisson vs direct coding of one image over time."""
    st.markdown("The network sees an image for T steps. **Poisson (rate) coding** (the paper's default) "
                "draws a fresh ternary spike map from the normalised image at every step, so the "
                "average over steps approaches the image; **direct coding** feeds the analog image "
                "at every step and lets the first layer's neurons make the spikes.")
    digits = _digits()
    controls, plot = st.columns([1, 3])
    with controls:
        if digits is None:
            st.info("The embedded digits (data/mnist10k.npz) are not on disk; showing a drawn 7.")
            pixels, label = teaching.synthetic_digit(), "7 (drawn)"
            mean, std = teaching.MNIST_MEAN, teaching.MNIST_STD
        else:
            count = len(digits["labels"])
            index = int(st.number_input(f"Test digit (0..{count - 1})", 0, count - 1, 0, 1, key="learn_coding_image"))
            pixels, label = digits["images"][index], int(digits["labels"][index])
            mean, std = digits["mean"], digits["std"]
        coding_steps = st.slider("Time steps T", 1, 50, 16, key="learn_coding_steps")
        panels = st.slider("Steps shown", 1, 8, 5, key="learn_coding_panels")
        seed = st.number_input("Poisson seed", 0, 10_000, 0, key="learn_coding_seed")
    coded = teaching.encode_image(pixels, mean=mean, std=std, num_steps=coding_steps, seed=int(seed))
    summary = teaching.encoding_summary(coded)
    with plot:
        st.caption(f"Label {label}. Active inputs per step: Poisson "
                   f"{summary.loc[summary.coding == 'poisson', 'active_fraction'].mean():.1%}, direct "
                   f"{summary.loc[summary.coding == 'direct', 'active_fraction'].mean():.1%}.")
        poisson = state.figure(viz.encoding_figure, coded["poisson"],
                               "Poisson (rate) coding: ternary spikes, fresh every step", max_steps=panels)
        state.show_figure(poisson, summary, key="learn_coding_poisson", file_stem="poisson_coding")
        direct = state.figure(viz.encoding_figure, coded["direct"], "Direct coding: the analog image at every step",
                              max_steps=panels)
        state.show_figure(direct, summary, key="learn_coding_direct", file_stem="direct_coding")


@st.fragment
def surrogate_gradients() -> None:
    """The surrogate-gradient shapes around the threshold."""
    st.markdown("The spike is a step function of the membrane: its derivative is zero almost everywhere. "
                "Training replaces it in the backward pass by a **surrogate**: a bump centred on θ. "
                "The paper uses the triangle α·max(0, 1 − |U/θ − 1|)/θ with α = 0.3 (the official code's "
                "triangle on U/θ − 1; the 1/θ is the chain rule, so a lower θ gives a taller bump).")
    controls, plot = st.columns([1, 3])
    with controls:
        surrogate_threshold = st.slider("Threshold θ", 0.25, 2.0, 1.0, 0.05, key="learn_surrogate_threshold")
        chosen = st.multiselect("Surrogates", list(teaching.SURROGATES), default=list(teaching.SURROGATES),
                                key="learn_surrogate_names")
    shapes = teaching.surrogate_shapes(threshold=surrogate_threshold, names=chosen or None)
    with plot:
        figure = state.figure(viz.surrogate_figure, chosen or None, threshold=surrogate_threshold)
        state.show_figure(figure, shapes, key="learn_surrogate", file_stem="surrogate_gradients")


@st.fragment
def bn_versus_bntt() -> None:
    """Standard BN vs BNTT on synthetic currents whose statistics drift over time."""
    st.markdown("Spiking activity changes over time: currents build up, peak and die down. **Standard BN** "
                "(the paper's baseline: one BatchNorm called at every step) normalises each step with its "
                "own batch statistics in training, but stores only one running mean and variance, so at "
                "evaluation it shifts every step by the same stored mean: wrong early, wrong late. **BNTT** "
                "keeps statistics (and γ) per step, and normalises every step correctly. Both layers below "
                "come from bntt_core (`StepBN`, norm \"bn\", and `BNTT`), fitted in train "
                "mode on synthetic currents and then evaluated with their running statistics.")
    controls, plot = st.columns([1, 3])
    with controls:
        drift_names = {"rise_then_fall": "rises, then falls", "rising": "rises", "falling": "falls"}
        drift = st.selectbox("The current's mean over time", teaching.DRIFTS, key="learn_norm_drift",
                             format_func=lambda name: drift_names.get(name, name))
        demo_steps = st.slider("Time steps T", 2, 30, 10, key="learn_norm_steps")
        peak = st.slider("Peak mean", 0.0, 6.0, 3.0, 0.5, key="learn_norm_peak")
        growth = st.slider("Spread growth over t", 0.0, 3.0, 1.0, 0.25, key="learn_norm_growth")
    demo = teaching.bn_vs_bntt_demo(num_steps=demo_steps, drift=drift, peak=peak, spread_growth=growth)
    with plot:
        bias_bn = float(demo["bn_output_mean"].abs().mean())
        bias_bntt = float(demo["bntt_output_mean"].abs().mean())
        first, second = st.columns(2)
        first.metric("Mean |output mean|, standard BN", f"{bias_bn:.2f}")
        second.metric("Mean |output mean|, BNTT", f"{bias_bntt:.2f}")
        state.show_figure(state.figure(viz.bn_vs_bntt_figure, demo), demo, key="learn_norm", file_stem="bn_vs_bntt")


st.title("Learn: how a BNTT spiking network computes")
st.caption("Everything on this page is computed live with bntt_core; no trained run is needed.")

# lazy tabs: only the open tab's content runs
lif_tab, coding_tab, surrogate_tab, norm_tab = state.tabs(
    ["LIF neuron", "Input coding", "Surrogate gradients", "BN vs BNTT"], key="learn_section", on_change="rerun")

if lif_tab.open:
    with lif_tab:
        lif_playground()
if coding_tab.open:
    with coding_tab:
        input_coding()
if surrogate_tab.open:
    with surrogate_tab:
        surrogate_gradients()
if norm_tab.open:
    with norm_tab:
        bn_versus_bntt()
