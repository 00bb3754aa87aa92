"""The digit-scene detector and segmenter on a 640 x 480 frame against torchvision's ResNet-18 at 224 x 224,
interleaved in one run (medians; the ratio is the figure to compare across runs).

    python bench/digit_scenes_speed.py [--repeats 30] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, help="torch's CPU threads (default: torch's own choice)")
    args = parser.parse_args()

    import cv2
    import torch
    import torchvision

    from livevis.assets import SAMPLES_DIR
    from livevis.models.zoo.digit_scenes import digits_detector, digits_segmenter, normalise, to_tensor

    if args.threads:
        torch.set_num_threads(args.threads)
    frame = to_tensor(cv2.imread(str(SAMPLES_DIR / "digits_china.jpg"))[:, :, ::-1])
    detector, segmenter = digits_detector(), digits_segmenter()
    resnet = torchvision.models.resnet18(weights=None).eval()
    work = {
        "detector_640x480": lambda: detector([frame]),
        "segmenter_640x480": lambda: segmenter(normalise(frame[None])),
        "resnet18_224": lambda: resnet(torch.zeros(1, 3, 224, 224)),
    }
    times: dict[str, list[float]] = {name: [] for name in work}
    with torch.inference_mode():
        for run in work.values():  # warm up
            run()
        for _ in range(args.repeats):
            for name, run in work.items():
                start = time.perf_counter()
                run()
                times[name].append((time.perf_counter() - start) * 1000)
    medians = {name: statistics.median(values) for name, values in times.items()}
    report = {f"{name}_ms_p50": round(value, 1) for name, value in medians.items()} | {
        f"{name}_over_resnet18": round(value / medians["resnet18_224"], 2)
        for name, value in medians.items()
        if name != "resnet18_224"
    }
    print(json.dumps({"threads": torch.get_num_threads(), "repeats": args.repeats} | report, indent=1))


if __name__ == "__main__":
    main()
