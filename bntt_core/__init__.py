"""bntt_core: Batch Normalization Through Time (BNTT) spiking neural networks.

The public API (notebooks, the dashboard, benchmarks and outside checks call exactly these names):

    BNTT, LIF, poisson_encode, direct_encode, build_model     the engine (SPEC "Neuron and network")
    ModelSpec, SpikingNet, ANNNet                             what build_model returns and stores
    analyze_run, read_analysis                                the analysis tables of a run (bntt_core.analysis.tables)

Tensors are time-major: [T, B, ...].
"""

from bntt_core.analysis import analyze_run, read_analysis
from bntt_core.nn.encoding import direct_encode, poisson_encode
from bntt_core.nn.models import ANNNet, ModelSpec, SpikingNet, build_model, model_from_spec
from bntt_core.nn.neurons import LIF
from bntt_core.nn.norms import BNTT, TEBN, SharedBN, StepBN, TdBN, TimeLN
from bntt_core.nn.step import eval_logits, train_step
from bntt_core.runs import load_run

__all__ = [
    "ANNNet",
    "BNTT",
    "LIF",
    "ModelSpec",
    "SharedBN",
    "SpikingNet",
    "StepBN",
    "TEBN",
    "TdBN",
    "TimeLN",
    "analyze_run",
    "build_model",
    "direct_encode",
    "eval_logits",
    "load_run",
    "model_from_spec",
    "poisson_encode",
    "read_analysis",
    "train_step",
]
__version__ = "0.1.0"
