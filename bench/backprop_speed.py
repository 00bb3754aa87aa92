"""Cost of unit analysis over the bare pass it rests on: AlexNet on a real photo, conv5 channel.

    python bench/backprop_speed.py [--repeats 40] [--device cpu] [--channel 5] [--threads N]

(a) bare: forward + backward of the model, seeded with the conv5 channel's activation, ordinary
    autograd, no hooks, no rule (AlexNet's forward written out, so conv5's output is at hand).
(b) unit: `unit_gradient(mode="guided")` + `gradient_view("normblur")` + `render_gradient`.
Run interleaved, so that the machine's drift hits both alike; prints the medians of the wall time and of
the process's CPU time, and their ratios. On a shared machine the CPU time is the steadier measure, and
`--threads 1` keeps torch's threads from waiting on each other.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--channel", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from skimage import data

    from livevis.models import Engine
    from livevis.models.attribution import gradient_view, render_gradient, unit_gradient

    torch.manual_seed(0)
    engine = Engine.load("alexnet", weights="none", device=args.device)
    model, channel = engine.model, args.channel
    x, _ = engine.preprocess(engine.upload(data.chelsea()))
    conv5 = engine.layer("conv5").path
    conv5_index = int(conv5.split(".")[-1])

    def sync() -> None:
        if x.device.type == "cuda":
            torch.cuda.synchronize()

    def bare() -> tuple[torch.Tensor, torch.Tensor]:
        leaf = x.detach().clone().requires_grad_(True)
        act = model.features[: conv5_index + 1](leaf)
        rest = model.features[conv5_index + 1 :](act.clone())  # the in-place ReLU after conv5 would overwrite act
        logits = model.classifier(torch.flatten(model.avgpool(rest), 1))
        seed = torch.zeros_like(act)
        seed[:, channel] = act[:, channel].detach()
        (grad,) = torch.autograd.grad(act, leaf, grad_outputs=seed)
        return grad, logits

    def unit() -> torch.Tensor:
        result = unit_gradient(model, x, conv5, channel, "guided")
        return render_gradient(gradient_view(result.gradient[0], "normblur"), "normblur")

    # The written-out forward must be the model's: same logits, same ordinary gradient.
    reference = unit_gradient(model, x, conv5, channel, "grad")
    grad, logits = bare()
    assert torch.allclose(logits, reference.logits, atol=1e-5), "the bare forward is not the model's"
    assert torch.allclose(grad, reference.gradient, atol=1e-6, rtol=1e-4), "the bare gradient is not the model's"

    for _ in range(5):  # warm-up
        bare()
        unit()
    wall: dict[str, list[float]] = {"bare": [], "unit": []}
    cpu: dict[str, list[float]] = {"bare": [], "unit": []}
    for _ in range(args.repeats):
        for name, fn in (("bare", bare), ("unit", unit)):
            sync()
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            sync()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    p50 = {name: statistics.median(values) * 1000 for name, values in wall.items()}
    cpu50 = {name: statistics.median(values) * 1000 for name, values in cpu.items()}
    print(
        f"AlexNet (random weights) {args.device}, 224 px, conv5 channel {channel}, "
        f"{torch.get_num_threads()} threads, {args.repeats} interleaved runs"
    )
    print("                                      wall p50     CPU p50")
    print(f"(a) bare forward + backward        {p50['bare']:8.2f} ms {cpu50['bare']:8.2f} ms")
    print(f"(b) guided + normblur + render     {p50['unit']:8.2f} ms {cpu50['unit']:8.2f} ms")
    print(
        f"ratio b / a (target <= 1.15)       {p50['unit'] / p50['bare']:8.3f}    {cpu50['unit'] / cpu50['bare']:8.3f}"
    )


if __name__ == "__main__":
    main()
