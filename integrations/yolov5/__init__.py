"""YOLOv5 (the ``yolov5`` package) trained with an SPDY recipe: ``spdy-train-yolov5``."""
