"""Data-parallel fine-tuning on torch.distributed: several processes, one model, one batch split between them.

Each of W processes (ranks) holds a whole copy of the model and takes 1/W of every batch.
After backward, the gradients are averaged across the ranks (an all-reduce), so every
rank applies the same AdamW update and the copies stay equal (Li et al. 2020, PyTorch
Distributed; ``DistributedDataParallel`` does the all-reduce in buckets, overlapped with
backward). The backend is gloo on CPUs and nccl where GPUs exist.

What travels: only gradients, and only of the tensors that train. A frozen tensor has no
gradient, so DDP leaves it out of its buckets:

    bytes all-reduced per step = Σ over trainable tensors of numel × 4 (float32)

Full fine-tuning sends every parameter each step, LoRA only lora_A and lora_B, prompt
tuning only the k × d soft prompt: the PEFT saving in memory is also a saving in network.

Same result as one process: the loss is a mean over the answer tokens of the *whole*
batch, L = Σ_rank S_rank / n, with S_rank a rank's summed token losses and n the batch's
answer tokens (all ranks together). Each rank computes L_rank = S_rank · W / n; DDP's
average of the gradients, (1/W) Σ ∇L_rank = ∇(Σ S_rank / n) = ∇L, is the one-process
gradient. (Averaging each rank's own mean, S_rank / n_rank, would weight a rank with
short answers more: not the same gradient.) tests/test_distributed.py checks that two
processes with half the batch each end with the weights of one process with the whole batch.

The loop is train()'s own (train.py, as nanoGPT's train.py: ``ddp = dist.is_initialized()``):
inside a process group it wraps the model with ``wrap`` and scales the loss with
``whole_batch_loss``; rank 0 scores the validation split and broadcasts the score, so
eval_every, patience and the restored best weights are the one-process run's. LoRA dropout:
each rank draws its own masks (``rank_generators``: seed + rank), as each rank sees other rows.

Run it: ``minituner finetune --nproc 2 --method lora --data pairs.jsonl --out runs/mine`` (your
pairs; the command spawns the processes, rank 0 validates, prints and saves), or
``torchrun --nproc_per_node 2 -m minituner.launch --method lora --steps 50`` (a mini-world task):
launch.py, beside the command line, starts the processes; this file holds what the loop needs.

References: 1) Li et al. 2020, PyTorch Distributed: Experiences on Accelerating Data
Parallel Training. 2) PyTorch, ``torch.nn.parallel.DistributedDataParallel``.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
from torch.nn.parallel import DistributedDataParallel


def allreduce_bytes(model) -> int:
    """Bytes of gradient one step all-reduces: every trainable tensor, once (float32: 4 bytes each)."""
    seen, total = set(), 0
    for p in model.parameters():
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            total += p.numel() * p.element_size()
    return total


def init(backend: str | None = None) -> tuple[int, int]:
    """Join the process group torchrun (or spawn) describes in the environment; returns (rank, world size).
    backend: 'nccl' when CUDA is available, else 'gloo' (CPU)."""
    if not dist.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()


def whole_batch_loss(mean: torch.Tensor, mask: torch.Tensor, world: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(the loss this rank backpropagates, the whole batch's mean loss) from this rank's mean loss.

    mean = S_rank / n_rank over this rank's answer tokens (mask); returns S_rank · W / n, whose
    gradients DDP averages into ∇(Σ S / n), and Σ S_rank / n, all-reduced (the same on every rank).
    """
    n = mask.sum()  # this rank's answer tokens
    n_all = n.clone()
    dist.all_reduce(n_all)  # the whole batch's answer tokens
    loss = mean * n * world / n_all  # S_rank · W / n: DDP's average then gives ∇(Σ S / n)
    whole = loss.detach() / world
    dist.all_reduce(whole)  # Σ S_rank / n: the whole batch's mean loss
    return loss, whole


def rank_generators(model, rank: int) -> None:
    """Each rank its own dropout masks: every LoRA dropout generator (seeded from the config's seed)
    re-seeded to seed + rank·1,000,003 on rank > 0 (rank 0 keeps the one-process stream; the
    prime step keeps rank r's seeds off the other layers' seed·100,003 + i)."""
    if rank:
        for module in model.modules():
            for g in getattr(module, "generators", {}).values():
                g.manual_seed(g.initial_seed() + rank * 1_000_003)


def wrap(model, rank: int, device) -> tuple[DistributedDataParallel, list[int]]:
    """model in DistributedDataParallel (its gradients all-reduced after backward), with a hook that
    appends to the returned list the bytes of each gradient bucket it all-reduces; LoRA dropout
    masks made different per rank (rank_generators)."""
    rank_generators(model, rank)
    device = torch.device(device)
    ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    sent = []

    def counting_hook(state, bucket):  # each bucket of gradients, counted, then the usual all-reduce
        sent.append(bucket.buffer().numel() * bucket.buffer().element_size())
        return allreduce_hook(state, bucket)

    ddp.register_comm_hook(None, counting_hook)
    return ddp, sent
