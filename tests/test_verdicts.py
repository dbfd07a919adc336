"""The one rule for ranking methods over seeds (bntt_core/analysis/verdicts.py) and where it is used: the notebooks'
verdicts (bntt_core/paper.py) and the Compare page's table (bntt_core/analysis/summaries.method_verdicts).

    .venv/bin/python -m pytest tests/test_verdicts.py -q
"""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from bntt_core import paper, runs
from bntt_core.analysis.summaries import method_verdicts, seed_groups
from bntt_core.analysis.verdicts import AHEAD, ONE_SEED, TIE, compare_methods

# REPRODUCTION.md §1: Fashion-MNIST seeds 0/1/2 and CIFAR-10 (none: seed 0 only)
FASHION = {"bntt": [88.20, 88.72, 88.35], "bn": [88.04, 88.98, 88.21], "none": [86.16, 87.19, 86.80]}
CIFAR = {"bntt": [68.25, 67.58, 67.86], "bn": [70.11, 69.20, 69.43], "none": [62.23]}


def test_tie_when_the_gap_is_within_the_larger_std():
    result = compare_methods({"bntt": FASHION["bntt"], "bn": FASHION["bn"]})
    assert result.order == ["bntt", "bn"]
    bntt = result.stats["bntt"]
    assert bntt.n == 3 and bntt.mean == pytest.approx(88.4233, abs=1e-4) and bntt.std == pytest.approx(0.2676, abs=1e-4)
    pair = result.pair("bn", "bntt")  # asked either way round
    assert pair.verdict == TIE and pair.leader is None
    assert pair.difference == pytest.approx(0.0133, abs=1e-4) and pair.spread == pytest.approx(0.5009, abs=1e-4)
    assert result.outcome("bntt", "bn") == TIE and result.holds(["bntt", "bn"]) == TIE
    assert "tie" in pair.text() and "≈" in result.summary()


def test_ahead_when_the_gap_exceeds_the_spread():
    result = compare_methods({"bntt": CIFAR["bntt"], "bn": CIFAR["bn"]})
    assert result.order == ["bn", "bntt"]
    pair = result.pair("bntt", "bn")
    assert pair.verdict == AHEAD and pair.leader == "bn" and pair.difference == pytest.approx(1.6833, abs=1e-4)
    assert result.outcome("bntt", "bn") == "no" and result.outcome("bn", "bntt") == "yes"
    assert result.holds(["bntt", "bn"]) == "no" and result.holds(["bn", "bntt"]) == "yes"
    assert pair.text(2, "%") == "bn ahead of bntt by 1.68% (> spread 0.47%)"
    assert result.summary(2, "%") == "bn 69.58 ± 0.47% (3 seeds) > bntt 67.90 ± 0.34% (3 seeds)"


def test_one_seed_gives_the_raw_difference_but_no_verdict():
    result = compare_methods({"bntt": CIFAR["bntt"], "none": CIFAR["none"]})
    pair = result.pair("bntt", "none")
    assert pair.verdict == ONE_SEED and pair.leader is None and math.isnan(pair.spread)
    assert pair.difference == pytest.approx(67.8967 - 62.23, abs=1e-3)
    assert result.stats["none"].n == 1 and math.isnan(result.stats["none"].std)
    assert result.holds(["bntt", "none"]) == ONE_SEED
    assert "(one seed)" in result.summary() and "not a verdict" in pair.text()
    # one seed each: the 0.1-point FGSM margins of REPRODUCTION.md §4 are one-seed differences
    assert compare_methods({"BNTT": [83.4], "BN": [83.3]}).pair("BNTT", "BN").verdict == ONE_SEED


def test_lower_is_better_and_the_claimed_order():
    spikes = compare_methods({"bntt": [6458.0, 6500.0], "bn": [8981.0, 9000.0], "none": [14097.0, 14000.0]},
                             higher_is_better=False)
    assert spikes.order == ["bntt", "bn", "none"]
    assert spikes.holds(["bntt", "bn", "none"]) == "yes" and spikes.holds(["none", "bn"]) == "no"
    three = compare_methods(FASHION)
    assert three.holds(["bntt", "bn", "none"]) == TIE  # bntt ≈ bn, then bn ahead of none
    assert three.pair("bn", "none").verdict == AHEAD
    frame = three.frame()
    assert frame["method"].tolist() == ["bntt", "bn", "none"] and frame["rank"].tolist() == [1, 2, 3]
    assert frame["verdict_vs_next"].tolist() == [TIE, AHEAD, ""]


def test_nan_values_are_left_out_and_bad_input_refused():
    assert compare_methods({"a": [1.0, float("nan"), 3.0], "b": [0.0]}).stats["a"].n == 2
    with pytest.raises(ValueError, match="no methods"):
        compare_methods({})
    with pytest.raises(ValueError, match="'b' has no value"):
        compare_methods({"a": [1.0], "b": [float("nan")]})
    with pytest.raises(KeyError, match="no comparison"):
        compare_methods({"a": [1.0], "b": [2.0]}).pair("a", "c")


def test_equal_means_keep_the_input_order():
    result = compare_methods({"x": [1.0, 3.0], "y": [2.0, 2.0]})
    assert result.order == ["x", "y"] and result.pair("x", "y").verdict == TIE


# --------------------------------------------------------------------- where the rule is used
def test_verdict_accuracy_groups_seeds_by_method(capsys):
    rows = [{"run": f"{m} seed {i}", "method": m, "test_accuracy_percent": v}
            for m, values in CIFAR.items() for i, v in enumerate(values)]
    paper.verdict_accuracy(pd.DataFrame(rows), order=["bntt", "bn", "none"])
    out = capsys.readouterr().out
    assert "bn 69.58 ± 0.47% (3 seeds) > bntt 67.90 ± 0.34% (3 seeds) ? none 62.23% (one seed)" in out
    assert "→ bntt > bn > none holds here: no (bn ahead of bntt by 1.68%" in out
    one_each = pd.DataFrame([{"run": "BNTT", "method": "bntt", "test_accuracy_percent": 88.20},
                             {"run": "BN", "method": "bn", "test_accuracy_percent": 88.04}])
    paper.verdict_accuracy(one_each, order=["bntt", "bn"])
    assert "holds here: one seed (one seed: bntt − bn = +0.16% (not a verdict))" in capsys.readouterr().out


def _curve(column: str, values: list[float]) -> pd.DataFrame:
    return pd.DataFrame({column: [0.0, 0.1, 0.2][:len(values)], "accuracy": values})


def test_verdict_robustness_uses_groups_and_the_noise_mode(capsys):
    curves = {"BNTT": _curve("sigma", [0.9, 0.8, 0.7]), "BNTT seed 1": _curve("sigma", [0.9, 0.81, 0.71]),
              "BN": _curve("sigma", [0.9, 0.6, 0.5]), "BN seed 1": _curve("sigma", [0.9, 0.62, 0.49])}
    groups = {"BNTT": "BNTT", "BNTT seed 1": "BNTT", "BN": "BN", "BN seed 1": "BN"}
    frame = paper.verdict_robustness(curves, "sigma", bntt_label="BNTT", groups=groups)
    out = capsys.readouterr().out
    assert len(frame) == 4 and "noise mode: clipped" in out  # tables without a mode column are clipped
    assert "BNTT ahead of BN by" in out and "→ most robust here: BNTT (ahead against the next, BN)" in out
    # several modes: the one every run has, unclipped first; or the one asked for
    both = {label: pd.concat([df.assign(mode="clipped"), df.assign(mode="unclipped", accuracy=df["accuracy"] - 0.1)])
            for label, df in curves.items()}
    frame = paper.verdict_robustness(both, "sigma", groups=groups)
    assert "noise mode: unclipped" in capsys.readouterr().out
    assert frame["clean_accuracy"].round(6).tolist() == [80.0] * 4
    paper.verdict_robustness(both, "sigma", groups=groups, mode="clipped")
    assert "noise mode: clipped" in capsys.readouterr().out
    paper.verdict_robustness({"BNTT": _curve("epsilon", [0.9, 0.5]), "ANN": _curve("epsilon", [0.9, 0.2])}, "epsilon")
    assert "one seed: BNTT − ANN" in capsys.readouterr().out


def test_spike_energy_and_activity_verdicts_say_one_seed(capsys):
    rates = {"BNTT": pd.DataFrame({"layer": ["conv1", "fc1"], "rate": [0.1, 0.2]}),
             "none": pd.DataFrame({"layer": ["conv1", "fc1"], "rate": [0.3, 0.4]})}
    paper.verdict_spike_rate(rates)
    out = capsys.readouterr().out
    assert "BNTT is the sparsest run in 2 of 2 layers" in out and "one seed: BNTT − none = -0.200" in out
    energy = {name: pd.DataFrame({"layer": ["conv1"], "synops": [1.0], "macs": [1.0], "energy_pj": [pj]})
              for name, pj in (("BNTT", 1.75e6), ("BN", 2.33e6))}
    paper.verdict_energy(energy)
    assert "→ lowest energy here: BNTT (one seed against the next, BN)" in capsys.readouterr().out
    activity = {name: pd.DataFrame({"layer": ["conv1"] * 3, "t": [1, 2, 3], "spikes_per_neuron": values})
                for name, values in (("BNTT", [0.2, 0.4, 0.1]), ("none", [0.2, 0.4, 0.35]))}
    paper.verdict_spike_activity(activity)
    assert "one seed: BNTT − none = -62%" in capsys.readouterr().out


def _run_dir(root, name: str, seed: int, norm: str):
    path = root / name
    path.mkdir()
    config = {"format": runs.RUN_FORMAT, "kind": "trained", "model": {"arch": "vgg5", "norm": norm, "num_steps": 6},
              "data": {"dataset": "fashion-mnist"}, "train": {"seed": seed, "epochs": 3, "threads": seed + 1},
              "weights": {"file": "weights.safetensors"}}
    (path / "config.json").write_text(json.dumps(config))
    return path


def test_run_groups_pool_runs_that_differ_only_in_their_seed(tmp_path):
    runs = {"bntt": _run_dir(tmp_path, "a", 0, "bntt"), "bntt seed 1": _run_dir(tmp_path, "b", 1, "bntt"),
            "bn": _run_dir(tmp_path, "c", 0, "bn"), "missing": tmp_path / "nowhere"}
    groups = paper.run_groups(runs)
    bn = paper.label("bn", runs["bn"])
    assert groups == {"BNTT": "BNTT", "bntt seed 1": "BNTT", bn: bn, "missing": "missing"}


def test_a_bn_role_is_labelled_by_the_norm_its_run_really_has(tmp_path):
    from bntt_core.viz import METHOD_NAMES, method_of

    new = _run_dir(tmp_path, "new", 0, "bn")  # today's "bn": the paper's per-step BN (a QUICK stand-in)
    old = _run_dir(tmp_path, "old", 0, "bn")  # bntt-run/1's "bn", as the shipped cifar10-cpu-bn: bn-joint
    config = json.loads((old / "config.json").read_text())
    (old / "config.json").write_text(json.dumps({**config, "format": runs.OLD_RUN_FORMATS[0]}))
    assert paper.label("bn", new) == METHOD_NAMES["bn"] and method_of(paper.label("bn", new)) == "bn"
    assert paper.label("bn", old) == METHOD_NAMES["bn-joint"] and method_of(paper.label("bn", old)) == "bn-joint"
    assert paper.label("cifar10_bn", old) == "CIFAR-10 " + METHOD_NAMES["bn-joint"]
    assert paper.label("bn", tmp_path / "nowhere") == paper.label("bn") == "BN"  # unreadable: the fallback
    assert paper.label("bntt", new) == "BNTT"  # only the BN roles follow their run's norm
    shipped = paper.resolve_path(paper.SHIPPED["bn"])
    if (shipped / "config.json").is_file():  # the norm the shipped run really has, read as its format says
        assert paper.label("bn", shipped) == METHOD_NAMES[runs.read_config(shipped)["model"]["norm"]]


def test_method_verdicts_for_the_compare_page():
    summary = pd.DataFrame({"run": ["b0", "b1", "n0", "n1"], "method": ["bntt", "bntt", "bn", "bn"],
                            "accuracy": [0.8820, 0.8872, 0.8804, 0.8898], "energy_pj": [1.0, 1.1, 2.0, 2.1],
                            "noise_auc": [0.5, float("nan"), 0.6, 0.7]})
    summaries = {run: {"norm": m, "dataset": "fashion-mnist", "arch": "vgg5", "num_steps": 6, "seed": i % 2}
                 for i, (run, m) in enumerate(zip(summary["run"], summary["method"], strict=True))}
    groups = seed_groups(summaries)
    assert groups == {"b0": "bntt", "b1": "bntt", "n0": "bn", "n1": "bn"}
    table = method_verdicts(summary, groups).set_index("metric")
    assert table.loc["accuracy", "verdict"] == TIE and table.loc["accuracy", "better"] == "higher"
    assert table.loc["accuracy", "ranking"] == "bn 88.51 ± 0.66 (2 seeds) ≈ bntt 88.46 ± 0.37 (2 seeds)"
    assert table.loc["energy_pj", "best"] == "bntt" and table.loc["energy_pj", "verdict"] == AHEAD
    assert table.loc["noise_auc", "verdict"] == ONE_SEED and table.loc["noise_auc", "seeds"] == "bn 2, bntt 1"
    assert method_verdicts(summary).loc[0, "verdict"] == ONE_SEED  # no groups: every run alone
    other = dict(summaries, n1={**summaries["n1"], "dataset": "cifar10"})
    assert seed_groups(other)["n1"] == "bn · cifar10 · vgg5 · T 6"


def test_runs_that_differ_in_t_are_named_and_the_others_pass(tmp_path) -> None:
    def run(name: str, *, steps: int, dataset: str = "fashion-mnist", kind: str = "trained", spiking: bool = True):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({
            "format": "bntt-run/2", "kind": kind, "data": {"dataset": dataset},
            "model": {"arch": "vgg5", "norm": "ln", "num_steps": steps, "spiking": spiking},
            "weights": {"file": "weights.safetensors", "dtype": "float32"}}))
        return folder

    same = {"bntt": run("a", steps=20), "none": run("b", steps=20), "ann": run("c", steps=1, spiking=False),
            "converted": run("d", steps=100, kind="converted"), "seq_bntt": run("e", steps=784, dataset="seq-mnist")}
    assert paper.steps_differ(same) == ""
    mixed = {**same, "ln": run("f", steps=6), "broken": tmp_path / "nothing-here"}
    assert paper.steps_differ(mixed) == "BNTT T = 20, none (surrogate BP) T = 20, LN T = 6"
    # a role whose label already says its T is not told it twice
    with_t60 = {"bntt": same["bntt"], "none_t60": run("g", steps=60)}
    assert paper.steps_differ(with_t60) == "BNTT T = 20, none (surrogate BP), T = 60"
