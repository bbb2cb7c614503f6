"""``dcn_det.onnx``: models with dcn_det's ops exported to ONNX and run in onnxruntime agree with
the same models in PyTorch (our ops, tested on their own against independent references)."""
import os
import subprocess
import sys

import pytest
import torch

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxscript")

import dcn_det.onnx as dcn_onnx  # noqa: E402
from dcn_det.layers import DeformPSRoIPool, ModulatedDeformConvWithOffset  # noqa: E402
from dcn_det.ops import deform_conv2d, deform_psroi_pool  # noqa: E402


def run_onnx(path, inputs):
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    assert len(names) == len(inputs), names
    return [torch.from_numpy(o) for o in session.run(None, {n: t.numpy() for n, t in zip(names, inputs)})]


def op_types(path):
    return {node.op_type for node in onnx.load(path).graph.node}


class DeformConvCall(torch.nn.Module):
    def __init__(self, weight, bias, **geometry):
        super().__init__()
        self.weight = torch.nn.Parameter(weight)
        self.bias = None if bias is None else torch.nn.Parameter(bias)
        self.geometry = geometry

    def forward(self, x, offset, *mask):
        return deform_conv2d(x, offset, self.weight, self.bias, mask=mask[0] if mask else None, **self.geometry)


# (N, C, H, W, out, kh, kw, groups, offset_groups, stride, padding, dilation, bias, mask)
CONV_CASES = [
    (2, 4, 7, 9, 6, 3, 3, 1, 1, 1, 1, 1, True, True),
    (1, 4, 8, 6, 4, 3, 3, 2, 2, (2, 1), (1, 2), (1, 2), False, True),   # DCNv2 without bias
    (2, 6, 6, 7, 3, 3, 2, 1, 3, 1, 0, 1, True, False),                # DCNv1, odd kernel, 3 offset groups
    (1, 8, 9, 9, 8, 3, 3, 4, 2, 2, 2, 2, False, False),
]


def _conv_inputs(case, gen, dtype=torch.float32):
    N, C, H, W, out, kh, kw, groups, offset_groups, stride, padding, dilation, bias, mask = case
    pair = lambda v: v if isinstance(v, tuple) else (v, v)  # noqa: E731
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    # Offsets up to several pixels, so samples also fall outside the map (the zero rule).
    inputs = [torch.randn(N, C, H, W, generator=gen),
              3 * torch.randn(N, 2 * offset_groups * kh * kw, Ho, Wo, generator=gen)]
    if mask:
        inputs.append(torch.rand(N, offset_groups * kh * kw, Ho, Wo, generator=gen))
    module = DeformConvCall(torch.randn(out, C // groups, kh, kw, generator=gen),
                            torch.randn(out, generator=gen) if bias else None,
                            stride=stride, padding=padding, dilation=dilation)
    return module.eval().to(dtype), [t.to(dtype) for t in inputs]


@pytest.mark.parametrize("opset", [19, 22])
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"g{c[7]}og{c[8]}{'b' if c[12] else ''}{'m' if c[13] else ''}")
def test_deform_conv2d_exports_to_one_deform_conv_node(tmp_path, case, opset):
    gen = torch.Generator().manual_seed(hash((case, opset)) % 2**31)
    module, inputs = _conv_inputs(case, gen)
    path = dcn_onnx.export(module, inputs, str(tmp_path / "conv.onnx"), opset=opset)
    assert op_types(path) == {"DeformConv"}
    model = onnx.load(path)
    assert model.opset_import[0].version == opset and model.ir_version <= dcn_onnx.MAX_IR_VERSION
    with torch.no_grad():
        expected = module(*inputs)
    for _ in range(2):  # the example inputs, then fresh ones of the same shapes
        (got,) = run_onnx(path, inputs)
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)
        inputs = [torch.randn(t.shape, generator=gen) * (3 if i == 1 else 1) if i < 2 else torch.rand(t.shape, generator=gen)
                  for i, t in enumerate(inputs)]
        with torch.no_grad():
            expected = module(*inputs)


@pytest.mark.parametrize("opset", [19, 22])
def test_deform_conv2d_float16(tmp_path, opset):
    module, inputs = _conv_inputs(CONV_CASES[0], torch.Generator().manual_seed(5), torch.float16)
    path = dcn_onnx.export(module, inputs, str(tmp_path / "conv16.onnx"), opset=opset)
    (got,) = run_onnx(path, inputs)
    assert got.dtype == torch.float16
    with torch.no_grad():
        expected = module(*inputs)
    # Both round a float32 result to float16 (relative step 2^-11); allow a few steps.
    torch.testing.assert_close(got.float(), expected.float(), atol=2e-3 * expected.abs().max().item(), rtol=0)


@pytest.mark.parametrize("case", [CONV_CASES[1], CONV_CASES[2]], ids=["mask_no_bias", "bias_no_mask"])
def test_deform_conv2d_torchscript_exporter(tmp_path, case):
    module, inputs = _conv_inputs(case, torch.Generator().manual_seed(11))
    path = dcn_onnx.export(module, inputs, str(tmp_path / "conv_ts.onnx"), dynamo=False)
    assert "DeformConv" in op_types(path)
    (got,) = run_onnx(path, inputs)
    with torch.no_grad():
        torch.testing.assert_close(got, module(*inputs), atol=1e-4, rtol=0)
    # The symbolic was registered for the call only.
    from torch.onnx._internal.torchscript_exporter import registration
    assert not registration.registry.is_registered_op("dcn_det::deform_conv2d", dcn_onnx.DEFAULT_OPSET)


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
def test_a_dcnv1_border_layer_is_refused_not_exported_with_the_dcnv2_rule(tmp_path, dynamo):
    """ONNX DeformConv has the DCNv2 border rule; a border="dcnv1" layer must not become one."""
    from dcn_det.layers import DeformConvWithOffset

    layer = DeformConvWithOffset(4, 8, 3, padding=1, border="dcnv1").eval()
    path = tmp_path / "dcnv1.onnx"
    with pytest.raises(Exception, match="border='dcnv1'.*no exact ONNX form") as info:
        dcn_onnx.export(layer, (torch.randn(1, 4, 6, 6),), str(path), dynamo=dynamo)
    assert not path.exists(), info.value
    assert list(tmp_path.iterdir()) == []  # no partial file either


def test_exporting_a_layer_needs_no_detectron2(tmp_path):
    """dcn_det.onnx is torch-only, like dcn_det.ops and dcn_det.layers."""
    code = f"""
import sys
sys.modules["detectron2"] = None  # as if it were not installed
import torch
import dcn_det.onnx
from dcn_det.layers import DeformConvWithOffset
dcn_det.onnx.export(DeformConvWithOffset(4, 8, 3, padding=1).eval(), (torch.randn(1, 4, 6, 6),), {str(tmp_path / "layer.onnx")!r})
assert not any(m.startswith("detectron2.") for m in sys.modules), "detectron2 imported"
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "DeformConv" in op_types(str(tmp_path / "layer.onnx"))


def test_importing_registers_nothing_and_the_table_names_the_op():
    table = dcn_onnx.custom_translation_table()
    assert list(table) == [torch.ops.dcn_det.deform_conv2d.default]
    from torch.onnx._internal.torchscript_exporter import registration
    assert not registration.registry.is_registered_op("dcn_det::deform_conv2d", 19)


def test_opset_below_19_is_refused_naming_the_argument(tmp_path):
    module, inputs = _conv_inputs(CONV_CASES[0], torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="opset must be an int >= 19"):
        dcn_onnx.export(module, inputs, str(tmp_path / "x.onnx"), opset=18)
    assert not os.listdir(tmp_path)  # nothing half-written


class PSRoIPoolCall(torch.nn.Module):
    def __init__(self, args, no_trans):
        super().__init__()
        self.args, self.no_trans = args, no_trans

    def forward(self, x, rois, offset):
        return deform_psroi_pool(x, rois, None if self.no_trans else offset, *self.args, no_trans=self.no_trans)


def _pool_inputs(gen, N, D, G, P, H, W, R, part, classes, scale):
    x = torch.randn(N, D * G * G, H, W, generator=gen)
    corners = (torch.rand(R, 4, generator=gen) * 1.8 - 0.4) * torch.tensor([W, H, W, H]) / scale
    rois = torch.cat([torch.randint(0, N, (R, 1), generator=gen).float(), corners], dim=1)
    rois[0, 3:] = rois[0, 1:3]  # zero area
    rois[1, 1:] = torch.tensor([3.0, 3.0, 1.0, 1.0]) / scale  # inverted
    rois[2, 1:] = torch.tensor([-8.0, -8.0, 2.0, 3.0]) / scale  # mostly outside
    return x, rois, torch.randn(R, 2 * classes, part, part, generator=gen)


# (no_trans, offset classes, part_size, dynamo); the TorchScript exporter drops an unused
# input, so its case uses the offset.
POOL_CASES = [(True, 1, 3, True), (False, 1, 2, True), (False, 3, 3, True), (False, 3, 2, False)]


@pytest.mark.parametrize("no_trans,classes,part,dynamo", POOL_CASES)
def test_deform_psroi_pool_exports_to_standard_ops(tmp_path, no_trans, classes, part, dynamo):
    gen = torch.Generator().manual_seed(23 + part + classes)
    D, G, P, S, scale = 3, 3, 3, 2, 0.5
    x, rois, offset = _pool_inputs(gen, 2, D, G, P, 9, 11, 8, part, classes, scale)
    module = PSRoIPoolCall((scale, D, G, P, part, S, 0.2), no_trans)
    path = dcn_onnx.export(module, (x, rois, offset), str(tmp_path / "pool.onnx"), dynamo=dynamo)
    assert all(node.domain in ("", "ai.onnx") for node in onnx.load(path).graph.node)
    assert "Gather" in op_types(path)
    for _ in range(2):  # the example inputs, then fresh ones
        (got,) = run_onnx(path, (x, rois, offset))
        torch.testing.assert_close(got, module(x, rois, offset), atol=1e-5, rtol=0)
        x, rois, offset = _pool_inputs(gen, 2, D, G, P, 9, 11, 8, part, classes, scale)


def test_modulated_layers_export(tmp_path):
    """The nn.Modules: a DCNv2 conv with its own offset/mask branch, R-FCN's modulated
    deformable PS-RoI pooling with class-specific offsets."""
    torch.manual_seed(0)

    class Head(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = ModulatedDeformConvWithOffset(4, 6, 3, padding=1)
            self.pool = DeformPSRoIPool(6, output_dim=3, group_size=3, spatial_scale=0.5, sample_per_part=2,
                                        modulated=True)
            for branch in (self.conv.conv_offset, self.pool.conv_offset):  # leave the zero init
                torch.nn.init.normal_(branch.weight, std=0.3)

        def forward(self, x, rois):
            features = self.conv(x)
            return self.pool(features, features[:, :1].repeat(1, 27, 1, 1), rois)

    head = Head().eval()
    gen = torch.Generator().manual_seed(1)
    x, rois, _ = _pool_inputs(gen, 1, 1, 1, 1, 10, 12, 6, 1, 1, 0.5)
    x = torch.randn(1, 4, 10, 12, generator=gen)
    path = dcn_onnx.export(head, (x, rois), str(tmp_path / "head.onnx"))
    (got,) = run_onnx(path, (x, rois))
    with torch.no_grad():
        torch.testing.assert_close(got, head(x, rois), atol=1e-4, rtol=0)


@pytest.mark.parametrize("dynamo", [True, False])
def test_deform_psroi_pool_with_a_dynamic_roi_count(tmp_path, dynamo):
    """Detectors pool a varying number of RoIs, none at all on some FPN levels."""
    gen = torch.Generator().manual_seed(31)
    D, G, P, S, scale = 3, 3, 3, 2, 0.5
    module = PSRoIPoolCall((scale, D, G, P, 2, S, 0.2), False)
    names = ["x", "rois", "offset"]
    if dynamo:
        count = torch.export.Dim("R")
        dynamic = dict(dynamic_shapes={"x": None, "rois": {0: count}, "offset": {0: count}})
    else:
        dynamic = dict(dynamic_axes={"rois": {0: "R"}, "offset": {0: "R"}})
    example = _pool_inputs(gen, 1, D, G, P, 9, 11, 6, 2, D, scale)
    path = dcn_onnx.export(module, example, str(tmp_path / "pool.onnx"), input_names=names, dynamo=dynamo, **dynamic)
    x = example[0]
    for count in (4, 1, 0):
        _, rois, offset = _pool_inputs(gen, 1, D, G, P, 9, 11, max(count, 3), 2, D, scale)
        rois, offset = rois[:count], offset[:count]
        (got,) = run_onnx(path, (x, rois, offset))
        assert got.shape == (count, D, P, P)
        torch.testing.assert_close(got, module(x, rois, offset), atol=1e-5, rtol=0)


def test_an_exported_program_made_outside_onnx_export(tmp_path):
    """A torch.export program still holds the compiled pooling op (the composite is used only
    under torch.onnx.export); export() replaces it before translating."""
    gen = torch.Generator().manual_seed(41)
    module = PSRoIPoolCall((0.5, 3, 3, 3, 3, 2, 0.2), False)
    inputs = _pool_inputs(gen, 2, 3, 3, 3, 9, 11, 5, 3, 1, 0.5)
    program = torch.export.export(module, inputs)
    assert "dcn_det.deform_psroi_pool" in str(program.graph)
    path = dcn_onnx.export(program, inputs, str(tmp_path / "program.onnx"))
    assert all(node.domain in ("", "ai.onnx") for node in onnx.load(path).graph.node)
    (got,) = run_onnx(path, inputs)
    torch.testing.assert_close(got, module(*inputs), atol=1e-5, rtol=0)


def test_the_onnx_reference_implementation_agrees(tmp_path):
    """The same file in ONNX's own reference evaluator (onnx.reference, written from the
    operator spec): our translation means what the spec means, not only what onnxruntime does
    (pads [top, left, bottom, right], offset channels (dy, dx) per tap, mask per tap)."""
    from onnx.reference import ReferenceEvaluator

    module, inputs = _conv_inputs(CONV_CASES[1], torch.Generator().manual_seed(3))  # asymmetric geometry, 2 groups
    path = dcn_onnx.export(module, inputs, str(tmp_path / "conv.onnx"))
    evaluator = ReferenceEvaluator(path)
    names = [i.name for i in onnx.load(path).graph.input]
    (got,) = evaluator.run(None, {n: t.numpy() for n, t in zip(names, inputs)})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(got), module(*inputs), atol=1e-4, rtol=0)
