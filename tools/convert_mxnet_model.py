#!/usr/bin/env python
"""Convert one of the authors' trained MXNet models (msracver/Deformable-ConvNets,
``model/*.params``) into a detectron2 checkpoint for the matching ``configs/Original`` config.

    python tools/convert_mxnet_model.py --config-file configs/Original/rfcn_dcn_coco.yaml \\
        rfcn_dcn_coco-0000.params rfcn_dcn_coco.pth
    python tools/train_net.py --config-file configs/Original/rfcn_dcn_coco.yaml --eval-only \\
        MODEL.WEIGHTS rfcn_dcn_coco.pth

MXNet is not needed: the file is read directly (dcn_det.convert.load_mxnet_params). Every
tensor of the file must find its place in the model built from the config and every model
tensor must get a value, or the tool stops with one line saying which (the mapping:
dcn_det/convert/mxnet_to_detectron2.py). The checkpoint is written atomically; an existing
DST is only replaced with --overwrite.
"""
import argparse
import os
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, help="the model's config (configs/Original/*.yaml)")
    parser.add_argument("src", help="the authors' .params file")
    parser.add_argument("dst", help="detectron2 checkpoint to write (.pth)")
    parser.add_argument("--overwrite", action="store_true", help="replace DST if it exists")
    parser.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="config overrides KEY VALUE ... (last)")
    return parser


def convert(config_file: str, src: str, dst: str, opts=()) -> dict:
    """Convert ``src`` for the model of ``config_file``, write ``dst``; returns the state dict."""
    import torch
    from detectron2.modeling import build_model

    from dcn_det._files import replace_atomically
    from dcn_det.config import check_cfg
    from dcn_det.convert import convert_mxnet_params, load_mxnet_params
    from dcn_det.engine import build_cfg

    cfg = build_cfg(config_file, list(opts) + ["MODEL.DEVICE", "cpu"])
    check_cfg(cfg)
    model = build_model(cfg)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    state = convert_mxnet_params(load_mxnet_params(src), shapes)
    checkpoint = {"model": state, "__author__": f"dcn_det tools/convert_mxnet_model.py from {os.path.basename(src)}"}
    replace_atomically(dst, lambda tmp: torch.save(checkpoint, tmp))
    return state


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name, path in (("--config-file", args.config_file), ("SRC", args.src)):
        if not os.path.isfile(path):
            parser.error(f"{name}: no such file: {path}")
    if os.path.exists(args.dst) and not args.overwrite:
        parser.error(f"DST {args.dst} exists; pass --overwrite to replace it")
    if not os.path.isdir(os.path.dirname(os.path.abspath(args.dst))):
        parser.error(f"DST: the folder of {args.dst} does not exist")
    from dcn_det.config import ConfigError
    from dcn_det.convert import ConversionError

    try:
        state = convert(args.config_file, args.src, args.dst, args.opts)
    except (ConversionError, ConfigError, ValueError) as e:
        print(f"convert_mxnet_model: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.dst}: {len(state)} tensors, {sum(v.numel() for v in state.values()):,} values")
    return 0


if __name__ == "__main__":
    sys.exit(main())
