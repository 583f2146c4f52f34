"""The default search spaces, as data: what every family shares (optimization, regularization,
augmentation, input noise) and each family's architecture knobs, every spec with why it is
searched and over what range. ``tuning.spaces`` checks them against a model's builder and
turns them into KerasTuner hyperparameters."""

from __future__ import annotations


def _f(lo, hi, sampling="linear", step=None, default=None, why="", **kw):
    spec = {"type": "float", "min": lo, "max": hi, "sampling": sampling, "why": why, **kw}
    if step is not None:
        spec["step"] = step
    if default is not None:
        spec["default"] = default
    return spec


def _i(lo, hi, step=1, default=None, why="", **kw):
    spec = {"type": "int", "min": lo, "max": hi, "step": step, "why": why, **kw}
    if default is not None:
        spec["default"] = default
    return spec


def _c(values, default=None, why="", **kw):
    spec = {"type": "choice", "values": list(values), "why": why, **kw}
    if default is not None:
        spec["default"] = default
    return spec


# What every family shares: how it is optimized.
OPTIMIZATION = {
    "optimizer": _c(
        ["sgd", "adam", "adamw"],
        default="sgd",
        why="SGD with momentum is the papers' choice; Adam(W) is less sensitive to the learning rate.",
    ),
    "learning_rate": _f(
        1e-4,
        0.3,
        "log",
        default=0.01,
        why="The most important knob of all; it spans orders of magnitude, so it is searched on a log scale.",
    ),
    "momentum": _f(
        0.0,
        0.95,
        step=0.05,
        default=0.9,
        when={"optimizer": ["sgd"]},
        why="Only SGD has it; 0.9 is the classic value, lower is steadier on small sets.",
    ),
    "schedule": _c(
        ["constant", "cosine"],
        default="constant",
        why="Cosine decay to zero usually ends at a better optimum than a constant rate.",
    ),
    "warmup_epochs": _f(
        0.0,
        2.0,
        step=0.5,
        default=0.0,
        when={"schedule": ["cosine"]},
        why="A short linear warm-up stabilises large rates and Adam's first steps.",
    ),
    "batch_size": _c(
        [32, 64, 128],
        default=64,
        why="Smaller batches add gradient noise (a regularizer) at more steps per epoch.",
    ),
}


# Regularization: each helps where a model has more capacity than its data.
REGULARIZATION = {
    "model.dropout_rate": _f(
        0.0,
        0.6,
        step=0.1,
        default=0.5,
        why=(
            "Dropout before the classifier (and inside, where the family has it): "
            "the standard remedy for co-adaptation."
        ),
    ),
    "l2": _f(
        1e-6,
        1e-2,
        "log",
        default=1e-5,
        why="A coupled L2 penalty on every kernel: smaller weights, smoother functions.",
    ),
    "l1": _f(
        1e-7,
        1e-3,
        "log",
        default=1e-7,
        why="An L1 penalty drives weights to zero: sparse, feature-selecting solutions.",
    ),
    "weight_decay": _f(
        1e-6,
        1e-2,
        "log",
        default=1e-4,
        why="Decoupled weight decay (Loshchilov & Hutter 2019), which is what AdamW needs instead of L2.",
    ),
    "label_smoothing": _f(
        0.0,
        0.2,
        step=0.05,
        default=0.0,
        why="Softened targets keep logits bounded and calibrate the output (Szegedy et al. 2016).",
    ),
    "early_stopping_patience": _c(
        [2, 4, 8],
        default=4,
        why="Stops a trial once validation loss stops improving: both a regularizer and a budget saver.",
    ),
}


# A translation model's changes to the shared optimization and regularization: the Transformer's
# schedule (Vaswani et al. 2017, section 5.3) with its warm-up, and its label smoothing (5.4).
TRANSLATION = {
    "schedule": _c(
        ["inverse_sqrt", "constant"],
        default="inverse_sqrt",
        why="The Transformer's linear warm-up then 1/sqrt(step) decay, against a constant rate.",
    ),
    "warmup_epochs": _f(
        0.25,
        2.0,
        step=0.25,
        default=1.0,
        when={"schedule": ["inverse_sqrt"]},
        why="Steps of warm-up before the decay (the paper: 4,000); too few and Adam's first steps diverge.",
    ),
    "label_smoothing": _f(
        0.0,
        0.2,
        step=0.05,
        default=0.1,
        why="The paper's 0.1 hurts perplexity but raises BLEU: the model learns to be less sure.",
    ),
}


AUGMENTATION = {
    "crop_padding": _f(
        0.0,
        0.25,
        step=0.0625,
        default=0.125,
        why="Random-crop strength: how far a crop may shift (0 turns it off); the papers use about 1/8.",
    ),
}


INPUT_NOISE = {
    "input_noise": _f(
        0.0,
        0.3,
        step=0.05,
        default=0.0,
        why="Gaussian noise on the inputs: training with noise is Tikhonov regularization (Bishop 1995).",
    ),
}


# Architecture knobs per family: only keywords the family's builder takes.
ARCHITECTURE = {
    "mlp": {
        "model.hidden_units": _c(
            [[256], [512, 512], [1024, 1024], [1024, 1024, 1024]],
            default=[1024, 1024],
            why="Depth and width of the hidden layers.",
        ),
        "model.batch_norm": {"type": "bool", "default": False, "why": "Batch norm after each hidden layer."},
    },
    "lenet": {},
    "alexnet": {
        "model.fc_units": _c([1024, 2048, 4096], default=4096, why="Width of the two fully connected layers.")
    },
    "zfnet": {
        "model.fc_units": _c([1024, 2048, 4096], default=4096, why="Width of the two fully connected layers.")
    },
    "vgg": {
        "model.width_multiplier": _c(
            [0.25, 0.5, 1.0], default=1.0, why="Channels of every conv stage, scaled."
        ),
        "model.fc_units": _c([512, 1024, 4096], default=4096, why="Width of the fully connected layers."),
    },
    "nin": {},
    "googlenet": {},
    "resnet": {
        "model.width_multiplier": _c(
            [0.25, 0.5, 1.0], default=1.0, why="Channels of every stage, scaled (wide ResNets go above 1)."
        )
    },
    "resnet_v2": {
        "model.width_multiplier": _c([0.25, 0.5, 1.0], default=1.0, why="Channels of every stage, scaled.")
    },
    "densenet": {"model.growth_rate": _c([12, 24, 32], default=32, why="Channels each dense layer adds.")},
    "inception_v3": {
        "model.width_multiplier": _c(
            [0.5, 0.75, 1.0], default=1.0, why="Maps of every convolution, scaled (the paper's 1.0)."
        ),
    },
    "regnet": {
        "model.width_multiplier": _c(
            [0.5, 0.75, 1.0], default=1.0, why="Every stage's width, scaled (group widths with it)."
        ),
    },
    "nasnet": {
        "model.cell_repeats": _c(
            [2, 4, 6], default=4, why="Depth: normal cells between reductions (Mobile's 4, Large's 6)."
        ),
        "model.penultimate_filters": _c(
            [480, 1056, 2016],
            default=1056,
            why="Width: the last cells' maps, 24x the first cells' (multiples of 96; Mobile's 1056).",
        ),
    },
    "inception_resnet_v2": {
        "model.width_multiplier": _c(
            [0.5, 0.75, 1.0], default=1.0, why="Maps of every convolution, scaled (the paper's 1.0)."
        ),
    },
    "xception": {
        "model.middle_blocks": _c(
            [4, 6, 8], default=8, why="Depth: the middle flow's repeated blocks (the paper's 8)."
        ),
        "model.width_multiplier": _c(
            [0.5, 0.75, 1.0], default=1.0, why="Maps of every separable convolution, scaled."
        ),
    },
    "mobilenet": {
        "model.width_multiplier": _c(
            [0.25, 0.5, 0.75, 1.0],
            default=1.0,
            why="Maps of every layer, scaled (the paper's Table 6 widths).",
        )
    },
    "mobilenet_v2": {
        "model.width_multiplier": _c(
            [0.35, 0.5, 0.75, 1.0, 1.4],
            default=1.0,
            why="Maps of every layer, scaled (the paper's Table 6 widths).",
        )
    },
    "mobilenet_v3": {
        "model.width_multiplier": _c(
            [0.75, 1.0], default=1.0, why="Maps of every layer, scaled (the widths with published weights)."
        ),
        "model.minimalistic": {
            "type": "bool",
            "default": False,
            "why": "3x3 kernels, ReLU, no squeeze-excite: the paper's model for mobile CPUs.",
        },
    },
    "convnext": {
        "model.drop_path_rate": _f(
            0.0,
            0.5,
            step=0.1,
            default=0.1,
            why="Stochastic depth at the last block (the paper: 0.1 for Tiny to 0.5 for Base and Large).",
        ),
        "model.layer_scale_init_value": _c(
            [1e-6, 1e-4, 0.1], default=1e-6, why="Layer scale's starting value (the paper: 1e-6)."
        ),
    },
    "vit": {
        "model.drop_path_rate": _f(
            0.0, 0.3, step=0.1, default=0.1, why="Stochastic depth at the last block (DeiT: 0.1)."
        ),
    },
    "efficientnet": {
        "model.drop_path_rate": _f(
            0.0,
            0.3,
            step=0.1,
            default=0.2,
            why="Stochastic depth: the last block's chance of skipping its branch (the paper: 0.2).",
        )
    },
    "efficientnet_v2": {
        "model.drop_path_rate": _f(
            0.0,
            0.3,
            step=0.1,
            default=0.2,
            why="Stochastic depth: the last block's chance of skipping its branch (the release: 0.2).",
        )
    },
    "textcnn": {
        "model.num_filters": _c(
            [50, 100, 200], default=100, why="Feature maps per filter width (Kim 2014: 100)."
        ),
        "model.embedding_dim": _c([64, 128, 300], default=128, why="Width of the word vectors."),
    },
    "rnn": {
        "model.units": _c([32, 64, 128], default=64, why="Width of each recurrent layer."),
        "model.num_layers": _i(1, 2, default=1, why="Stacked recurrent layers."),
        "model.bidirectional": {"type": "bool", "default": True, "why": "Read the text in both directions."},
    },
    "bert": {
        "model.num_layers": _i(1, 4, default=2, why="Encoder depth."),
        "model.hidden_dim": _c(
            [64, 128, 256], default=128, why="Width; each choice is divisible by every head count."
        ),
        "model.num_heads": _c([2, 4], default=2, why="Attention heads."),
        "model.intermediate_dim": _c(
            [256, 512, 1024], default=512, why="Feed-forward width (BERT: 4x hidden)."
        ),
    },
    "gpt": {},
    "roberta": {
        "model.num_layers": _i(1, 4, default=2, why="Encoder depth."),
        "model.hidden_dim": _c(
            [64, 128, 256], default=128, why="Width; each choice is divisible by every head count."
        ),
        "model.num_heads": _c([2, 4], default=2, why="Attention heads."),
    },
    "albert": {
        "model.num_layers": _i(2, 12, step=2, default=4, why="Calls of the shared layer (the paper: 12)."),
        "model.hidden_dim": _c(
            [64, 128, 256], default=128, why="Width; each choice is divisible by every head count."
        ),
        "model.embedding_dim": _c(
            [32, 64, 128], default=64, why="The factorised embedding's width E (the paper: 128)."
        ),
        "model.num_heads": _c([2, 4], default=2, why="Attention heads."),
    },
    "electra": {
        "model.num_layers": _i(1, 4, default=2, why="Encoder depth."),
        "model.hidden_dim": _c(
            [64, 128, 256], default=128, why="Width; each choice is divisible by every head count."
        ),
        "model.embedding_dim": _c(
            [32, 64, 128], default=64, why="The embedding's width, projected to the hidden size."
        ),
        "model.num_heads": _c([2, 4], default=2, why="Attention heads."),
    },
    "distilbert": {
        "model.num_layers": _i(1, 6, default=2, why="Encoder depth (the paper: 6, half of BERT-base's)."),
        "model.hidden_dim": _c(
            [64, 128, 256], default=128, why="Width; each choice is divisible by every head count."
        ),
        "model.num_heads": _c([2, 4], default=2, why="Attention heads."),
    },
    "transformer": {
        "model.num_layers": _i(1, 6, default=2, why="Encoder and decoder depth (the paper: 6)."),
        "model.hidden_dim": _c(
            [128, 256, 512], default=256, why="d_model; each choice is divisible by every head count."
        ),
        "model.num_heads": _c([2, 4, 8], default=4, why="Attention heads (the paper: 8)."),
        "model.intermediate_dim": _c(
            [512, 1024, 2048], default=1024, why="Feed-forward width (the paper: 4x d_model)."
        ),
    },
    "seq2seq": {
        "model.units": _c([128, 256, 512], default=256, why="Width of each LSTM layer (the paper: 1,000)."),
        "model.num_layers": _i(1, 4, default=2, why="Stacked LSTM layers each side (the paper: 4)."),
        "model.embedding_dim": _c([128, 256, 512], default=256, why="Width of the word vectors."),
    },
}
