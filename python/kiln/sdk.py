"""kiln.sdk: the vision tasks of a model folder made by `kiln pack` (after MMDeploy's SDK).

    from kiln.sdk import Restorer, Classifier
    restored = Restorer("srcnn_folder")(cv2.imread("face.png"))      # H x W x 3 BGR uint8
    top5 = Classifier("mobilenet_folder")(cv2.imread("cat.jpg"))     # [(label_id, score), ...]
    boxes = Detector("yolo_folder")(image)     # [(left, top, right, bottom, label_id, score), ...]
    mask = Segmentor("lraspp_folder")(image)   # H x W int32 class ids
"""
from kiln._kiln import sdk as _sdk

Restorer = _sdk.Restorer
Classifier = _sdk.Classifier
Detector = _sdk.Detector
Segmentor = _sdk.Segmentor

__all__ = ["Restorer", "Classifier", "Detector", "Segmentor"]
