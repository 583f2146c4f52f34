"""Parameter and compute counts at the papers' defaults, pinned to named references.

Trainable and total are pinned separately: Keras counts batch-norm moving statistics as
non-trainable parameters, torchvision does not count them at all.
"""

import pytest

import modelzoo

# name: (trainable, total, where the trainable number comes from)
PINNED = {
    "vgg11": (132_863_336, 132_863_336, "torchvision vgg11"),
    "vgg13": (133_047_848, 133_047_848, "torchvision vgg13"),
    "vgg16": (138_357_544, 138_357_544, "torchvision vgg16 == keras.applications VGG16"),
    "vgg19": (143_667_240, 143_667_240, "torchvision vgg19 == keras.applications VGG19"),
    "vgg11_bn": (132_868_840, 132_874_344, "torchvision vgg11_bn"),
    "vgg13_bn": (133_053_736, 133_059_624, "torchvision vgg13_bn"),
    "vgg16_bn": (138_365_992, 138_374_440, "torchvision vgg16_bn"),
    "vgg19_bn": (143_678_248, 143_689_256, "torchvision vgg19_bn"),
    "resnet18": (11_689_512, 11_699_112, "torchvision resnet18"),
    "resnet34": (21_797_672, 21_814_696, "torchvision resnet34"),
    "resnet50": (25_557_032, 25_610_152, "torchvision/timm resnet50"),
    "resnet101": (44_549_160, 44_654_504, "torchvision resnet101"),
    "resnet152": (60_192_808, 60_344_232, "torchvision resnet152"),
    "resnet50_v2": (25_568_360, 25_613_800, "keras.applications ResNet50V2"),
    "resnet101_v2": (44_577_896, 44_675_560, "keras.applications ResNet101V2"),
    "resnet152_v2": (60_236_904, 60_380_648, "keras.applications ResNet152V2"),
    "resnext50_32x4d": (25_028_904, 25_097_128, "torchvision resnext50_32x4d"),
    "resnext101_32x8d": (88_791_336, 88_994_216, "torchvision resnext101_32x8d"),
    "wide_resnet50_2": (68_883_240, 68_951_464, "torchvision wide_resnet50_2"),
    "seresnet50": (28_088_024, 28_141_144, "timm seresnet50"),
    "seresnext50_32x4d": (27_559_896, 27_628_120, "timm seresnext50_32x4d"),
    "densenet": (7_978_856, 8_062_504, "torchvision densenet121 (the generic builder's defaults)"),
    "densenet121": (7_978_856, 8_062_504, "torchvision densenet121; total == keras.applications DenseNet121"),
    "densenet169": (
        14_149_480,
        14_307_880,
        "torchvision densenet169; total == keras.applications DenseNet169",
    ),
    "densenet201": (
        20_013_928,
        20_242_984,
        "torchvision densenet201; total == keras.applications DenseNet201",
    ),
    "mobilenet_025": (470_072, 475_544, "keras.applications MobileNet(alpha=0.25)"),
    "mobilenet_050": (1_331_592, 1_342_536, "keras.applications MobileNet(alpha=0.5)"),
    "mobilenet_075": (2_585_560, 2_601_976, "keras.applications MobileNet(alpha=0.75)"),
    "mobilenet": (4_231_976, 4_253_864, "keras.applications MobileNet"),
    "mobilenet_v2_035": (1_677_128, 1_691_208, "keras.applications MobileNetV2(alpha=0.35)"),
    "mobilenet_v2_050": (1_968_680, 1_987_224, "keras.applications MobileNetV2(alpha=0.5)"),
    "mobilenet_v2_075": (2_636_424, 2_663_064, "keras.applications MobileNetV2(alpha=0.75)"),
    "mobilenet_v2": (3_504_872, 3_538_984, "keras.applications MobileNetV2"),
    "mobilenet_v2_130": (5_386_792, 5_431_048, "keras.applications MobileNetV2(alpha=1.3)"),
    "mobilenet_v2_140": (6_108_776, 6_156_712, "keras.applications MobileNetV2(alpha=1.4)"),
    "mobilenet_v3_large": (5_483_032, 5_507_432, "keras.applications MobileNetV3Large"),
    "mobilenet_v3_large_075": (3_993_528, 4_012_616, "keras.applications MobileNetV3Large(alpha=0.75)"),
    "mobilenet_v3_large_minimal": (
        3_924_288,
        3_948_688,
        "keras.applications MobileNetV3Large(minimalistic=True)",
    ),
    "mobilenet_v3_small": (2_542_856, 2_554_968, "keras.applications MobileNetV3Small"),
    "mobilenet_v3_small_075": (2_041_872, 2_051_552, "keras.applications MobileNetV3Small(alpha=0.75)"),
    "mobilenet_v3_small_minimal": (
        2_044_736,
        2_056_848,
        "keras.applications MobileNetV3Small(minimalistic=True)",
    ),
    "convnext_tiny": (28_589_128, 28_589_128, "keras.applications ConvNeXtTiny(include_preprocessing=False)"),
    "convnext_small": (
        50_223_688,
        50_223_688,
        "keras.applications ConvNeXtSmall(include_preprocessing=False)",
    ),
    "convnext_base": (88_591_464, 88_591_464, "keras.applications ConvNeXtBase(include_preprocessing=False)"),
    "convnext_large": (
        197_767_336,
        197_767_336,
        "keras.applications ConvNeXtLarge(include_preprocessing=False)",
    ),
    "convnext_xlarge": (
        350_196_968,
        350_196_968,
        "keras.applications ConvNeXtXLarge(include_preprocessing=False)",
    ),
    # EfficientNet: keras.applications' totals are 7 higher, its input Normalization's mean,
    # variance and count (inputs arrive normalised here).
    "xception": (22_855_952, 22_910_480, "keras.applications Xception"),
    # keras.applications' batch norms without scale, as here (torchvision's have one: 27,161,264 with its aux head)
    "inception_v3": (23_817_352, 23_851_784, "keras.applications InceptionV3"),
    "inception_resnet_v2": (55_813_192, 55_873_736, "keras.applications InceptionResNetV2"),
    "nasnet_mobile": (5_289_978, 5_326_716, "keras.applications NASNetMobile"),
    "nasnet_large": (88_753_150, 88_949_818, "keras.applications NASNetLarge"),
    **{
        f"efficientnet_v2_{size}": (trainable, total, f"keras.applications EfficientNetV2{size.upper()}")
        for size, trainable, total in (
            ("b0", 7_139_704, 7_200_312),
            ("b1", 8_141_052, 8_212_124),
            ("b2", 10_096_086, 10_178_374),
            ("b3", 14_358_406, 14_467_622),
            ("s", 21_458_488, 21_612_360),
            ("m", 54_139_356, 54_431_388),
            ("l", 118_515_272, 119_027_848),
        )
    },
    # RegNet: generated from the paper's rule; equal to tf.keras 2's RegNetX002... (tf_keras 2.21,
    # include_preprocessing=False; Keras 3 has no RegNet)
    **{
        f"regnet{kind}_{size}": (trainable, total, f"tf_keras RegNet{kind.upper()}{size}")
        for kind, size, trainable, total in (
            ("x", "002", 2_684_792, 2_705_640),
            ("x", "004", 5_157_512, 5_194_184),
            ("x", "006", 6_196_040, 6_229_320),
            ("x", "008", 7_259_656, 7_296_968),
            ("x", "016", 9_190_136, 9_233_640),
            ("x", "032", 15_296_552, 15_359_112),
            ("x", "040", 22_118_248, 22_194_312),
            ("x", "064", 26_209_256, 26_283_464),
            ("x", "080", 39_572_648, 39_663_112),
            ("x", "120", 46_106_056, 46_202_440),
            ("x", "160", 54_278_536, 54_389_704),
            ("x", "320", 107_811_560, 107_973_576),
            ("y", "002", 3_162_996, 3_183_844),
            ("y", "004", 4_344_144, 4_371_296),
            ("y", "006", 6_055_160, 6_084_920),
            ("y", "008", 6_263_168, 6_293_056),
            ("y", "016", 11_202_430, 11_255_102),
            ("y", "032", 19_436_338, 19_502_498),
            ("y", "040", 20_646_656, 20_708_928),
            ("y", "064", 30_583_252, 30_665_684),
            ("y", "080", 39_180_068, 39_265_812),
            ("y", "120", 51_822_544, 51_918_928),
            ("y", "160", 83_590_140, 83_712_956),
            ("y", "320", 145_046_770, 145_205_058),
        )
    },
    # ResNet-50 + a 3x3 offset convolution (18 maps, bias) per deformable 3x3 (13 in conv3-5_x)
    "resnet50_dcn": (26_137_874, 26_190_994, "torchvision resnet50 + offset convolutions (arithmetic)"),
    "efficientnet": (
        5_288_548,
        5_330_564,
        "keras.applications EfficientNetB0 (the generic builder's defaults)",
    ),
    "efficientnet_b0": (5_288_548, 5_330_564, "keras.applications EfficientNetB0"),
    "efficientnet_b1": (7_794_184, 7_856_232, "keras.applications EfficientNetB1"),
    "efficientnet_b2": (9_109_994, 9_177_562, "keras.applications EfficientNetB2"),
    "efficientnet_b3": (12_233_232, 12_320_528, "keras.applications EfficientNetB3"),
    "efficientnet_b4": (19_341_616, 19_466_816, "keras.applications EfficientNetB4"),
    "efficientnet_b5": (30_389_784, 30_562_520, "keras.applications EfficientNetB5"),
    "efficientnet_b6": (43_040_704, 43_265_136, "keras.applications EfficientNetB6"),
    "efficientnet_b7": (66_347_960, 66_658_680, "keras.applications EfficientNetB7"),
    # ViT and DeiT: timm's counts (DeiT is ViT's architecture; its distilled form adds a token and a head)
    "vit_tiny_patch16_224": (5_717_416, 5_717_416, "timm vit_tiny_patch16_224"),
    "vit_small_patch16_224": (22_050_664, 22_050_664, "timm vit_small_patch16_224"),
    "vit_base_patch16_224": (86_567_656, 86_567_656, "timm vit_base_patch16_224"),
    "vit_large_patch16_224": (304_326_632, 304_326_632, "timm vit_large_patch16_224"),
    "vit_base_patch32_224": (88_224_232, 88_224_232, "timm vit_base_patch32_224"),
    "deit_tiny_patch16_224": (5_717_416, 5_717_416, "timm deit_tiny_patch16_224"),
    "deit_small_patch16_224": (22_050_664, 22_050_664, "timm deit_small_patch16_224"),
    "deit_base_patch16_224": (86_567_656, 86_567_656, "timm deit_base_patch16_224"),
    # AlexNet 2012, one tower: conv 34,944 + 614,656 + 885,120 + 1,327,488 + 884,992;
    # fc 37,752,832 + 16,781,312 + 4,097,000 (torchvision's 61,100,840 is the 2014 "one weird trick" net).
    "alexnet": (62_378_344, 62_378_344, "Krizhevsky et al. 2012, section 3.5 layout"),
    # ZFNet, Figure 3: 7x7x3x96 conv1, 5x5x96x256 conv2, then AlexNet's conv3-5 and fc layers on 6x6x256.
    "zfnet": (62_357_608, 62_357_608, "Zeiler & Fergus 2013, Figure 3"),
    # NiN, the authors' ImageNet model: see test_nin_count_by_hand.
    "nin": (7_595_176, 7_595_176, "Lin et al. 2013, Caffe model zoo layout"),
    # LeNet-5, paper section II.B: C1 156, S2 12, C3 1,516, S4 32, C5 48,120, F6 10,164, output 850.
    "lenet5": (60_850, 60_850, "LeCun et al. 1998"),
    # MLP 784-512-256-10: 401,920 + 131,328 + 2,570.
    "mlp": (535_818, 535_818, "arithmetic"),
    "googlenet": (6_998_552, 6_998_552, "Szegedy et al. 2014 Table 1 (see test_googlenet_matches_table_1)"),
    # BERT: keras_hub BertBackbone of the same size (vocabulary 30,522, 512 positions, with the pooler;
    # see test_text_models.py) + the 2-class head (hidden x 2 + 2).
    "bert": (109_482_240 + 1_538, 109_483_778, "keras_hub BertBackbone (bert_base) + head"),
    "bert_base": (109_482_240 + 1_538, 109_483_778, "keras_hub BertBackbone + head"),
    "bert_tiny": (4_385_920 + 258, 4_386_178, "keras_hub BertBackbone + head"),
    "bert_mini": (11_170_560 + 514, 11_171_074, "keras_hub BertBackbone + head"),
    "bert_small": (28_763_648 + 1_026, 28_764_674, "keras_hub BertBackbone + head"),
    "bert_medium": (41_373_184 + 1_026, 41_374_210, "keras_hub BertBackbone + head"),
    "bert_large": (335_141_888 + 2_050, 335_143_938, "keras_hub BertBackbone + head"),
    # GPT: keras_hub GPT2Backbone of the same size (vocabulary 50,257, 1,024 positions); the LM head
    # is the tied token embedding, so it adds nothing. gpt2_small is GPT-2's 124M model.
    "gpt": (124_439_808, 124_439_808, "keras_hub GPT2Backbone (gpt2_small)"),
    "gpt2_small": (124_439_808, 124_439_808, "keras_hub GPT2Backbone"),
    "gpt_tiny": (6_960_768, 6_960_768, "keras_hub GPT2Backbone of the same size"),
    "gpt_mini": (16_287_488, 16_287_488, "keras_hub GPT2Backbone of the same size"),
    "gpt_small": (45_171_200, 45_171_200, "keras_hub GPT2Backbone of the same size"),
    # TextCNN (Kim 2014): 20,000 x 300 embedding + (3+4+5) x 300 x 100 + 300 biases + 300 x 2 + 2.
    "textcnn": (6_360_902, 6_360_902, "Kim 2014 arithmetic"),
    # 20,000 x 128 embedding + 4 (LSTM) or 3 (GRU, reset_after) gate blocks of 128 units + 128 x 2 + 2.
    "lstm_classifier": (2_691_842, 2_691_842, "arithmetic: 4 x ((128 + 128) x 128 + 128)"),
    "gru_classifier": (2_659_330, 2_659_330, "arithmetic: 3 x ((128 + 128) x 128 + 2 x 128)"),
    # RoBERTa and DistilBERT: keras_hub's backbones (see test_text_models.py) + the classifier head's
    # hidden x hidden dense layer and hidden x 2 logits. roberta_base's backbone, 124,052,736, is
    # Hugging Face's roberta-base (124,645,632) less its pooler, type embedding and 2 extra positions.
    "roberta": (
        124_052_736 + 590_592 + 1_538,
        124_644_866,
        "keras_hub RobertaBackbone (roberta_base) + head",
    ),
    "roberta_base": (124_052_736 + 590_592 + 1_538, 124_644_866, "keras_hub RobertaBackbone + head"),
    "roberta_large": (354_307_072 + 1_049_600 + 2_050, 355_358_722, "keras_hub RobertaBackbone + head"),
    "distilbert": (66_362_880 + 590_592 + 1_538, 66_955_010, "keras_hub DistilBertBackbone + head"),
    "distilbert_base": (66_362_880 + 590_592 + 1_538, 66_955_010, "keras_hub DistilBertBackbone + head"),
    # ALBERT (E = 128, one shared layer) and ELECTRA discriminators: keras_hub's backbones + logits
    # (hidden x 2 + 2; their pooler is in the backbone, as BERT's). The papers round them to 12M, 18M
    # (Lan et al. Table 1), 14M and 110M (Clark et al. Table 6).
    "albert": (11_683_584 + 1_538, 11_685_122, "keras_hub AlbertBackbone (albert_base) + head"),
    "albert_base": (11_683_584 + 1_538, 11_685_122, "keras_hub AlbertBackbone + head"),
    "albert_large": (17_683_968 + 2_050, 17_686_018, "keras_hub AlbertBackbone + head"),
    "electra": (109_482_240 + 1_538, 109_483_778, "keras_hub ElectraBackbone (electra_base) + head"),
    "electra_small": (13_548_800 + 514, 13_549_314, "keras_hub ElectraBackbone + head"),
    "electra_base": (109_482_240 + 1_538, 109_483_778, "keras_hub ElectraBackbone + head"),
    # Vaswani et al. 2017 at a shared 37,000-token vocabulary (Table 3: 65M / 213M; see
    # test_translation_models.py for why no vocabulary gives both)
    "transformer": (63_082_496, 63_082_496, "the paper's arithmetic (transformer_base)"),
    "transformer_base": (63_082_496, 63_082_496, "the paper's arithmetic"),
    "transformer_big": (214_245_376, 214_245_376, "the paper's arithmetic"),
    "lstm_seq2seq": (384_112_000, 384_112_000, "Sutskever et al. 2014: 384M"),
}

# torchvision's published compute ("GFLOPS" there are multiply-adds) at the default input (224x224;
# EfficientNet's sizes at their own).
TORCHVISION_GMACS = {
    "vgg11": 7.61,
    "vgg13": 11.31,
    "vgg16": 15.47,
    "vgg19": 19.63,
    "resnet18": 1.81,
    "resnet34": 3.66,
    "densenet121": 2.83,
    "densenet169": 3.36,
    "densenet201": 4.29,
    "resnext50_32x4d": 4.23,
    "resnext101_32x8d": 16.41,
    "wide_resnet50_2": 11.40,
    "inception_v3": 5.71,  # at 299x299
    # at 384, 480 and 480 (torchvision's EfficientNetV2 is the release's, as keras.applications')
    "efficientnet_v2_s": 8.37,
    "efficientnet_v2_m": 24.58,
    "efficientnet_v2_l": 56.08,
    # EfficientNet at each size's own input (B2: torchvision gives 1.09 at 288; the paper's below)
    "efficientnet_b0": 0.39,
    "efficientnet_b1": 0.69,
    "efficientnet_b3": 1.83,
    "efficientnet_b4": 4.39,
    "efficientnet_b5": 10.27,
    "efficientnet_b6": 19.07,
    "efficientnet_b7": 37.75,
}


# Published multiply-adds (millions), checked within 2%: the papers' (MobileNet and MobileNetV2 Table 6 at 224x224,
# EfficientNet-B2 Table 2 ("1.0B FLOPS" at 260x260; its B4, B5 and B7 figures are 2-5% under the
# count of the released models, which torchvision's match), and timm's where no paper counts the model.
PUBLISHED_MMACS = {
    # timm's GMACs for ViT (fvcore's count: projections, attention scores and weighted sums)
    "vit_tiny_patch16_224": 1_260,
    "vit_small_patch16_224": 4_610,
    "vit_base_patch16_224": 17_580,
    "vit_large_patch16_224": 61_600,
    "vit_base_patch32_224": 4_410,
    # NASNet-A Table 2: 4 @ 1056 at 224x224, 6 @ 4032 at 331x331
    "nasnet_mobile": 564,
    "nasnet_large": 23_800,
    # timm's legacy_xception, the paper's model with keras.applications' weights, at 299x299
    "xception": 8_400,
    # timm's inception_resnet_v2 (the TF-slim release, keras.applications' weights), at 299x299
    "inception_resnet_v2": 13_180,
    # timm's published GMACs for its SE ResNets (no paper gives these exact models' counts)
    "seresnet50": 4_110,
    "seresnext50_32x4d": 4_260,
    # ConvNeXt Table 1's FLOPs (multiply-adds) at 224x224
    "convnext_tiny": 4_500,
    "convnext_small": 8_700,
    "convnext_base": 15_400,
    "convnext_large": 34_400,
    "convnext_xlarge": 60_900,
    # MobileNetV3 Table 3 (Small) and the release's table in keras.applications' mobilenet_v3.py
    # (Large; its Small rows, 66 M at 2.9 M parameters, are an earlier Small than the one published)
    "mobilenet_v3_large": 217,
    "mobilenet_v3_large_075": 155,
    "mobilenet_v3_large_minimal": 209,
    "mobilenet_v3_small": 56,
    "mobilenet_v3_small_075": 44,
    # MobileNet Table 6 (224x224)
    "mobilenet_025": 41,
    "mobilenet_050": 149,
    "mobilenet_075": 325,
    "mobilenet": 569,
    "efficientnet_b2": 1000,
    "mobilenet_v2_035": 59,
    "mobilenet_v2_050": 97,
    "mobilenet_v2_075": 209,
    "mobilenet_v2": 300,
    "mobilenet_v2_140": 585,
}


@pytest.mark.parametrize("name", sorted(PUBLISHED_MMACS))
def test_macs_match_the_published_figure(name):
    assert modelzoo.model_info(name)["macs"] / 1e6 == pytest.approx(PUBLISHED_MMACS[name], rel=0.02)


def test_every_registered_model_is_pinned():
    assert sorted(PINNED) == modelzoo.list_models()


@pytest.mark.parametrize("name", sorted(PINNED))
def test_parameter_counts(name):  # the recorded table, which test_all_models checks against a build
    trainable, total, _ = PINNED[name]
    info = modelzoo.model_info(name)
    assert info["trainable_params"] == trainable
    assert info["params"] == total


@pytest.mark.parametrize("name", sorted(TORCHVISION_GMACS))
def test_macs_match_torchvision(name):
    gmacs = modelzoo.model_info(name)["macs"] / 1e9
    assert gmacs == pytest.approx(TORCHVISION_GMACS[name], abs=0.006)


@pytest.mark.slow
def test_resnet_stride_placement():
    # Paper / keras.applications: stride in the first 1x1 (3.86 GMACs; the paper says "3.8 x 10^9").
    assert modelzoo.model_info("resnet50")["macs"] / 1e9 == pytest.approx(3.86, abs=0.01)
    # v1.5 (torchvision, timm): stride in the 3x3, same parameters, torchvision's 4.09 GMACs.
    v15 = modelzoo.resnet50(stride_in_1x1=False)
    assert modelzoo.count_params(v15)["trainable_params"] == 25_557_032
    assert modelzoo.count_flops(v15)["macs"] / 1e9 == pytest.approx(4.09, abs=0.01)


def test_alexnet_grouped_is_the_two_gpu_layout():
    # conv2 5x5x48x256, conv4 3x3x192x384, conv5 3x3x192x256: the paper's "60 million parameters".
    model = modelzoo.alexnet(grouped=True)
    assert modelzoo.count_params(model)["params"] == 60_965_224
    assert model.get_layer("conv2_conv").kernel.shape == (5, 5, 48, 256)


def test_alexnet_layers_follow_the_paper():
    model = modelzoo.alexnet()
    assert model.get_layer("conv1_conv").output.shape[1:] == (55, 55, 96)
    assert model.get_layer("pool5").output.shape[1:] == (6, 6, 256)
    assert isinstance(model.get_layer("conv1_lrn"), modelzoo.blocks.LocalResponseNormalization)
    bn = modelzoo.alexnet(batch_norm=True)
    assert not any(isinstance(layer, modelzoo.blocks.LocalResponseNormalization) for layer in bn.layers)
    assert bn.get_layer("conv1_bn")


def test_zfnet_maps_follow_figure_3():
    model = modelzoo.zfnet()
    sizes = [
        model.get_layer(n).output.shape[1]
        for n in ("conv1_relu", "pool1", "conv2_relu", "pool2", "conv5_relu", "pool5")
    ]
    assert sizes == [110, 55, 26, 13, 13, 6]
    assert model.get_layer("conv1_conv").kernel.shape == (7, 7, 3, 96)
    assert model.get_layer("conv2_conv").strides == (2, 2)


def test_lenet5_c3_connection_table():
    model = modelzoo.lenet5()
    assert model.get_layer("c3").count_params() == 1_516
    assert model.get_layer("s2").count_params() == 12
    full = modelzoo.lenet5(connection_table=False)  # every C3 map sees all six S2 maps
    assert modelzoo.count_params(full)["params"] == 60_850 - 1_516 + 2_416


def test_nin_count_by_hand():
    conv = lambda k, cin, cout: k * k * cin * cout + cout  # noqa: E731
    expected = (
        conv(11, 3, 96)
        + 2 * conv(1, 96, 96)
        + conv(5, 96, 256)
        + 2 * conv(1, 256, 256)
        + conv(3, 256, 384)
        + 2 * conv(1, 384, 384)
        + conv(3, 384, 1024)
        + conv(1, 1024, 1024)
        + conv(1, 1024, 1000)
    )
    assert modelzoo.count_params(modelzoo.nin())["params"] == expected == 7_595_176


# GoogLeNet, Table 1 of Szegedy et al. 2014: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
TABLE_1 = [
    ("3a", 192, (64, 96, 128, 16, 32, 32)),
    ("3b", 256, (128, 128, 192, 32, 96, 64)),
    ("4a", 480, (192, 96, 208, 16, 48, 64)),
    ("4b", 512, (160, 112, 224, 24, 64, 64)),
    ("4c", 512, (128, 128, 256, 24, 64, 64)),
    ("4d", 512, (112, 144, 288, 32, 64, 64)),
    ("4e", 528, (256, 160, 320, 32, 128, 128)),
    ("5a", 832, (256, 160, 320, 32, 128, 128)),
    ("5b", 832, (384, 192, 384, 48, 128, 128)),
]


def test_googlenet_matches_table_1():
    conv = lambda k, cin, cout: k * k * cin * cout + cout  # noqa: E731
    total = conv(7, 3, 64) + conv(1, 64, 64) + conv(3, 64, 192) + conv(1, 1024, 1000)  # stem + linear
    model = modelzoo.googlenet()
    for key, cin, (n1, r3, n3, r5, n5, pp) in TABLE_1:
        module = (
            conv(1, cin, n1)
            + conv(1, cin, r3)
            + conv(3, r3, n3)
            + conv(1, cin, r5)
            + conv(5, r5, n5)
            + conv(1, cin, pp)
        )
        layers = [layer for layer in model.layers if layer.name.startswith(f"inception_{key}_")]
        assert sum(layer.count_params() for layer in layers) == module, key
        assert model.get_layer(f"inception_{key}_output").output.shape[-1] == n1 + n3 + n5 + pp
        total += module
    assert model.get_layer("inception_3a_5x5_conv").kernel.shape == (5, 5, 16, 32)  # not torchvision's 3x3
    assert modelzoo.count_params(model)["params"] == total == PINNED["googlenet"][0]


def test_googlenet_auxiliary_heads():
    model = modelzoo.googlenet(aux_logits=True, num_classes=10)
    assert [t.shape[-1] for t in model.outputs] == [10, 10, 10]
    names = [t._keras_history[0].name for t in model.outputs]
    assert names == ["predictions", "aux1_predictions", "aux2_predictions"]
    new = modelzoo.reset_classifier(model, 4)
    assert [t.shape[-1] for t in new.outputs] == [4, 4, 4]
    with pytest.raises(ValueError, match="aux_logits"):
        modelzoo.googlenet(aux_logits=True, input_shape=(64, 64, 3))


def test_inception_v3_auxiliary_head():
    model = modelzoo.inception_v3(aux_logits=True, num_classes=10, width_multiplier=0.125)
    assert [t.shape[-1] for t in model.outputs] == [10, 10]
    assert [t._keras_history[0].name for t in model.outputs] == ["predictions", "aux_predictions"]
    # section 4: on the last 17x17 grid, before the reduction to 8x8
    assert model.get_layer("aux_pool").input.shape[1:3] == (17, 17)
    assert [t.shape[-1] for t in modelzoo.reset_classifier(model, 4).outputs] == [4, 4]
    with pytest.raises(ValueError, match="aux_logits=True needs input height and width of at least 299"):
        modelzoo.inception_v3(aux_logits=True, input_shape=(224, 224, 3))


def test_resnet_options():
    model = modelzoo.resnet18(zero_init_residual=True)
    assert not model.get_layer("conv2_block1_2_bn").gamma.numpy().any()
    narrow = modelzoo.resnet50(width_multiplier=0.5)
    assert narrow.get_layer("conv5_block3_out").output.shape[-1] == 1024
    # Symmetric padding before strided convolutions, as in the paper's implementation.
    assert narrow.get_layer("conv1_pad").padding == ((3, 3), (3, 3))


def test_densenet_growth_and_transitions():
    model = modelzoo.densenet121(growth_rate=12)
    assert model.get_layer("conv1_conv").output.shape[-1] == 24  # stem: 2k maps
    # block 1: 24 + 6 * 12 = 96 maps, transition halves them
    assert model.get_layer("dense1_layer6_concat").output.shape[-1] == 96
    assert model.get_layer("transition1_conv").output.shape[-1] == 48


def test_efficientnet_blocks_follow_the_paper():
    model = modelzoo.efficientnet_b0()
    # Table 1: stage 3 is 5x5 MBConv6 to 40 maps; squeeze-excite on a quarter of the block's input
    assert model.get_layer("block3a_dwconv").kernel.shape == (5, 5, 144, 1)
    assert (
        model.get_layer("block3a_se_reduce").filters == 6
        and model.get_layer("block3b_se_reduce").filters == 10
    )
    assert model.get_layer("block3b_add") and "block3a_add" not in [layer.name for layer in model.layers]
    # stochastic depth rises linearly to 0.2 over the 16 blocks (block k drops 0.2 * k / 16)
    drops = {layer.name: layer.rate for layer in model.layers if layer.name.endswith("_drop")}
    assert drops["block2b_drop"] == pytest.approx(0.2 * 2 / 16)
    assert drops["block6d_drop"] == pytest.approx(0.2 * 14 / 16)
    # B7: repeats ceil(3.1 n) (stage 6: 4 -> 13 blocks), widths x2 rounded to 8 (1280 -> 2560)
    b7 = modelzoo.efficientnet_b7()
    assert b7.get_layer("block6m_add") and b7.get_layer("top_conv").filters == 2560


def test_deit_distillation_token_adds_a_token_and_a_second_head():
    model = modelzoo.deit_tiny_patch16_224(
        distilled=True, num_classes=4, input_shape=(32, 32, 3), width=32, heads=2
    )
    assert [t.shape[-1] for t in model.outputs] == [4, 4]
    assert model.get_layer("prefix_tokens").tokens.shape == (1, 2, 32)
    assert model.get_layer("position_embedding").embedding.shape == (1, 2 + 4, 32)  # 2x2 patches
    # timm: the distilled DeiT-Ti has 5,910,800 weights (a token, its position, a 192 x 1000 head)
    assert modelzoo.count_params(modelzoo.deit_tiny_patch16_224(distilled=True))["params"] == 5_910_800
    new = modelzoo.reset_classifier(model, 7)
    assert [t.shape[-1] for t in new.outputs] == [7, 7]


def test_efficientnet_v2_fuses_the_early_stages():
    model = modelzoo.efficientnet_v2_b0()
    names = {layer.name for layer in model.layers}
    # Fused-MBConv (stages 1-3): at expansion 1 a 3x3 convolution with swish; else a strided 3x3
    # expansion and a 1x1 projection; no depthwise convolution and no squeeze-excite
    assert model.get_layer("block1a_project_conv").kernel.shape == (3, 3, 32, 16)
    assert "block1a_project_activation" in names
    assert model.get_layer("block2a_expand_conv").kernel.shape == (3, 3, 16, 64)
    assert model.get_layer("block2a_expand_conv").strides == (2, 2)
    assert not any(n.startswith(("block2a_dwconv", "block3b_se")) for n in names)
    # MBConv (stages 4-6): depthwise 3x3 and squeeze-excite on a quarter of the block's input maps
    assert model.get_layer("block4a_dwconv2").kernel.shape == (3, 3, 192, 1)
    assert model.get_layer("block4a_se_reduce").filters == 12
    # B3's widths round to multiples of 8 without EfficientNet's 10% guard: 16 x 1.2 -> 16
    b3 = modelzoo.efficientnet_v2_b3(include_top=False, input_shape=(32, 32, 3))
    assert b3.get_layer("block1a_project_conv").filters == 16


# pycls's model zoo: each RegNet's GFLOPs (multiply-adds, one decimal) at 224x224
PYCLS_GMACS = {
    **dict(
        zip(
            (
                f"regnetx_{n}"
                for n in ("002", "004", "006", "008", "016", "032", "040", "064", "080", "120", "160", "320")
            ),
            (0.2, 0.4, 0.6, 0.8, 1.6, 3.2, 4.0, 6.5, 8.0, 12.1, 15.9, 31.7),
        )
    ),
    **dict(
        zip(
            (
                f"regnety_{n}"
                for n in ("002", "004", "006", "008", "016", "032", "040", "064", "080", "120", "160", "320")
            ),
            (0.2, 0.4, 0.6, 0.8, 1.6, 3.2, 4.0, 6.4, 8.0, 12.1, 15.9, 32.3),
        )
    ),
}


@pytest.mark.parametrize("name", sorted(PYCLS_GMACS))
def test_regnet_macs_round_to_pycls_figures(name):
    assert abs(modelzoo.model_info(name)["macs"] / 1e9 - PYCLS_GMACS[name]) <= 0.05 + 1e-9


def test_regnet_stages_come_from_the_design_rule():
    from modelzoo.models.regnet import REGNETX, REGNETY, stages_from_rule

    # the paper's RegNetX-200MF: widths 24-56-152-368, depths 1-1-4-7, group width 8
    assert stages_from_rule(*REGNETX["002"]) == ([24, 56, 152, 368], [1, 1, 4, 7], [8, 8, 8, 8])
    # a group width above the first stage's width is capped at it (RegNetX-8.0GF: 120 > 80)
    assert stages_from_rule(*REGNETX["080"]) == ([80, 240, 720, 1920], [2, 5, 15, 1], [80, 120, 120, 120])
    assert stages_from_rule(*REGNETY["320"])[:2] == ([232, 696, 1392, 3712], [2, 5, 12, 1])
    model = modelzoo.regnety_002()
    # Y blocks: squeeze-excite on a quarter of the block's input width (stage 2's first: 56 -> 14)
    assert model.get_layer("Stage_2_YBlock_0_squeeze_and_excite_squeeze").filters == 14
    assert model.get_layer("Stage_2_YBlock_0_conv_3x3").groups == 152 // 8
    with pytest.raises(ValueError, match="stage_depths"):
        modelzoo.regnetx_002(stage_depths=(1, 1, 1))
