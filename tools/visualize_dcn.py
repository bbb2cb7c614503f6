#!/usr/bin/env python
"""Pictures of what the deformable layers learned.

1. Where stacked deformable convolutions sample (the DCNv1 paper's figure): for an
   activation point in the top layer of the last three blocks of a ResNet stage,
   follow each layer's 3x3 sampling locations (regular grid + learned offsets, bilinearly
   interpolated at fractional points) down the stack: 9, 81, then 9^3 = 729 points, drawn
   on the image. A plain network's points form the regular (dilated) grid; a deformable
   one's follow the object.
2. Where deformable RoI pooling puts its bins (the DCNv1 paper's RoI-pooling figure): for
   the top detections, the regular 7x7 bin grid of the box (grey) and every bin moved by
   its learned offset (coloured; the pixel shift is offset * trans_std * RoI width/height),
   with the DCNv2 modulation mask as dot size and opacity. Faster R-CNN's (modulated)
   deformable RoI pooling, and R-FCN's deformable PS-RoI pooling (the detected class's
   offset field).

    python tools/visualize_dcn.py --config-file configs/Demo/faster_rcnn_dcnv2.yaml \\
        --weights output/demo/dcnv2/model_final.pth --dataset shapes_dcn_val_scaled --out out.png
    python tools/visualize_dcn.py --figure pooling --config-file configs/Demo/faster_rcnn_dcnv2.yaml \\
        --weights output/demo/dcnv2/model_final.pth --dataset shapes_dcn_val --pooling-out pool.png
"""
import argparse
import os

import cv2

import dcn_det
from dcn_det.predictor import load_predictor
from dcn_det.visualization import has_deformable_pooling, pooling_figure, sampling_figure


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, nargs="+", help="one or more configs (columns / rows)")
    parser.add_argument("--weights", required=True, nargs="+", help="one checkpoint per config")
    parser.add_argument("--dataset", default="shapes_dcn_val_scaled")
    parser.add_argument("--index", type=int, default=0, help="image index in the data set")
    parser.add_argument("--figure", choices=("sampling", "pooling", "both"), default="sampling",
                        help="sampling: where stacked deformable convs sample (--out); pooling: deformable RoI "
                        "pooling bins of the top detections (--pooling-out); both")
    parser.add_argument("--out", default="output/dcn_sampling.png")
    parser.add_argument("--pooling-out", default="output/dcn_pooling_offsets.png")
    parser.add_argument("--top-k", type=int, default=3, help="detections drawn in the pooling figure")
    args = parser.parse_args()
    if len(args.config_file) != len(args.weights):
        parser.error("give one --weights per --config-file")
    if args.top_k < 1:
        parser.error("--top-k must be >= 1")
    for path in args.config_file + args.weights:
        if not os.path.isfile(path):
            parser.error(f"no such file: {path}")
    from detectron2.data import DatasetCatalog, MetadataCatalog

    dcn_det.register()  # the shapes_dcn_* data sets and the components

    if args.dataset not in DatasetCatalog.list():
        parser.error(f"data set {args.dataset!r} is not registered")
    records = DatasetCatalog.get(args.dataset)
    if not 0 <= args.index < len(records):
        parser.error(f"--index must be in [0, {len(records) - 1}] for {args.dataset}")
    record = records[args.index]
    image = cv2.imread(record["file_name"])
    boxes = [a["bbox"] for a in record.get("annotations", [])]
    models = [(os.path.basename(c).replace(".yaml", ""), load_predictor(c, w).model) for c, w in zip(args.config_file, args.weights)]
    if args.figure in ("sampling", "both"):
        centers = [(b[0] + b[2] / 2, b[1] + b[3] / 2) for b in boxes[:2]] or [(image.shape[1] / 2, image.shape[0] / 2)]
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        cv2.imwrite(args.out, sampling_figure(models, image, centers))
        print(f"wrote {args.out}")
    if args.figure in ("pooling", "both"):
        if not any(has_deformable_pooling(m) for _, m in models):
            parser.error("--figure pooling needs a model with deformable RoI pooling (MODEL.DCN.POOL dpool/mdpool "
                         "or MODEL.RFCN.DEFORMABLE)")
        gt = [(x, y, x + w, y + h) for x, y, w, h in boxes]
        names = MetadataCatalog.get(args.dataset).get("thing_classes")
        os.makedirs(os.path.dirname(os.path.abspath(args.pooling_out)), exist_ok=True)
        cv2.imwrite(args.pooling_out, pooling_figure(models, image, args.top_k, gt, names))
        print(f"wrote {args.pooling_out}")


if __name__ == "__main__":
    main()
