"""By hand (not collected by pytest): configs/Original at FULL width against the authors' own
test symbols, random weights, on real images. Needs the MXNet venv (`make mxnet-venv`, plus
easydict and pyyaml for their config code) and a checkout of msracver/Deformable-ConvNets:

    git --git-dir=<snapshot> archive HEAD rfcn faster_rcnn lib experiments demo | tar -x -C /tmp/authors
    .venv/bin/python -m tests.verify_mxnet.full_width_vs_authors --repo /tmp/authors \\
        --image /tmp/authors/demo/COCO_test2015_000000000891.jpg --networks rfcn_dcn_coco rcnn_dcn_coco

For each network: the image resized as their test code does (shorter side 600, longer at most
1000, cv2 bilinear) and normalised; their symbol (mxnet_authors_symbol.py) builds the test
network, draws weights and runs it; tools/convert_mxnet_model.py converts the weights; the
config's model runs on the same tensor; the largest difference per stage is printed (the
stages and measures of test_original_detectors_vs_mxnet.py). Results: docs/original_models.md.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
MEANS_RGB = (123.15, 115.90, 103.06)
NETWORKS = {
    "rfcn_dcn_coco": ("rfcn", "resnet_v1_101_rfcn_dcn",
                      "experiments/rfcn/cfgs/resnet_v1_101_coco_trainval_rfcn_dcn_end2end_ohem.yaml"),
    "rfcn_coco": ("rfcn", "resnet_v1_101_rfcn", "experiments/rfcn/cfgs/resnet_v1_101_coco_trainval_rfcn_end2end_ohem.yaml"),
    "rcnn_dcn_coco": ("faster_rcnn", "resnet_v1_101_rcnn_dcn",
                      "experiments/faster_rcnn/cfgs/resnet_v1_101_coco_trainval_rcnn_dcn_end2end.yaml"),
    "rcnn_coco": ("faster_rcnn", "resnet_v1_101_rcnn",
                  "experiments/faster_rcnn/cfgs/resnet_v1_101_coco_trainval_rcnn_end2end.yaml"),
}


def preprocess(image_path: str, short: int = 600, longest: int = 1000):
    """Their test-time resize (lib/utils/image.py: scale so the shorter side is ``short``
    unless the longer would pass ``longest``; cv2 bilinear) and normalisation (RGB minus
    means, std 1)."""
    import cv2

    im = cv2.imread(image_path, cv2.IMREAD_COLOR)
    if im is None:
        raise SystemExit(f"--image: cannot read {image_path}")
    scale = float(short) / min(im.shape[:2])
    if np.round(scale * max(im.shape[:2])) > longest:
        scale = float(longest) / max(im.shape[:2])
    im = cv2.resize(im, None, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    rgb = im[:, :, ::-1].astype(np.float32) - np.array(MEANS_RGB, np.float32)
    data = np.ascontiguousarray(rgb.transpose(2, 0, 1)[None])
    return data, np.array([[im.shape[0], im.shape[1], scale]], np.float32)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", required=True, help="checkout of msracver/Deformable-ConvNets")
    parser.add_argument("--image", required=True, nargs="+", help="images (e.g. their demo/*.jpg)")
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument("--mxnet-python", default=os.environ.get("DCN_DET_MXNET_PYTHON",
                                                                str(ROOT / ".venv-mxnet" / "bin" / "python")))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default=None, help="keep the weights and outputs here (default: a temporary folder)")
    args = parser.parse_args(argv)

    import torch

    from dcn_det.engine import build_cfg
    from tests.verify_mxnet.test_original_detectors_vs_mxnet import TOLERANCE, _stages

    torch.set_grad_enabled(False)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.workdir or scratch
        for name in args.networks:
            family, symbol, yaml = NETWORKS[name]
            for image in args.image:
                data, im_info = preprocess(image)
                src, dst, params, ckpt = (os.path.join(tmp, f) for f in ("in.npz", "out.npz", "m-0000.params", "m.pth"))
                np.savez(src, data=data, im_info=im_info, repo=args.repo, family=family, symbol=symbol, yaml=yaml,
                         seed=args.seed, params_path=params)
                t0 = time.time()
                run = subprocess.run([args.mxnet_python, str(Path(__file__).with_name("mxnet_authors_symbol.py")),
                                      src, dst], capture_output=True, text=True)
                if run.returncode != 0:
                    print(run.stderr[-4000:], file=sys.stderr)
                    return 1
                t_mx = time.time() - t0
                config = str(ROOT / "configs" / "Original" / f"{name}.yaml")
                conv = subprocess.run([sys.executable, str(ROOT / "tools" / "convert_mxnet_model.py"), "--config-file",
                                       config, params, ckpt, "--overwrite"], capture_output=True, text=True)
                if conv.returncode != 0:
                    print(conv.stderr[-4000:], file=sys.stderr)
                    return 1
                mx = dict(np.load(dst))
                print("MXNet stage magnitudes (max |x|):", {k: f"{np.abs(v).max():.3g}" for k, v in mx.items()})
                t0 = time.time()
                size = (int(im_info[0, 0]), int(im_info[0, 1]))
                diffs = _stages(build_cfg(config, ["MODEL.DEVICE", "cpu"]), ckpt, data, size, mx)
                rows.append((name, os.path.basename(image), size, diffs, t_mx, time.time() - t0))
                print(name, os.path.basename(image), size, {k: f"{v:.2e}" for k, v in diffs.items()}, flush=True)
    stages = list(TOLERANCE)
    print("\n| network | image (resized) | " + " | ".join(stages) + " |")
    print("|---|---|" + "---|" * len(stages))
    for name, image, size, diffs, _, _ in rows:
        print(f"| {name} | {image} ({size[0]}x{size[1]}) | " + " | ".join(f"{diffs[s]:.1e}" for s in stages) + " |")
    print("| tolerance (CI) | | " + " | ".join(f"{TOLERANCE[s]:.0e}" for s in stages) + " |")
    failed = [r for r in rows if any(not r[3][s] <= TOLERANCE[s] for s in stages)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
