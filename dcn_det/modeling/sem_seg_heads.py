"""A DeepLabV3 head for test images of any size (PASCAL VOC), registered as
``DeepLabV3GlobalPoolHead``.

detectron2's DeepLab project sizes the ASPP image-pooling branch from INPUT.CROP.SIZE when
training crops are on (an average pool of the crop's feature size), which then rejects test
images whose feature map is not a multiple of it (VOC images vary in size). This head is
the project's ``DeepLabV3Head`` with global average pooling in that branch, at training and
test time alike (the image-level feature of the DeepLabv3 paper). The pooling has no
parameters, so checkpoints of either head load into the other.
"""
from detectron2.modeling import SEM_SEG_HEADS_REGISTRY
from detectron2.projects.deeplab import DeepLabV3Head


@SEM_SEG_HEADS_REGISTRY.register()
class DeepLabV3GlobalPoolHead(DeepLabV3Head):
    def __init__(self, cfg, input_shape):
        cfg = cfg.clone()
        cfg.defrost()
        cfg.INPUT.CROP.ENABLED = False  # read only to size the ASPP pooling
        super().__init__(cfg, input_shape)
