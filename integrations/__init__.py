"""Training integrations that apply spdy-recipes' SparseML recipes: torchvision, HuggingFace, YOLOv5."""
