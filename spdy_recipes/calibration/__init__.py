"""Step 2 of the pipeline, calibration data: the samples that pruned models are scored on, read from
images, tensors, text or a dataset.

``load_calibration`` turns a source into two disjoint splits shaped like ``bundle.inputs``: one to calibrate
on and one held out. Sources:

- an image folder (searched recursively for .jpg .jpeg .png .bmp .webp); images in sub-folders named by an
  integer class index (``207/dog.jpg``) get that index as their label;
- a ``.pt`` file (a tensor, or a dict of the model's input names, or ``inputs``/``input``, and optional
  ``labels``) or a ``.npy`` file (one tensor), with samples along the first dimension;
- a ``.txt`` file, one text a non-empty line, for hf models (tokenised with the tokenizer saved beside the model);
- a folder written by ``datasets`` (``save_to_disk``): an ``image``/``img`` or ``text``/``sentence`` column and
  an optional ``label``/``labels`` column; a DatasetDict gives its ``train`` split, or else its first;
- ``builtin:images`` (the colour photos that scikit-image and scikit-learn ship), ``builtin:objects`` (those
  photos and the 40 CIFAR-10 and CIFAR-100 object images of the foolbox wheel, 32x32 and upscaled: more
  classes of everyday objects, measured to transfer better to ImageNet data), ``builtin:imagenet`` (the 20
  labelled ImageNet validation images of the foolbox wheel, class index in the file name; foolbox's
  ``data`` folder is only read, never imported) and ``builtin:text`` (English paragraphs from Python's own
  documentation, ``pydoc_data.topics``).

Images are cut to the model's H x W (the largest centred box of that aspect, resized) and scaled to [0, 1];
torchvision and python models are then normalised with ImageNet's mean/std, or with the ``mean``/``std`` of
the module's ``pretrained_cfg`` (or ``default_cfg``) dict where it has one (timm's convention); yolov5
models are not normalised. When a split
has fewer images than samples, each image gives its centre crop and then seeded random resized crops (area
25-100 % of the image, aspect 3/4-4/3), and the images are divided between the splits first, so that no
image feeds both. Tensors and texts are never repeated: a source with too few of them is an error.

``holdout`` may be 0: the held-out split is then empty (no samples, the same keys and trailing shapes).
A seed fixes the shuffle and the crops, so the same seed gives byte-identical tensors.
"""

from .builtin import BUILTIN_SOURCES, builtin_paragraphs
from .images import IMAGENET_MEAN, IMAGENET_STD
from .load import load_calibration
from .sets import CalibrationSet

__all__ = ["BUILTIN_SOURCES", "IMAGENET_MEAN", "IMAGENET_STD", "CalibrationSet", "builtin_paragraphs",
           "load_calibration"]
