#!/usr/bin/python3
"""PSNR (dB) of images against a reference, over all pixels and channels (8-bit).

    /usr/bin/python3 examples/srcnn/psnr.py REFERENCE.png NAME=IMAGE.png ...

The reference is cropped to each image's size (face.png is 256x256; its x3 reconstructions are 255x255).
"""
import sys

import cv2
import numpy as np


def main(argv):
    ref = cv2.imread(argv[1])
    if ref is None:
        sys.exit("psnr: cannot read " + argv[1])
    for spec in argv[2:]:
        name, path = spec.split("=", 1)
        img = cv2.imread(path)
        if img is None:
            sys.exit("psnr: cannot read " + path)
        h, w = img.shape[:2]
        mse = np.mean((ref[:h, :w].astype(np.float64) - img.astype(np.float64)) ** 2)
        print(f"  {name:28s} PSNR {10 * np.log10(255.0 ** 2 / mse):6.2f} dB   ({path})")


if __name__ == "__main__":
    main(sys.argv)
