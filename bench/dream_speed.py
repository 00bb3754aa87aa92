"""Optimised-image speed: one optimisation step against the bare forward + backward of the model at the same
batch and size, interleaved in one run (the machine drifts between runs); a 512-step image; channels in batches.

    python bench/dream_speed.py [--model efficientnet_lite0] [--size 224] [--steps 12] [--rounds 3] [--batch 8]

Step times are medians of per-step intervals (the first steps of each run, which build the optimiser and count
module calls, are left out and timed apart as set-up). The 512-step time is the set-up plus 512 median steps,
unless --full runs it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch


def optimiser_steps(engine, objective, *, batch: int, size: int, steps: int, warmup: int = 2) -> tuple[list, float]:
    """Per-step seconds of `optimise` (after `warmup` steps) and the seconds before the first step ended."""
    from livevis.models.dream.run import optimise

    stamps = [time.perf_counter()]
    optimise(
        engine,
        objective,
        batch=batch,
        size=size,
        steps=warmup + steps,
        progress=lambda *_: stamps.append(time.perf_counter()),
    )
    intervals = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    return intervals[warmup:], intervals[0]


def bare_steps(engine, unit: int, *, batch: int, size: int, steps: int, frozen: bool) -> list[float]:
    """The model's own forward + backward from one logit to a random input: the floor for one step."""
    from livevis.models.dream.run import frozen_weights

    x = torch.randn(batch, engine.spec.in_channels, size, size, device=engine.device, requires_grad=True)
    times = []
    context = frozen_weights(engine.model) if frozen else torch.enable_grad()
    with context:
        for _ in range(steps + 1):
            start = time.perf_counter()
            engine.model.zero_grad(set_to_none=True)
            x.grad = None
            engine.model(x)[:, unit].sum().backward()
            if engine.device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    return times[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=12, help="timed steps per round and kind")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8, help="channels in one batch")
    parser.add_argument("--layer", help="layer for the batch of channels (default: the model's default layer)")
    parser.add_argument("--full", action="store_true", help="time a real 512-step image too")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from livevis.models import Engine
    from livevis.models.dream.run import channel, logit

    engine = Engine.load(args.model, device=args.device)
    unit = 980 if engine.layers[-1].channels > 980 else 0
    objective = logit(unit)
    layer = engine.layer(args.layer)
    batch_objective = channel(layer.path, list(range(args.batch)))

    step, setup, frozen, full, batch_step, single_step = [], [], [], [], [], []
    for _ in range(args.rounds):  # interleaved, so that drift hits all kinds alike
        intervals, first = optimiser_steps(engine, objective, batch=1, size=args.size, steps=args.steps)
        step += intervals
        setup.append(first)
        frozen += bare_steps(engine, unit, batch=1, size=args.size, steps=args.steps, frozen=True)
        full += bare_steps(engine, unit, batch=1, size=args.size, steps=args.steps, frozen=False)
        batch_step += optimiser_steps(
            engine, batch_objective, batch=args.batch, size=args.size, steps=max(2, args.steps // 3)
        )[0]
        single_step += optimiser_steps(engine, channel(layer.path, 0), batch=1, size=args.size, steps=args.steps)[0]
    median = statistics.median
    report = {
        "model": engine.name,
        "device": str(engine.device),
        "size": args.size,
        "threads": torch.get_num_threads(),
        "step_ms": 1000 * median(step),
        "bare_forward_backward_input_grad_ms": 1000 * median(frozen),
        "bare_forward_backward_all_grads_ms": 1000 * median(full),
        "ratio_to_input_grad": median(step) / median(frozen),
        "ratio_to_all_grads": median(step) / median(full),
        "setup_and_first_step_s": median(setup),
        "image_512_steps_s_estimated": median(setup) + 511 * median(step),
        "batch": args.batch,
        "batch_layer": layer.name,
        "batch_step_ms": 1000 * median(batch_step),
        "channels_per_second_512_steps": args.batch / (512 * median(batch_step)),
        "single_channel_step_ms": 1000 * median(single_step),
        "channels_per_second_512_steps_one_at_a_time": 1 / (512 * median(single_step)),
    }
    if args.full:
        from livevis.models.dream.run import optimise

        start = time.perf_counter()
        optimise(engine, objective, size=args.size, steps=512)
        report["image_512_steps_s_measured"] = time.perf_counter() - start
    if args.json:
        print(json.dumps(report, indent=1))
        return
    print(
        f"{engine.name} on {engine.device} ({report['threads']} threads), {args.size} px, batch 1, "
        f"logit {unit}; medians of {len(step)} steps each, interleaved over {args.rounds} rounds"
    )
    print(f"  optimisation step          {report['step_ms']:8.1f} ms")
    print(
        f"  bare fwd+bwd (input grad)  {report['bare_forward_backward_input_grad_ms']:8.1f} ms"
        f"   ratio {report['ratio_to_input_grad']:.2f}"
    )
    print(
        f"  bare fwd+bwd (all grads)   {report['bare_forward_backward_all_grads_ms']:8.1f} ms"
        f"   ratio {report['ratio_to_all_grads']:.2f}"
    )
    print(
        f"  512-step image             {report['image_512_steps_s_estimated']:8.1f} s (estimated: set-up "
        f"{report['setup_and_first_step_s']:.2f} s + 511 median steps)"
    )
    if "image_512_steps_s_measured" in report:
        print(f"  512-step image, measured   {report['image_512_steps_s_measured']:8.1f} s")
    print(
        f"  batch of {args.batch} channels of {layer.name}: {report['batch_step_ms']:.1f} ms a step, "
        f"{report['channels_per_second_512_steps']:.4f} channels/s at 512 steps "
        f"(one at a time: {report['single_channel_step_ms']:.1f} ms a step, "
        f"{report['channels_per_second_512_steps_one_at_a_time']:.4f} channels/s)"
    )


if __name__ == "__main__":
    main()
