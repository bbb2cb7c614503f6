"""Config keys that dcn_det adds to detectron2's.

dcn_det reuses detectron2's own keys where they exist — MODEL.RESNETS.DEFORM_ON_PER_STAGE,
DEFORM_MODULATED, DEFORM_NUM_GROUPS, RES5_DILATION — and adds only what detectron2 lacks,
under MODEL.DCN (deformable layers), MODEL.RFCN (the R-FCN head) and SOLVER (OPTIMIZER and
the learning-rate factors), plus the keys of detectron2's DeepLab project, which its own
configs need (detectron2.projects.deeplab.add_deeplab_config).
"""
import logging

from detectron2.config import CfgNode as CN


def register() -> None:
    """Register dcn_det's detectron2 components (backbones, ROI heads: importing
    dcn_det.modeling does it), the generated ``shapes_dcn_*`` data sets (images are
    generated on first use) and VOC 2012 semantic segmentation (``voc_2012_sem_seg_*``,
    dcn_det.data.voc_sem_seg), leaving alone any data set of those names that is already
    registered. Idempotent; :func:`add_dcn_config` calls it."""
    from detectron2.data import DatasetCatalog

    from . import modeling  # noqa: F401  (registration by decorators)
    from .data import SPLITS, register_shapes_datasets
    from .data.voc_sem_seg import register_builtin_voc_sem_seg

    missing = {name: spec for name, spec in SPLITS.items() if name not in DatasetCatalog.list()}
    if missing:
        register_shapes_datasets(splits=missing)
    register_builtin_voc_sem_seg()


def add_dcn_config(cfg: CN) -> CN:
    """Add dcn_det's keys and the DeepLab project's (with their defaults) to ``cfg`` in
    place and return it, and make sure dcn_det's components and data sets are registered
    (:func:`register`).

    Calling it twice is harmless: keys that already exist keep their values.
    """
    register()
    defaults = CN()
    defaults.MODEL = CN()

    dcn = defaults.MODEL.DCN = CN()
    # For each of res2..res5 whose MODEL.RESNETS.DEFORM_ON_PER_STAGE is True: -1 makes every
    # block deformable, N >= 1 only the last N (the DCNv1 paper's res5a-c ablation is 3).
    dcn.DEFORM_LAST_BLOCKS_PER_STAGE = [-1, -1, -1, -1]
    # Sampling rule of the deformable convs at the map's border: "dcnv2" (torchvision's and
    # the DCNv2 code's: corners outside count 0, points in (-1, H) interpolate) or "dcnv1"
    # (MXNet DeformableConvolution, which the authors' DCNv1 models were trained with: only
    # points in [0, H) x [0, W) sample, the last row/column is clamped onto). dcn_det.ops.deform_conv2d.
    dcn.BORDER = "dcnv2"
    # Dilation of the 3x3 convs that compute the backbone's offsets (and masks): 0 = the
    # deformable conv's own (detectron2's and the DCNv2 code's rule); N >= 1 = N, padded to the
    # same output size (the authors' Deformable DeepLab: offsets by a dilation-1 conv for a
    # dilation-2 deformable res5).
    dcn.OFFSET_CONV_DILATION = 0
    # Box-head RoI pooling: "" = detectron2's pooler (MODEL.ROI_BOX_HEAD.POOLER_TYPE),
    # "dpool" = deformable RoI pooling (DCNv1), "mdpool" = modulated (DCNv2).
    dcn.POOL = ""
    # A bin moves by offset * POOL_TRANS_STD * RoI size.
    dcn.POOL_TRANS_STD = 0.1
    # Bilinear samples per bin side.
    dcn.POOL_SAMPLE_PER_PART = 4
    # Hidden fc widths of the branch that predicts pooling offsets (and the mdpool mask);
    # [] = a single fc, as in the original implementation.
    dcn.POOL_OFFSET_FC_DIMS = [1024, 1024]
    # Offsets per side, predicted from features pooled at this size (0 = the pooler
    # resolution). C4 heads pool 14x14 and use 7 to keep the offset fc small.
    dcn.POOL_PART_SIZE = 0
    # FPN: one offset (and mask) branch per pyramid level instead of one shared by all (the
    # authors' Deformable FPN: offset_p2..offset_p5).
    dcn.POOL_OFFSET_PER_LEVEL = False

    # The stem's 3x3/2 max-pool with padding 0 in ceil mode, as in the original MXNet / Caffe
    # ResNets (the authors' released models), instead of detectron2's padding 1, floor mode:
    # a 387-pixel map pools to 193, not 194. Read by build_dcn_resnet_backbone (and its FPN).
    defaults.MODEL.RESNETS = CN()
    defaults.MODEL.RESNETS.STEM_POOL_CEIL_MODE = False

    # The FPN's extra top level, read by build_dcn_resnet_fpn_backbone: "maxpool" (detectron2's:
    # P6 = stride-2 max-pool of P5) or "p6_conv_c5" (the authors' Deformable FPN: P6 = a 3x3
    # stride-2 conv on res5, dcn_det.modeling.LastLevelP6FromC5).
    defaults.MODEL.FPN = CN()
    defaults.MODEL.FPN.TOP_BLOCK = "maxpool"

    # The proposal rules of the original code, read by PROPOSAL_GENERATOR.NAME "OriginalRPN"
    # (dcn_det.modeling.proposal_generator; with both at their defaults it is detectron2's
    # RPN). DROP_PARTIAL_CELLS: no proposals from the anchors of the partial last row / column
    # of cells (row >= H // stride or column >= W // stride). PROPOSAL_RULES "original":
    # decode in float64 without a scale clamp, clip to [0, W-1] x [0, H-1] in the +1 box
    # convention, keep degenerate boxes; "detectron2": detectron2's decoding and clipping.
    # The original anchors themselves: MODEL.ANCHOR_GENERATOR.NAME "RoundedAnchorGenerator".
    defaults.MODEL.RPN = CN()
    defaults.MODEL.RPN.DROP_PARTIAL_CELLS = False
    defaults.MODEL.RPN.PROPOSAL_RULES = "detectron2"
    # Clip detections to [0, W-1] x [0, H-1] in the +1 box convention (x1 <= W-1, x2 <= W),
    # as the original's test code, instead of detectron2's [0, W] x [0, H]. Read by
    # RFCNROIHeads and DeformStandardROIHeads (dcn_det.modeling.plus_one_boxes).
    defaults.MODEL.ROI_HEADS = CN()
    defaults.MODEL.ROI_HEADS.CLIP_PLUS_ONE = False
    # Soft-NMS at test time instead of NMS (DeformStandardROIHeads; dcn_det.modeling.soft_nms):
    # "" = detectron2's NMS, "gaussian" (scores times exp(-IoU^2 / SIGMA): the authors'
    # Deformable FPN, SIGMA 0.6), "linear" (times 1 - IoU above NMS_THRESH_TEST) or "hard".
    # Boxes whose decayed score falls under PRUNE are dropped; PLUS_ONE_IOU: IoU in the +1
    # box convention, as the original.
    defaults.MODEL.ROI_HEADS.SOFT_NMS_METHOD = ""
    defaults.MODEL.ROI_HEADS.SOFT_NMS_SIGMA = 0.5
    defaults.MODEL.ROI_HEADS.SOFT_NMS_PRUNE = 0.001
    defaults.MODEL.ROI_HEADS.SOFT_NMS_PLUS_ONE_IOU = False
    # The authors' Faster R-CNN box head (DeformStandardROIHeads): REDUCE_CONV_DIM > 0 puts a
    # 1x1 conv + ReLU to that many channels over the whole feature map before RoI pooling
    # (2048 -> 256 on res5); POOL_PLUS_ONE_BOXES pools each box as (x1, y1, x2 - 1, y2 - 1),
    # the +1 convention of the original's pooling ops (see MODEL.RFCN.POOL_PLUS_ONE_BOXES).
    defaults.MODEL.ROI_BOX_HEAD = CN()
    defaults.MODEL.ROI_BOX_HEAD.REDUCE_CONV_DIM = 0
    defaults.MODEL.ROI_BOX_HEAD.POOL_PLUS_ONE_BOXES = False

    rfcn = defaults.MODEL.RFCN = CN()
    # k: k x k position-sensitive score maps and bins.
    rfcn.GROUP_SIZE = 7
    # 1x1 conv after the backbone that reduces the channels before the score maps.
    rfcn.HIDDEN_DIM = 1024
    # Deformable PS-RoI pooling (offsets from a zero-initialised conv branch).
    rfcn.DEFORMABLE = False
    # One offset field for all classes (True) or one per class (False, as in the paper).
    rfcn.CLASS_AGNOSTIC_OFFSETS = False
    # DCNv2-style modulated PS-RoI pooling (a learned mask per bin); needs DEFORMABLE.
    rfcn.MODULATED = False
    rfcn.TRANS_STD = 0.1
    # Pool each box as (x1, y1, x2 - 1, y2 - 1): the original code's +1 box convention, in
    # which x2, y2 name the last pixel inside (its pooling ops add the 1 back); detectron2's
    # boxes are continuous, so without this the authors' models pool one pixel wider.
    rfcn.POOL_PLUS_ONE_BOXES = False
    rfcn.SAMPLE_PER_PART = 4
    # Plain (non-deformable) head only: pool each bin as the mean of the whole pixels it
    # covers (MXNet PSROIPooling, the authors' non-deformable R-FCN; dcn_det.ops.psroi_pool)
    # instead of SAMPLE_PER_PART^2 bilinear samples.
    rfcn.INTEGER_BINS = False
    # Online hard example mining: per image, train on the N sampled RoIs with the highest
    # loss (0 = off). With OHEM, sample many RoIs (MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE).
    rfcn.OHEM_ROIS = 0
    # Box regression loss: "smooth_l1" or "giou".
    rfcn.BBOX_REG_LOSS_TYPE = "smooth_l1"
    rfcn.SMOOTH_L1_BETA = 0.0
    # Normal-init std of the score-map convs (and of the hidden conv with HIDDEN_INIT
    # "normal"); 0.01 as in the original implementation.
    rfcn.HEAD_INIT_STD = 0.01
    # Init of the hidden 1x1 conv: "normal" (std HEAD_INIT_STD, the original) or "msra" (He,
    # fan-out: detectron2's c2_msra_fill): unit-scale hidden features for heads from scratch.
    rfcn.HIDDEN_INIT = "normal"
    # Deprecated: use SOLVER.PARAM_LR_FACTORS. A value f != 1 is read by the optimizer
    # builder (dcn_det.solver) as an SGD learning-rate factor f (weight decay / f) for the
    # head's three 1x1 convs, with a warning; it no longer changes the model.
    rfcn.HEAD_LR_FACTOR = 1.0

    defaults.SOLVER = CN()
    # "SGD" (detectron2's: SOLVER.MOMENTUM, NESTEROV) or "AdamW" (betas (0.9, 0.999); takes
    # SOLVER.BASE_LR, WEIGHT_DECAY*, BIAS_LR_FACTOR, the LR schedule and gradient clipping
    # like SGD). Built by dcn_det.engine.Trainer.build_optimizer.
    defaults.SOLVER.OPTIMIZER = "SGD"
    # Learning-rate factor of the offset (and modulation mask) branches of deformable convs
    # and deformable (PS-)RoI pooling (dcn_det.solver). The DCNv1 paper trains them at beta
    # times the base rate; 1 = the same rate as the rest.
    defaults.SOLVER.DCN_OFFSET_LR_FACTOR = 1.0
    # Per-parameter factors: a list of [regex, lr_factor] or [regex, lr_factor,
    # weight_decay_factor]; the first regex that matches a parameter's full name (re.search,
    # e.g. "roi_heads.rfcn_cls.weight") sets its factors; DCN_OFFSET_LR_FACTOR still applies.
    defaults.SOLVER.PARAM_LR_FACTORS = []

    _merge_missing(cfg, _deeplab_defaults())

    _merge_missing(cfg, defaults)
    return cfg


def _deeplab_defaults() -> CN:
    """The keys of detectron2's DeepLab project (``add_deeplab_config``: poly LR schedule,
    ASPP head, DeepLab stem and res5 multi-grid), so DeepLab configs merge. Merged as
    missing keys only: a config that already has them keeps its values."""
    from detectron2.config import get_cfg
    from detectron2.projects.deeplab import add_deeplab_config

    keys = get_cfg()
    add_deeplab_config(keys)
    return keys


def _merge_missing(cfg: CN, defaults: CN) -> None:
    for key, value in defaults.items():
        if key not in cfg:
            cfg[key] = value
        elif isinstance(value, CN):
            _merge_missing(cfg[key], value)


# detectron2's builders whose deformable blocks need detectron2's compiled CUDA ops, and
# dcn_det's equivalents (same parameter names, CPU and CUDA).
_DCN_EQUIVALENTS = {
    ("BACKBONE", "build_resnet_backbone"): "build_dcn_resnet_backbone",
    ("BACKBONE", "build_resnet_fpn_backbone"): "build_dcn_resnet_fpn_backbone",
    ("ROI_HEADS", "Res5ROIHeads"): "DeformRes5ROIHeads",
    ("ROI_HEADS", "StandardROIHeads"): "DeformStandardROIHeads",
    ("BACKBONE", "build_retinanet_resnet_fpn_backbone"): "build_dcn_retinanet_resnet_fpn_backbone",
    ("BACKBONE", "build_resnet_deeplab_backbone"): "build_dcn_resnet_deeplab_backbone",
    ("ROI_HEADS", "CascadeROIHeads"): "DeformCascadeROIHeads",
}


def use_dcn_builders(cfg: CN) -> CN:
    """Where cfg asks detectron2's ResNet / ROI heads for deformable convs (detectron2's
    MODEL.RESNETS.DEFORM_* keys, e.g. its configs/Misc/*dconv*), build dcn_det's
    equivalents instead, which run on CPU and GPU and load the same checkpoints. Modifies
    the (unfrozen) cfg in place and logs each substitution."""
    if not any(cfg.MODEL.RESNETS.DEFORM_ON_PER_STAGE):
        return cfg
    for (section, name), ours in _DCN_EQUIVALENTS.items():
        node = cfg.MODEL[section]
        if node.NAME == name:
            logging.getLogger(__name__).info("MODEL.%s.NAME: %s -> %s (dcn_det deformable blocks)", section, name, ours)
            node.NAME = ours
    return cfg


FPN_TOP_BLOCKS = ("maxpool", "p6_conv_c5")


class ConfigError(ValueError):
    """A dcn_det config value that cannot work; the message is one line naming the key."""


_POOL_KINDS = ("", "dpool", "mdpool")


def check_cfg(cfg: CN) -> CN:
    """Check the keys that dcn_det reads (and the detectron2 keys they depend on) before
    anything is built or loaded, so a bad value is one clear line instead of a traceback
    from deep inside model construction — or, worse, a setting that is silently ignored.
    Raises :class:`ConfigError`; returns ``cfg``."""
    resnets, dcn, rfcn = cfg.MODEL.RESNETS, cfg.MODEL.DCN, cfg.MODEL.RFCN

    def fail(message):
        raise ConfigError(message)

    for key, values in (("MODEL.RESNETS.DEFORM_ON_PER_STAGE", resnets.DEFORM_ON_PER_STAGE),
                        ("MODEL.DCN.DEFORM_LAST_BLOCKS_PER_STAGE", dcn.DEFORM_LAST_BLOCKS_PER_STAGE)):
        if len(values) != 4:
            fail(f"{key} needs 4 entries (res2, res3, res4, res5), got {len(values)}: {list(values)}")
    for i, last in enumerate(dcn.DEFORM_LAST_BLOCKS_PER_STAGE):
        if last != -1 and last < 1:
            fail(f"MODEL.DCN.DEFORM_LAST_BLOCKS_PER_STAGE[{i}] must be -1 (all blocks) or >= 1, got {last}")

    deform_stages = [i for i, on in enumerate(resnets.DEFORM_ON_PER_STAGE) if on]
    if deform_stages and resnets.DEPTH < 50:
        fail(f"deformable convs need bottleneck blocks (MODEL.RESNETS.DEPTH >= 50), got DEPTH {resnets.DEPTH} "
             f"with MODEL.RESNETS.DEFORM_ON_PER_STAGE {list(resnets.DEFORM_ON_PER_STAGE)}")
    if resnets.DEFORM_MODULATED and not deform_stages:
        fail("MODEL.RESNETS.DEFORM_MODULATED is True but no stage is deformable (MODEL.RESNETS.DEFORM_ON_PER_STAGE "
             "is all False): it would be ignored")
    groups = resnets.DEFORM_NUM_GROUPS
    if groups < 1:
        fail(f"MODEL.RESNETS.DEFORM_NUM_GROUPS must be >= 1, got {groups}")
    for i in deform_stages:
        # The deformable conv is each bottleneck's 3x3, whose width doubles per stage.
        channels = resnets.NUM_GROUPS * resnets.WIDTH_PER_GROUP * 2**i
        if channels % groups:
            fail(f"MODEL.RESNETS.DEFORM_NUM_GROUPS ({groups}) must divide the channels of the deformable convs of "
                 f"res{i + 2} ({channels} = NUM_GROUPS {resnets.NUM_GROUPS} x WIDTH_PER_GROUP "
                 f"{resnets.WIDTH_PER_GROUP} x {2**i})")

    if dcn.POOL not in _POOL_KINDS:
        fail(f'MODEL.DCN.POOL must be "", "dpool" or "mdpool", got {dcn.POOL!r}')
    if dcn.BORDER not in ("dcnv2", "dcnv1"):
        fail(f'MODEL.DCN.BORDER must be "dcnv2" or "dcnv1", got {dcn.BORDER!r}')
    if cfg.MODEL.FPN.TOP_BLOCK not in FPN_TOP_BLOCKS:
        fail(f"MODEL.FPN.TOP_BLOCK must be one of {list(FPN_TOP_BLOCKS)}, got {cfg.MODEL.FPN.TOP_BLOCK!r}")
    if not isinstance(dcn.OFFSET_CONV_DILATION, int) or dcn.OFFSET_CONV_DILATION < 0:
        fail(f"MODEL.DCN.OFFSET_CONV_DILATION must be an integer >= 0 (0: the deformable conv's dilation), "
             f"got {dcn.OFFSET_CONV_DILATION!r}")
    rpn = cfg.MODEL.RPN
    if rpn.PROPOSAL_RULES not in ("detectron2", "original"):
        fail(f'MODEL.RPN.PROPOSAL_RULES must be "detectron2" or "original", got {rpn.PROPOSAL_RULES!r}')
    generator = cfg.MODEL.PROPOSAL_GENERATOR.NAME
    if (rpn.DROP_PARTIAL_CELLS or rpn.PROPOSAL_RULES != "detectron2") and generator != "OriginalRPN":
        fail(f"MODEL.RPN.DROP_PARTIAL_CELLS / PROPOSAL_RULES are read by MODEL.PROPOSAL_GENERATOR.NAME "
             f"\"OriginalRPN\"; {generator!r} would ignore them")

    heads = cfg.MODEL.ROI_HEADS.NAME
    box = cfg.MODEL.ROI_BOX_HEAD
    if (box.REDUCE_CONV_DIM or box.POOL_PLUS_ONE_BOXES) and heads != "DeformStandardROIHeads":
        fail(f"MODEL.ROI_BOX_HEAD.REDUCE_CONV_DIM / POOL_PLUS_ONE_BOXES are read by DeformStandardROIHeads; "
             f"MODEL.ROI_HEADS.NAME {heads!r} would ignore them")
    if box.REDUCE_CONV_DIM < 0:
        fail(f"MODEL.ROI_BOX_HEAD.REDUCE_CONV_DIM must be >= 0 (0 = no reduction conv), got {box.REDUCE_CONV_DIM}")
    if cfg.MODEL.ROI_HEADS.CLIP_PLUS_ONE and heads not in ("DeformStandardROIHeads", "RFCNROIHeads"):
        fail(f"MODEL.ROI_HEADS.CLIP_PLUS_ONE is read by DeformStandardROIHeads and RFCNROIHeads; "
             f"MODEL.ROI_HEADS.NAME {heads!r} would ignore it")
    from .modeling.soft_nms import SOFT_NMS_METHODS

    soft = cfg.MODEL.ROI_HEADS.SOFT_NMS_METHOD
    if soft not in ("",) + SOFT_NMS_METHODS:
        fail(f"MODEL.ROI_HEADS.SOFT_NMS_METHOD must be one of {['', *SOFT_NMS_METHODS]}, got {soft!r}")
    if soft and heads != "DeformStandardROIHeads":
        fail(f"MODEL.ROI_HEADS.SOFT_NMS_METHOD is read by DeformStandardROIHeads; MODEL.ROI_HEADS.NAME {heads!r} would ignore it")
    if soft and not cfg.MODEL.ROI_HEADS.SOFT_NMS_SIGMA > 0:
        fail(f"MODEL.ROI_HEADS.SOFT_NMS_SIGMA must be > 0, got {cfg.MODEL.ROI_HEADS.SOFT_NMS_SIGMA}")
    if dcn.POOL and not _roi_heads_attr(heads, "DCN_POOL_SUPPORTED"):
        fail(f"MODEL.DCN.POOL {dcn.POOL!r} needs ROI heads with a deformable box pooler (e.g. DeformStandardROIHeads, "
             f"DeformRes5ROIHeads); MODEL.ROI_HEADS.NAME is {heads!r}, which would ignore it")
    if dcn.POOL_SAMPLE_PER_PART < 1:
        fail(f"MODEL.DCN.POOL_SAMPLE_PER_PART must be >= 1, got {dcn.POOL_SAMPLE_PER_PART}")

    if heads == "RFCNROIHeads":
        if "fpn" in cfg.MODEL.BACKBONE.NAME.lower() or len(cfg.MODEL.ROI_HEADS.IN_FEATURES) != 1:
            fail("R-FCN pools one single-scale feature map (a C4 ResNet: MODEL.BACKBONE.NAME build_dcn_resnet_backbone, "
                 f"MODEL.ROI_HEADS.IN_FEATURES [\"res5\"]); got MODEL.BACKBONE.NAME {cfg.MODEL.BACKBONE.NAME!r} and "
                 f"MODEL.ROI_HEADS.IN_FEATURES {list(cfg.MODEL.ROI_HEADS.IN_FEATURES)}")
        if rfcn.GROUP_SIZE < 1:
            fail(f"MODEL.RFCN.GROUP_SIZE (k, the k x k position-sensitive bins) must be >= 1, got {rfcn.GROUP_SIZE}")
        if rfcn.SAMPLE_PER_PART < 1:
            fail(f"MODEL.RFCN.SAMPLE_PER_PART must be >= 1, got {rfcn.SAMPLE_PER_PART}")
    if rfcn.INTEGER_BINS and rfcn.DEFORMABLE:
        fail("MODEL.RFCN.INTEGER_BINS is the plain head's pooling (MXNet PSROIPooling); with MODEL.RFCN.DEFORMABLE "
             "the bins are sampled (SAMPLE_PER_PART)")
    if rfcn.MODULATED and not rfcn.DEFORMABLE:
        fail("MODEL.RFCN.MODULATED needs MODEL.RFCN.DEFORMABLE (modulation scales the deformable bins)")
    from .solver import check_lr_factors  # SOLVER.PARAM_LR_FACTORS, DCN_OFFSET_LR_FACTOR

    try:
        check_lr_factors(cfg)
    except ValueError as e:
        fail(" ".join(str(e).split()))
    return cfg


def _roi_heads_attr(name: str, attr: str):
    """A class attribute of the registered ROI heads ``name`` (None if unknown or unset)."""
    from detectron2.modeling import ROI_HEADS_REGISTRY

    try:
        return getattr(ROI_HEADS_REGISTRY.get(name), attr, None)
    except KeyError:
        return None
