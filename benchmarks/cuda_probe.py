"""Diagnostic: one run of the CUDA WaveNet kernel's tensor-core variant (9-16 streams per chain)
against the eager loop, in its own process (a fault poisons the CUDA context), so a faulting
configuration can be found and run under compute-sanitizer (benchmarks/gpu_debug.sh).

    python3 benchmarks/cuda_probe.py PRESET B [transport] [dtype] [threads]
"""
import copy
import sys

import torch
import torch.nn.functional as F

import audiogen_fast as agf
from audiogen_fast.models.wavenet import runtime as rt
from audiogen_fast.ops.wavenet_persistent import WaveNetPersistentLoop


def main():
    preset, B = sys.argv[1], int(sys.argv[2])
    transport = sys.argv[3] if len(sys.argv) > 3 else "l2"
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[sys.argv[4] if len(sys.argv) > 4 else "fp16"]
    threads = int(sys.argv[5]) if len(sys.argv) > 5 else 256
    kw = dict(residual_channels=16, gate_channels=32, skip_channels=24) if preset == "tiny-wavenet" else {}
    model = agf.build(preset, seed=11, **kw)
    rounded = copy.deepcopy(model)
    with torch.no_grad():  # the matrices the kernel stores in 16 bits, rounded the same way
        for lay in rounded.conv_layers:
            for w in (lay.conv.weight, lay.conv1x1_out.weight, lay.conv1x1_skip.weight):
                w.copy_(w.to(dtype).float())
        for w in (rounded.last_conv1.weight, rounded.last_conv2.weight):
            w.copy_(w.to(dtype).float())
    addmm, linear = torch.addmm, F.linear
    torch.addmm = lambda b, a, w, **k: addmm(b, a.to(dtype).float(), w, **k)
    F.linear = lambda a, w, b=None: linear(a.to(dtype).float(), w, b)
    cfg, T = model.config, 24
    g = torch.Generator().manual_seed(12)
    mel = torch.randn(B, cfg.n_mels, 1, generator=g)
    x = torch.randint(0, 256, (B, T), generator=g)
    _, ref = rt.run_torch(rounded, T, mel=mel, teacher=x)
    loop = WaveNetPersistentLoop(model.cuda(), dtype=dtype, streams_per_chain=16, transport=transport, threads=threads)
    print("plan", loop.plan(B, min(16, B)), flush=True)
    _, out = rt.run_cuda(model, T, mel=mel.cuda(), teacher=x.float().cuda(), loop=loop)
    out = out.cpu()
    err = ((out - ref).abs().max() / ref.abs().max()).item()
    print(f"{preset} B={B} {transport} {dtype} threads={threads}: max rel err {err:.3e}", flush=True)


if __name__ == "__main__":
    main()
