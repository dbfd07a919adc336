"""The engine: spiking neurons, normalisation through time, encodings, the networks and one training step.

    surrogate.py   the spike's surrogate gradients (triangle, fast sigmoid, ...)
    neurons.py     LIF: charge → fire → reset over a time-major [T, B, ...] tensor
    norms.py       BNTT and the baselines behind one `norm` switch (bn, bn-joint, tdbn, tebn, ln, none)
    encoding.py    Poisson and direct input coding
    models.py      VGG / MLP spiking networks, their ANN twins, ModelSpec and build_model
    step.py        train_step / eval_logits, precision choice (bf16 where the device computes it natively)
    kernels/       the fused CPU (C) and GPU (Triton) LIF scans the eager code falls back from

Every public name of these modules is importable from `bntt_core.nn`.
"""

from bntt_core.nn.encoding import (  # noqa: F401
    ENCODINGS,
    direct_encode,
    encode,
    poisson_encode,
)
from bntt_core.nn.models import (  # noqa: F401
    ARCHS,
    ANNNet,
    ModelSpec,
    Monitor,
    SpikingLayer,
    SpikingNet,
    build_model,
    model_from_spec,
    neurons_per_image,
)
from bntt_core.nn.neurons import (  # noqa: F401
    LIF,
    RESETS,
    check_leak_threshold,
    compiled_scan_applies,
)
from bntt_core.nn.norms import (  # noqa: F401
    BNTT,
    NORMS,
    ONE_STATISTIC_NORMS,
    TEBN,
    NoNorm,
    SharedBN,
    StepBN,
    TdBN,
    TimeLN,
    bntt_into_lif,
    bntt_into_lif_applies,
    make_norm,
)
from bntt_core.nn.step import (  # noqa: F401
    DEFAULT_PRECISION,
    PRECISIONS,
    SlowPrecisionWarning,
    autocast,
    cpu_flags,
    eval_logits,
    keep_freed_memory_for_reuse,
    native_bf16,
    resolve_precision,
    run_precision,
    train_step,
)
from bntt_core.nn.surrogate import (  # noqa: F401
    ATAN_ALPHA,
    FAST_SIGMOID_SLOPE,
    SURROGATES,
    TRIANGLE_ALPHA,
    SurrogateFn,
    atan,
    fast_sigmoid,
    get_surrogate,
    triangle,
)
