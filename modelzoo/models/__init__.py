"""One module per family; importing this package registers every builder."""

from modelzoo.models import alexnet, densenet, googlenet, lenet, mlp, nin, resnet, vgg, zfnet  # noqa: F401
