"""modelzoo: paper-faithful Keras 3 models behind one registry.

    >>> import modelzoo
    >>> modelzoo.list_models("resnet*")
    >>> model = modelzoo.create_model("resnet50", num_classes=10)
    >>> from modelzoo import alexnet
"""

from modelzoo.analysis import count_flops, count_params
from modelzoo.models.alexnet import alexnet
from modelzoo.models.bert import bert, bert_base, bert_large, bert_medium, bert_mini, bert_small, bert_tiny
from modelzoo.models.densenet import densenet, densenet121, densenet169, densenet201
from modelzoo.models.googlenet import googlenet
from modelzoo.models.gpt import gpt, gpt2_small, gpt_mini, gpt_small, gpt_tiny
from modelzoo.models.lenet import lenet5
from modelzoo.models.mlp import mlp
from modelzoo.models.nin import nin
from modelzoo.models.resnet import resnet, resnet18, resnet34, resnet50, resnet101, resnet152
from modelzoo.models.rnn import gru_classifier, lstm_classifier
from modelzoo.models.textcnn import textcnn
from modelzoo.models.vgg import vgg, vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn
from modelzoo.models.zfnet import zfnet
from modelzoo.registry import (
    UnknownModelError,
    create_model,
    get_entry,
    list_families,
    list_models,
    model_info,
    register_model,
)
from modelzoo.surgery import reset_classifier

__version__ = "0.1.0"

__all__ = [
    "UnknownModelError", "alexnet", "bert", "bert_base", "bert_large", "bert_medium", "bert_mini", "bert_small",
    "bert_tiny", "count_flops", "gru_classifier", "lstm_classifier", "textcnn", "count_params", "create_model", "densenet",
    "densenet121", "densenet169", "densenet201", "get_entry", "googlenet", "gpt", "gpt2_small", "gpt_mini", "gpt_small", "gpt_tiny", "lenet5", "list_families",
    "list_models", "mlp", "model_info", "nin", "register_model", "reset_classifier", "resnet",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "vgg", "vgg11", "vgg11_bn", "vgg13",
    "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn", "zfnet",
]  # fmt: skip
