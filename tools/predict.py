#!/usr/bin/env python
"""Run a model on your pictures: one drawn picture per input (boxes, masks or semantic labels
with class names) and predictions.json (COCO results format, with file names).

    python tools/predict.py --config-file configs/Demo/faster_rcnn_dcnv2.yaml \\
        --weights output/demo/dcnv2/model_final.pth --input my_pictures/ --output predictions/
    python tools/predict.py --config-file CFG.yaml --weights W.pth --input 'shots/*.jpg' clip.mp4 \\
        --output out/ --confidence-threshold 0.3 --show-sampling --opts INPUT.MIN_SIZE_TEST 600

--input takes image files, folders (their images and videos) and globs; a video is read
frame by frame and written back drawn (OUT/NAME.mp4, its rows with a "frame" field).
Semantic segmentation models write OUT/NAME_sem_seg.png (class index per pixel) and list
it in predictions.json. --show-sampling overlays where the deformable convolutions of the
backbone sample (9^3 points through its last three blocks) for the top three detections.
Any bad input is one "error:" line and exit status 2, with nothing written.
"""
import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile

import cv2
import torch
from tqdm import tqdm

from dcn_det.predictor import PredictorError, coco_results, expand_inputs, is_video, load_predictor, model_input
from dcn_det.visualization import deformable_stage, recording_offsets
from dcn_det.visualization.predictions import draw_predictions, draw_sampling, sampling_centers


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, help="a YAML config or a LazyConfig .py")
    parser.add_argument("--weights", required=True, help="the model's checkpoint (.pth, or detectron2's .pkl)")
    parser.add_argument("--input", required=True, nargs="+", help="image / video files, folders, globs")
    parser.add_argument("--output", required=True, help="folder for the pictures and predictions.json")
    parser.add_argument("--confidence-threshold", type=float, default=0.5, help="keep detections scoring at least this")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument("--show-sampling", action="store_true", help="draw where the deformable convolutions sample")
    parser.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="config overrides: KEY VALUE ... (last)")
    return parser


class Run:
    """One model over the inputs, writing into a staging folder that replaces nothing until
    every input has been done."""

    def __init__(self, args, staging: str):
        self.args, self.staging = args, staging
        self.loaded = load_predictor(args.config_file, args.weights, args.device, args.opts)
        self.stage = deformable_stage(self.loaded.model) if args.show_sampling else None
        if args.show_sampling and self.stage is None:
            raise PredictorError("--show-sampling: the model has no deformable convolution in its backbone "
                                 "(MODEL.DCN.DEFORM_ON_PER_STAGE)")
        self.rows = []
        self.produced = []  # the files written into the staging folder, each name once, in order

    def frame(self, image, name: str, frame=None):
        """The drawn picture of one BGR image; its rows go to predictions.json."""
        inputs = model_input(self.loaded, image)
        model = self.loaded.model
        recording = recording_offsets(model, self.stage) if self.stage else contextlib.nullcontext()
        try:
            with recording as record, torch.no_grad():
                output = model([inputs])[0]
        except Exception as e:  # noqa: BLE001  (e.g. a size the model cannot take: name the input)
            raise PredictorError(f"--input {name}: the model failed on it ({type(e).__name__}: {e})") from e
        instances = sem_seg = None
        if "instances" in output:
            instances = output["instances"].to("cpu")
            instances = instances[instances.scores >= self.args.confidence_threshold]
            self.rows += coco_results(instances, name, self.loaded.metadata, frame)
        elif "sem_seg" in output:
            sem_seg = output["sem_seg"].argmax(dim=0).to("cpu")
        else:
            raise PredictorError(f"--config-file {self.args.config_file}: the model returns neither instances nor sem_seg")
        drawn = draw_predictions(image, instances, sem_seg, self.loaded.metadata)
        if record is not None:
            scale = (inputs["image"].shape[2] / image.shape[1], inputs["image"].shape[1] / image.shape[0])
            drawn = draw_sampling(drawn, record, sampling_centers(instances, sem_seg), scale)
        return drawn, sem_seg

    def image(self, path: str, out_name: str) -> None:
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            raise PredictorError(f"--input {path}: not a readable image")
        drawn, sem_seg = self.frame(image, os.path.basename(path))
        self._write(out_name, drawn)
        if sem_seg is not None:
            labels = os.path.splitext(out_name)[0] + "_sem_seg.png"
            self._write(labels, sem_seg.numpy().astype("uint8"))
            self.rows.append({"file_name": os.path.basename(path), "sem_seg_file": labels})

    def _write(self, name: str, picture) -> None:
        """Write one picture into the staging folder and record its name (not if cv2 could not
        write it; once if two pictures share it, the later replacing the earlier)."""
        if cv2.imwrite(os.path.join(self.staging, name), picture) and name not in self.produced:
            self.produced.append(name)

    def video(self, path: str, out_name: str) -> None:
        capture = cv2.VideoCapture(path)
        if not capture.isOpened():
            raise PredictorError(f"--input {path}: not a readable video")
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        writer = None
        try:
            for index in tqdm(range(total) if total else iter(int, 1), desc=os.path.basename(path), leave=False):
                ok, image = capture.read()
                if not ok:
                    break
                drawn, _ = self.frame(image, os.path.basename(path), frame=index)
                if writer is None:
                    writer = cv2.VideoWriter(os.path.join(self.staging, out_name), cv2.VideoWriter_fourcc(*"mp4v"),
                                             fps, (drawn.shape[1], drawn.shape[0]))
                writer.write(drawn)
        finally:
            capture.release()
            if writer is not None:
                writer.release()
        if writer is None:
            raise PredictorError(f"--input {path}: the video has no readable frame")
        if os.path.exists(os.path.join(self.staging, out_name)):  # not if cv2 could not open the writer
            self.produced.append(out_name)


def output_names(inputs, output: str):
    """(input, output file name) pairs, names made unique; refuses to write over an input."""
    names, used = [], set()
    for path in inputs:
        stem, ext = os.path.splitext(os.path.basename(path))
        ext = ".mp4" if is_video(path) else ext
        name, k = stem + ext, 1
        while name in used:
            name, k = f"{stem}_{k}{ext}", k + 1
        used.add(name)
        if os.path.realpath(os.path.join(output, name)) == os.path.realpath(path):
            raise PredictorError(f"--output {output}: would write over the input {path}; choose another folder")
        names.append((path, name))
    return names


def run(args) -> int:
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        raise PredictorError(f"--output {args.output}: exists and is not a folder")
    pairs = output_names(expand_inputs(args.input), args.output)
    created = not os.path.isdir(args.output)
    os.makedirs(args.output, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".predict-", dir=args.output)
    try:
        job = Run(args, staging)
        for path, name in tqdm(pairs, desc="predict", unit="input"):
            (job.video if is_video(path) else job.image)(path, name)
        with open(os.path.join(staging, "predictions.json"), "w") as f:
            json.dump(job.rows, f)
        for produced in job.produced:  # the pictures first, predictions.json last
            os.replace(os.path.join(staging, produced), os.path.join(args.output, produced))
        os.replace(os.path.join(staging, "predictions.json"), os.path.join(args.output, "predictions.json"))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not os.listdir(args.output):
            os.rmdir(args.output)
    print(f"wrote {len(pairs)} pictures and predictions.json ({len(job.rows)} rows) to {args.output}")
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except PredictorError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
