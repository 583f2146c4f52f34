"""One module per family; importing this package registers every builder."""

from modelzoo.models import (  # noqa: F401
    alexnet,
    bert,
    convnext,
    densenet,
    efficientnet,
    googlenet,
    gpt,
    lenet,
    mlp,
    mobilenet,
    mobilenet_v2,
    mobilenet_v3,
    nin,
    resnet,
    resnet_v2,
    rnn,
    textcnn,
    vgg,
    vit,
    zfnet,
)
