#!/usr/bin/env python
"""Train and evaluate dcn_det models: detectron2's train_net.py with dcn_det's components.

    python tools/train_net.py --config-file configs/COCO-Detection/faster_rcnn_R_50_FPN_mdconv_c3-c5_mdpool_1x.yaml --num-gpus 8
    python tools/train_net.py --config-file CONFIG --eval-only MODEL.WEIGHTS output/model_final.pth
    python tools/train_net.py --config-file CONFIG --resume          # continue from OUTPUT_DIR/last_checkpoint
    # several machines: --num-machines M --machine-rank R --dist-url tcp://HOST:PORT

Evaluation uses COCO's evaluator for COCO-format data sets and VOC's for VOC; on
coco_2017_test-dev (no annotations) it writes coco_instances_results.json for the server.
"""
import sys

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.engine import default_argument_parser, default_setup, launch

from dcn_det.engine import DatasetNotFoundError, Trainer, build_cfg, check_datasets


def setup(args):
    cfg = build_cfg(args.config_file, args.opts)
    cfg.freeze()
    default_setup(cfg, args)
    return cfg


def main(args):
    cfg = setup(args)
    if args.eval_only:
        model = Trainer.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(cfg.MODEL.WEIGHTS, resume=args.resume)
        return Trainer.test(cfg, model)
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


def check_args(args) -> None:
    """Fail before any worker starts if a data set is missing."""
    cfg = build_cfg(args.config_file, args.opts)
    check_datasets(list(cfg.DATASETS.TEST) + ([] if args.eval_only else list(cfg.DATASETS.TRAIN)))


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    try:
        check_args(args)
    except DatasetNotFoundError as e:
        sys.exit(f"error: {e}")
    print("Command Line Args:", args)
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )
