"""kiln.sdk: the vision tasks of a model folder made by `kiln pack` (after MMDeploy's SDK).

    from kiln.sdk import Restorer, Classifier
    restored = Restorer("srcnn_folder")(cv2.imread("face.png"))      # H x W x 3 BGR uint8
    top5 = Classifier("mobilenet_folder")(cv2.imread("cat.jpg"))     # [(label_id, score), ...]
"""
from kiln._kiln import sdk as _sdk

Restorer = _sdk.Restorer
Classifier = _sdk.Classifier

__all__ = ["Restorer", "Classifier"]
