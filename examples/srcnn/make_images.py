#!/usr/bin/python3
"""Makes the demo's bundled images from python3-skimage's astronaut (held out from SRCNN training).
Needs python3-skimage; the images are committed in data/.

    /usr/bin/python3 examples/srcnn/make_images.py [OUT_DIR]

face.png: a 256x256 crop around the face at the photo's own resolution: the tutorial's input (its SRCNN export
fixes the input at 1x3x256x256). face_lr.png: face.png's top-left 255x255 shrunk 3x with cv2.INTER_AREA
(85x85): upscaled x3 it can be scored (PSNR) against face.png itself.
"""
import os
import sys
import warnings

import cv2
import numpy as np


def main(out_dir):
    import skimage.data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rgb = skimage.data.astronaut()
    face = np.ascontiguousarray(rgb[20:276, 130:386, ::-1])  # BGR, as cv2.imread gives
    hr = face[:255, :255]
    lr = cv2.resize(hr, (85, 85), interpolation=cv2.INTER_AREA)
    os.makedirs(out_dir, exist_ok=True)
    cv2.imwrite(os.path.join(out_dir, "face.png"), face)
    cv2.imwrite(os.path.join(out_dir, "face_lr.png"), lr)
    print("wrote", out_dir, face.shape, lr.shape)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "data"))
