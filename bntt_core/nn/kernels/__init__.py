"""Fused LIF kernels: `cpu` compiles lif.c on first use, `gpu` runs the Triton scan of `lif_triton`.

The eager PyTorch code in bntt_core.nn is the reference; these kernels must give the same spikes.
"""
