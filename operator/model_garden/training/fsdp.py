"""Full fine-tuning across processes with FSDP2: each process holds 1/N of the weights,
gradients and optimizer state (``torch.distributed.fsdp.fully_shard``), so a model that does
not fit one GPU trains on several.

When: ``method: full`` with more than one process (:func:`parallelism`). LoRA and QLoRA stay
replicated (distributed.py): their trainable state is a few MB of adapters, and the frozen base
is what takes the memory, which sharding the trainable part would not reduce; replicas also
keep their loop free of per-layer collectives.

How it meets our loop (loop.py calls the decoder and the LM head apart, the head only on
labelled positions): every decoder layer is its own FSDP unit (all-gathered in its forward,
freed after), then the root (the causal LM) holds the rest: embeddings, final norm and head,
tied or not. FSDP2 all-gathers a unit in the hooks of its ``forward``; the loop never calls the
root's ``forward``, so the split call is registered as a forward method of the root
(:data:`SPLIT_FORWARD`, ``register_fsdp_forward_method``), which runs it inside the root's
hooks: the root's weights are gathered for it and its gradients reduce-scattered after.

Gradients: FSDP2 reduce-scatters them itself, averaged over the processes; the loop scales its
loss by the number of processes so the average is the sum the replicated path computes (gloo
has no pre-multiplied sum for ``set_gradient_divide_factor``). Every process must run the same
number of forwards (each is a collective), so a process short of micro-batches runs a
zero-weighted one (distributed.padded_shard).

Checkpoints and artifacts are full (unsharded), gathered to rank 0 on CPU
(:func:`full_state`): the artifact is the same safetensors model a one-process run writes, and a
checkpoint holds the full weights and the full optimizer state (keyed by parameter name), so a
resume loads them on every process and shards them again (:func:`load_full_state`), with any
number of processes; a checkpoint one process wrote (its optimizer state numbers the
parameters) loads too, renamed (:func:`named_optimizer_state`), and the other way round.
Gathering is collective: every process calls it, rank 0 alone writes. For the same reason every
process runs the evaluations (the eval loss, spec.evaluation's greedy samples): their forwards
gather weights; the figures are the same on every process and rank 0's are reported.
"""

from __future__ import annotations

import functools
from typing import Any

FSDP = "fsdp"
REPLICATED = "replicated"
SINGLE = "single"
"""Values of ``TrainingResult.parallelism``: sharded, data-parallel replicas, one process."""

SPLIT_FORWARD = "model_garden_label_logits"
"""The root's registered forward method for the loop's decoder-then-head call (loop.py)."""


def parallelism(method: str, processes: int) -> str:
    """How the processes split the work: FSDP for full fine-tuning on more than one process,
    replicas for LoRA/QLoRA (see the module doc), nothing to split with one process."""
    if processes < 1:
        raise ValueError(f"processes must be at least 1, got {processes}")
    if processes == 1:
        return SINGLE
    return FSDP if method == "full" else REPLICATED


def decoder_layers(model: Any) -> list[Any]:
    """The decoder's layers (``model.model.layers`` for Llama-like models; none if the model
    has no standard decoder, which then shards as one unit)."""
    try:
        decoder = model.get_decoder()
    except (AttributeError, NotImplementedError):
        return []
    layers = getattr(decoder, "layers", None)
    return list(layers) if layers is not None else []


def shard(model: Any, split_forward: Any) -> None:
    """Shard ``model`` in place: each decoder layer, then the root; register the loop's split
    call (``split_forward(model, batch, keep)``) as a forward of the root. Parameters become
    DTensors, so the optimizer is built after this."""
    from torch.distributed.fsdp import fully_shard, register_fsdp_forward_method

    for layer in decoder_layers(model):
        fully_shard(layer)
    fully_shard(model)
    setattr(model, SPLIT_FORWARD, functools.partial(split_forward, model))
    register_fsdp_forward_method(model, SPLIT_FORWARD)


def reshard(model: Any) -> None:
    """Free the gathered weights FSDP keeps after a forward without backward (an eval): the
    root keeps its own gathered after its forward, for the backward that usually follows,
    and while it does, ``model.parameters()`` lists those full copies, not the shards the
    optimizer steps (seen: a gradient clip over them left the root's gradients out). A model
    that is not sharded is left alone."""
    from torch.distributed.fsdp import FSDPModule

    if isinstance(model, FSDPModule):
        model.reshard()


def local_parameter_bytes(model: Any) -> int:
    """Bytes of parameters this process holds (its shards under FSDP, all of them otherwise)."""
    total = 0
    for p in model.parameters():
        local = p.to_local() if hasattr(p, "to_local") else p
        total += local.numel() * local.element_size()
    return int(total)


def parameter_bytes(model: Any) -> int:
    """Bytes of the whole model's parameters (global shapes), whoever holds them."""
    return int(sum(p.numel() * p.element_size() for p in model.parameters()))


def _options(**kw: Any) -> Any:
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, **kw)


def full_weights(model: Any) -> dict[str, Any]:
    """The unsharded state dict on rank 0's CPU (empty on the others). Collective."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    return dict(get_model_state_dict(model, options=_options(cpu_offload=True)))


def full_state(model: Any, optimizer: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(weights, optimizer state), unsharded on rank 0's CPU, the optimizer's keyed by
    parameter name (empty on the others). Collective: every process calls it."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    weights = full_weights(model)
    optim = get_optimizer_state_dict(model, optimizer, options=_options(cpu_offload=True))
    return weights, dict(optim)


def load_full_state(
    model: Any, optimizer: Any, weights: dict[str, Any], optimizer_state: dict[str, Any]
) -> None:
    """Load a full checkpoint on every process and keep this process's shards of it.

    Not strict: a checkpoint lists each trainable parameter once (a tied head is its
    embedding), the caller checks that no name is unknown."""
    from torch.distributed.checkpoint.state_dict import (
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    set_model_state_dict(model, weights, options=_options(strict=False))
    set_optimizer_state_dict(model, optimizer, optimizer_state, options=_options())


def named_optimizer_state(state: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """An optimizer state dict as ``optimizer.state_dict()`` writes it (parameters by index in
    the optimizer's order) keyed by parameter name instead, as a full FSDP state is: so a run
    sharded now resumes from a checkpoint that one process (or replicas) wrote. An index past
    ``names`` is an error naming it."""

    def name(index: Any) -> str:
        i = int(index)
        if not 0 <= i < len(names):
            raise ValueError(f"optimizer state names parameter {i}; the model has {len(names)}")
        return names[i]

    return {
        "state": {name(i): s for i, s in state.get("state", {}).items()},
        "param_groups": [
            {**group, "params": [name(i) for i in group["params"]]}
            for group in state.get("param_groups", [])
        ],
    }


def keyed_by_name(state: dict[str, Any]) -> bool:
    """Whether an optimizer state dict names its parameters (a full FSDP one) rather than
    numbering them (``optimizer.state_dict()``)."""
    groups = state.get("param_groups", [])
    return any(isinstance(p, str) for g in groups for p in g.get("params", []))


def plain_class(model: Any) -> type:
    """The model's own class: ``fully_shard`` swaps in a subclass named ``FSDP<Class>``,
    which ``save_pretrained`` would write into ``config.json``'s ``architectures``."""
    from torch.distributed.fsdp import FSDPModule

    cls: type = type(model)
    if isinstance(model, FSDPModule):
        for base in cls.__mro__[1:]:
            if base is not FSDPModule and not issubclass(base, FSDPModule):
                return base
    return cls
