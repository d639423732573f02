"""Image classification with torchvision models, pruned by a spdy-recipes recipe."""
