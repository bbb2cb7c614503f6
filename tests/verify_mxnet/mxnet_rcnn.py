"""Runs under a Python with MXNet 1.9.1 (never imported by dcn_det or the test process):
``python mxnet_rcnn.py IN.npz OUT.npz``.

Builds, in MXNet's symbol API, the test network of the authors' R-FCN or Faster R-CNN (plain
or DCN) with the layer names, operators and settings of their code (msracver/Deformable-ConvNets
rfcn/symbols/resnet_v1_101_rfcn*.py, faster_rcnn/symbols/resnet_v1_101_rcnn*.py), at a reduced
width and ResNet-50 depth so that CI stays
fast; written here from that architecture, not copied. Random weights (seeded) are saved to
IN's ``params_path`` in the authors' ``arg:`` / ``aux:`` naming, the network runs on IN's ``data``
(already normalised) and ``im_info``, and OUT gets every stage: res4, res5, the RPN's
probabilities and deltas, the RoIs, the pooled features (R-FCN: class scores), cls_prob and
bbox_pred.

IN: data [1, 3, H, W], im_info [1, 3], seed, width (bottleneck width of res2), num_classes
(with background), head ("rfcn" / "rcnn"), deform_conv (0/1: deformable res5), deform_groups,
deform_pool (0/1: deformable (PS-)RoI pooling), k (R-FCN's k x k bins), scales (anchor scales),
rpn_dim, hidden_dim (R-FCN's conv_new_1, Faster R-CNN's reduction conv), fc_dim (Faster
R-CNN), pre_nms, post_nms, params_path.
"""
import sys

import mxnet as mx
import numpy as np

EPS = 1e-5
BLOCKS = (3, 4, 6, 3)  # ResNet-50, block names a, b, c, ...
RCNN_K = 7  # Faster R-CNN's RoI pooling: 7 x 7


def conv_bn(data, name, bn_name, filters, kernel, stride=1, pad=0, relu=True):
    x = mx.sym.Convolution(data=data, name=name, num_filter=filters, kernel=(kernel, kernel), stride=(stride, stride),
                           pad=(pad, pad), no_bias=True)
    x = mx.sym.BatchNorm(data=x, name=bn_name, use_global_stats=True, fix_gamma=False, eps=EPS)
    return mx.sym.Activation(data=x, act_type="relu") if relu else x


def bottleneck(data, stage, block, width, stride, dilate, deformable, groups, first):
    name = f"{stage}{block}"
    shortcut = conv_bn(data, f"res{name}_branch1", f"bn{name}_branch1", 4 * width, 1, stride, relu=False) \
        if first else data
    x = conv_bn(data, f"res{name}_branch2a", f"bn{name}_branch2a", width, 1, stride)
    if deformable:
        offset = mx.sym.Convolution(data=x, name=f"res{name}_branch2b_offset", num_filter=18 * groups, kernel=(3, 3),
                                    pad=(dilate, dilate), dilate=(dilate, dilate))
        x = mx.contrib.sym.DeformableConvolution(data=x, offset=offset, name=f"res{name}_branch2b", num_filter=width,
                                                 kernel=(3, 3), pad=(dilate, dilate), dilate=(dilate, dilate),
                                                 num_deformable_group=groups, no_bias=True)
    else:
        x = mx.sym.Convolution(data=x, name=f"res{name}_branch2b", num_filter=width, kernel=(3, 3),
                               pad=(dilate, dilate), dilate=(dilate, dilate), no_bias=True)
    x = mx.sym.BatchNorm(data=x, name=f"bn{name}_branch2b", use_global_stats=True, fix_gamma=False, eps=EPS)
    x = mx.sym.Activation(data=x, act_type="relu")
    x = conv_bn(x, f"res{name}_branch2c", f"bn{name}_branch2c", 4 * width, 1, relu=False)
    return mx.sym.Activation(data=x + shortcut, act_type="relu", name=f"res{name}_relu")


def network(a):
    width, classes = int(a["width"]), int(a["num_classes"])
    data, im_info = mx.sym.Variable("data"), mx.sym.Variable("im_info")
    x = conv_bn(data, "conv1", "bn_conv1", width, 7, 2, 3)
    x = mx.sym.Pooling(data=x, kernel=(3, 3), stride=(2, 2), pad=(0, 0), pool_type="max", pooling_convention="full")
    stages = {}
    for s, (stage, blocks) in enumerate(zip((2, 3, 4, 5), BLOCKS)):
        for b in range(blocks):
            stride = 2 if (b == 0 and stage in (3, 4)) else 1
            dilate = 2 if stage == 5 else 1
            deformable = stage == 5 and bool(a["deform_conv"])
            x = bottleneck(x, stage, chr(ord("a") + b), width * 2**s, stride, dilate, deformable,
                           int(a["deform_groups"]), b == 0)
        stages[stage] = x
    res4, res5 = stages[4], stages[5]

    rpn = mx.sym.Activation(mx.sym.Convolution(data=res4, name="rpn_conv_3x3", num_filter=int(a["rpn_dim"]),
                                               kernel=(3, 3), pad=(1, 1)), act_type="relu")
    scales = tuple(float(v) for v in a["scales"])
    anchors = 3 * len(scales)
    rpn_cls = mx.sym.Convolution(data=rpn, name="rpn_cls_score", num_filter=2 * anchors, kernel=(1, 1))
    rpn_bbox = mx.sym.Convolution(data=rpn, name="rpn_bbox_pred", num_filter=4 * anchors, kernel=(1, 1))
    prob = mx.sym.SoftmaxActivation(mx.sym.Reshape(rpn_cls, shape=(0, 2, -1, 0)), mode="channel")
    prob = mx.sym.Reshape(prob, shape=(0, 2 * anchors, -1, 0))
    rois = mx.contrib.sym.Proposal(cls_prob=prob, bbox_pred=rpn_bbox, im_info=im_info, feature_stride=16,
                                   scales=scales, ratios=(0.5, 1, 2), rpn_pre_nms_top_n=int(a["pre_nms"]),
                                   rpn_post_nms_top_n=int(a["post_nms"]), threshold=0.7, rpn_min_size=0)
    # The head runs on RoIs given as an input too, so a test can feed both networks the same RoIs.
    head_rois = mx.sym.Variable("head_rois")

    hidden = mx.sym.Activation(mx.sym.Convolution(data=res5, name="conv_new_1", num_filter=int(a["hidden_dim"]),
                                                  kernel=(1, 1)), act_type="relu")
    head = rfcn_head if str(a["head"]) == "rfcn" else rcnn_head
    pooled, cls_score, bbox_pred = head(hidden, head_rois, a)
    return dict(res4=res4, res5=res5, rpn_prob=prob, rpn_bbox=rpn_bbox, rois=rois, pooled=pooled,
                cls_prob=mx.sym.SoftmaxActivation(cls_score), bbox_pred=bbox_pred)


def rfcn_head(hidden, rois, a):
    """Position-sensitive score maps, (deformable) PS-RoI pooling, average voting."""
    classes, K = int(a["num_classes"]), int(a["k"])
    cls_maps = mx.sym.Convolution(data=hidden, name="rfcn_cls", num_filter=K * K * classes, kernel=(1, 1))
    box_maps = mx.sym.Convolution(data=hidden, name="rfcn_bbox", num_filter=K * K * 8, kernel=(1, 1))
    common = dict(group_size=K, pooled_size=K, spatial_scale=0.0625)
    if a["deform_pool"]:
        cls_t = mx.sym.Convolution(data=hidden, name="rfcn_cls_offset_t", num_filter=2 * K * K * classes, kernel=(1, 1))
        box_t = mx.sym.Convolution(data=hidden, name="rfcn_bbox_offset_t", num_filter=2 * K * K, kernel=(1, 1))
        deform = dict(sample_per_part=4, part_size=K, **common)
        cls_off = mx.contrib.sym.DeformablePSROIPooling(data=cls_t, rois=rois, no_trans=True, output_dim=2 * classes,
                                                        **deform)
        box_off = mx.contrib.sym.DeformablePSROIPooling(data=box_t, rois=rois, no_trans=True, output_dim=2, **deform)
        cls_pooled = mx.contrib.sym.DeformablePSROIPooling(data=cls_maps, rois=rois, trans=cls_off, no_trans=False,
                                                           trans_std=0.1, output_dim=classes, **deform)
        box_pooled = mx.contrib.sym.DeformablePSROIPooling(data=box_maps, rois=rois, trans=box_off, no_trans=False,
                                                           trans_std=0.1, output_dim=8, **deform)
    else:
        cls_pooled = mx.contrib.sym.PSROIPooling(data=cls_maps, rois=rois, output_dim=classes, **common)
        box_pooled = mx.contrib.sym.PSROIPooling(data=box_maps, rois=rois, output_dim=8, **common)
    cls_score = mx.sym.Reshape(mx.sym.Pooling(cls_pooled, pool_type="avg", global_pool=True, kernel=(K, K)),
                               shape=(-1, classes))
    bbox_pred = mx.sym.Reshape(mx.sym.Pooling(box_pooled, pool_type="avg", global_pool=True, kernel=(K, K)),
                               shape=(-1, 8))
    return cls_pooled, cls_score, bbox_pred


def rcnn_head(hidden, rois, a):
    """(Deformable) RoI pooling 7x7 of the reduced map, fc, fc, class-specific boxes."""
    classes, dim, fc = int(a["num_classes"]), int(a["hidden_dim"]), int(a["fc_dim"])
    K = RCNN_K
    if a["deform_pool"]:
        deform = dict(group_size=1, pooled_size=K, sample_per_part=4, part_size=K, output_dim=dim,
                      spatial_scale=0.0625)
        plain = mx.contrib.sym.DeformablePSROIPooling(data=hidden, rois=rois, no_trans=True, **deform)
        offset = mx.sym.Reshape(mx.sym.FullyConnected(data=plain, name="offset", num_hidden=2 * K * K),
                                shape=(-1, 2, K, K))
        pooled = mx.contrib.sym.DeformablePSROIPooling(data=hidden, rois=rois, trans=offset, no_trans=False,
                                                       trans_std=0.1, **deform)
    else:
        pooled = mx.sym.ROIPooling(data=hidden, rois=rois, pooled_size=(K, K), spatial_scale=0.0625)
    x = mx.sym.Activation(mx.sym.FullyConnected(data=pooled, name="fc_new_1", num_hidden=fc), act_type="relu")
    x = mx.sym.Activation(mx.sym.FullyConnected(data=x, name="fc_new_2", num_hidden=fc), act_type="relu")
    cls_score = mx.sym.FullyConnected(data=x, name="cls_score", num_hidden=classes)
    bbox_pred = mx.sym.FullyConnected(data=x, name="bbox_pred", num_hidden=4 * classes)
    return pooled, cls_score, bbox_pred


def random_params(symbol, shapes, seed, input_scale=1.0):
    """Weights of every argument and auxiliary state: He-scaled convs, batch norm statistics
    near identity, offset convs that move samples by about a pixel or two. ``input_scale``:
    the data's standard deviation (conv1 is divided by it, so real images in pixel units
    give the same activations as unit-variance noise)."""
    rng = np.random.RandomState(seed)
    arg_shapes, _, aux_shapes = symbol.infer_shape(**shapes)
    args, aux = {}, {}
    for name, shape in zip(symbol.list_arguments(), arg_shapes):
        if name in shapes:
            continue
        if name.endswith("_weight"):
            fan_in = int(np.prod(shape[1:]))
            if name.startswith(("rpn_bbox", "rfcn_bbox_weight", "bbox_pred")):
                scale = 0.02 / fan_in  # box deltas of a few tenths: boxes move but stay boxes
            elif name.startswith("rpn_cls"):
                scale = 0.05 / fan_in  # objectness logits of a few units: no float32 probability saturates at 1
            elif "offset" in name or name.startswith(("rfcn", "cls_score", "fc_new")):
                scale = 1.0 / fan_in
            else:
                scale = 2.0 / fan_in
            value = rng.normal(0, np.sqrt(scale), shape)
            if "offset" in name:
                value *= 2.0
            if name == "conv1_weight":
                value /= input_scale
        elif name.endswith("branch2c_gamma"):  # small residual branches keep 16 blocks from blowing up
            value = rng.uniform(0.1, 0.3, shape)
        elif name.endswith("_gamma"):
            value = rng.uniform(0.5, 1.5, shape)
        else:  # biases, beta
            value = rng.normal(0, 0.1, shape)
        args[name] = value.astype(np.float32)
    for name, shape in zip(symbol.list_auxiliary_states(), aux_shapes):
        value = rng.normal(0, 0.1, shape) if name.endswith("moving_mean") else rng.uniform(0.5, 2.0, shape)
        aux[name] = value.astype(np.float32)
    return args, aux


def main(src: str, dst: str) -> None:
    a = dict(np.load(src))
    params_path = str(a["params_path"])
    outputs = network(a)
    names = list(outputs)
    group = mx.sym.Group([outputs[n] for n in names])
    # First pass: the RPN's RoIs; the head is then fed them.
    shapes = dict(data=a["data"].shape, im_info=a["im_info"].shape, head_rois=(int(a["post_nms"]), 5))
    args, aux = random_params(group, shapes, int(a["seed"]))
    mx.nd.save(params_path, {**{f"arg:{k}": mx.nd.array(v) for k, v in args.items()},
                             **{f"aux:{k}": mx.nd.array(v) for k, v in aux.items()}})

    def run(head_rois):
        feed = {k: mx.nd.array(v) for k, v in args.items()}
        feed.update(data=mx.nd.array(a["data"]), im_info=mx.nd.array(a["im_info"]), head_rois=mx.nd.array(head_rois))
        executor = group.bind(mx.cpu(), feed, aux_states={k: mx.nd.array(v) for k, v in aux.items()}, grad_req="null")
        return dict(zip(names, (o.asnumpy() for o in executor.forward(is_train=False))))

    first = run(np.zeros((int(a["post_nms"]), 5), np.float32))
    result = run(first["rois"])
    np.savez(dst, **result)


if __name__ == "__main__":
    main(*sys.argv[1:3])
