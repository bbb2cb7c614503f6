"""RetinaNet R-50-FPN (P3-P7) as configs/Base-DCN-RetinaNet.yaml builds it: detectron2's own
piece on dcn_det's ResNet stages (deformable where
``model.backbone.bottom_up.stages.deform_on_per_stage`` says)."""
from detectron2.model_zoo import get_config

from .dcn_resnet import stages

model = get_config("common/models/retinanet.py").model
model.backbone.bottom_up.stages = stages
model.backbone.bottom_up.freeze_at = 2
