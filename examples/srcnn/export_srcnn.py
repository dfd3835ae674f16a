#!/usr/bin/python3
"""Exports kiln's trained SRCNN (examples/srcnn/srcnn.pth) to ONNX, as the tutorial does.

    /usr/bin/python3 examples/srcnn/export_srcnn.py OUT_DIR [--weights srcnn.pth]

Writes, in OUT_DIR:
  srcnn.onnx          the tutorial's export: opset 11, nn.Upsample bicubic x3, input 1x3x256x256, names input/output
  srcnn3.onnx         the tutorial's NewInterpolate: Resize with `scales` from a second input `factor` [1, 1, h, w]
  srcnn_dynamic.onnx  srcnn.onnx with dynamic batch, height and width
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from srcnn_model import StrangeSuperResolutionNet, SuperResolutionNet, load_checkpoint  # noqa: E402


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir", nargs="?", default=".")
    ap.add_argument("--weights", default=os.path.join(here, "srcnn.pth"))
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    out = lambda name: os.path.join(args.out_dir, name)  # noqa: E731

    model = load_checkpoint(SuperResolutionNet(upscale_factor=3), args.weights)
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        torch.onnx.export(model, x, out("srcnn.onnx"), opset_version=11, input_names=['input'],
                          output_names=['output'])
        torch.onnx.export(model, x, out("srcnn_dynamic.onnx"), opset_version=11, input_names=['input'],
                          output_names=['output'],
                          dynamic_axes={'input': {0: 'batch', 2: 'height', 3: 'width'},
                                        'output': {0: 'batch', 2: 'height_x3', 3: 'width_x3'}})
        model3 = load_checkpoint(StrangeSuperResolutionNet(), args.weights)
        factor = torch.tensor([1, 1, 3, 3], dtype=torch.float)
        torch.onnx.export(model3, (x, factor), out("srcnn3.onnx"), opset_version=11,
                          input_names=['input', 'factor'], output_names=['output'])
    print("exported", out("srcnn.onnx"), out("srcnn3.onnx"), out("srcnn_dynamic.onnx"))


if __name__ == "__main__":
    main()
