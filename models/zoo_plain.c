/* Chain-shaped zoo models: AlexNet, VGG16 and tiny YOLOv2.
 *
 * AlexNet and VGG16 follow torchvision's definitions (torchvision/models/
 * alexnet.py, vgg.py), whose published figures are: AlexNet 61,100,840 params,
 * 0.71 GFLOPS; VGG16 138,357,544 params, 15.47 GFLOPS (torchvision's model
 * documentation tables; its "GFLOPS" are multiply-accumulates at 224x224).
 * Their AdaptiveAvgPool2d is the identity at 224x224 input (the feature map
 * is already 6x6 / 7x7) and Dropout is the identity at inference, so neither
 * appears here, as in an ONNX export of the eval-mode model.
 *
 * Tiny YOLOv2 follows darknet's cfg/yolov2-tiny-voc.cfg (416x416, 20 VOC
 * classes, 5 anchors: 125 output channels). darknet reports 6.97 BFLOPs for
 * it (2 per MAC: 3.49 GMACs); the conv weights total 15.86 M. Convs followed
 * by batch_normalize have no bias (darknet keeps the bias in the BN). The
 * 6th max pool has size 2 stride 1 and darknet pads it on the bottom/right so
 * the 13x13 map keeps its size (pads 0,0,1,1 as in the ONNX conversions). */
#include "zoo_build.h"
#include "zoo_models.h"

mb_graph *zoo_alexnet(uint64_t seed, char *err, size_t errlen)
{
    zoo_b b;
    zoo_begin(&b, "alexnet", seed);
    static const int nopad[4] = {0, 0, 0, 0};
    int x = zoo_input(&b, "input", 3, 224, 224);
    x = zoo_conv(&b, "features.0", x, 64, 11, 4, 2, 1, 1, ZOO_GAIN_RELU);
    x = zoo_relu(&b, "features.1", x);
    x = zoo_maxpool(&b, "features.2", x, 3, 2, nopad, 0);
    x = zoo_conv(&b, "features.3", x, 192, 5, 1, 2, 1, 1, ZOO_GAIN_RELU);
    x = zoo_relu(&b, "features.4", x);
    x = zoo_maxpool(&b, "features.5", x, 3, 2, nopad, 0);
    x = zoo_conv(&b, "features.6", x, 384, 3, 1, 1, 1, 1, ZOO_GAIN_RELU);
    x = zoo_relu(&b, "features.7", x);
    x = zoo_conv(&b, "features.8", x, 256, 3, 1, 1, 1, 1, ZOO_GAIN_RELU);
    x = zoo_relu(&b, "features.9", x);
    x = zoo_conv(&b, "features.10", x, 256, 3, 1, 1, 1, 1, ZOO_GAIN_RELU);
    x = zoo_relu(&b, "features.11", x);
    x = zoo_maxpool(&b, "features.12", x, 3, 2, nopad, 0);
    x = zoo_flatten(&b, "flatten", x, 256 * 6 * 6);
    x = zoo_fc(&b, "classifier.1", x, 9216, 4096, ZOO_GAIN_RELU);
    x = zoo_relu(&b, "classifier.2", x);
    x = zoo_fc(&b, "classifier.4", x, 4096, 4096, ZOO_GAIN_RELU);
    x = zoo_relu(&b, "classifier.5", x);
    x = zoo_fc(&b, "classifier.6", x, 4096, 1000, ZOO_GAIN_LINEAR);
    return zoo_finish(&b, &x, 1, err, errlen);
}

mb_graph *zoo_vgg16(uint64_t seed, char *err, size_t errlen)
{
    /* torchvision cfg "D": channels per conv, 0 = 2x2 max pool. */
    static const int cfg[] = {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0};
    zoo_b b;
    zoo_begin(&b, "vgg16", seed);
    int x = zoo_input(&b, "input", 3, 224, 224);
    int idx = 0;
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
        if (cfg[i] == 0) {
            x = zoo_maxpool(&b, zoo_nm(&b, "features.%d", idx++), x, 2, 2, NULL, 0);
            continue;
        }
        x = zoo_conv(&b, zoo_nm(&b, "features.%d", idx++), x, cfg[i], 3, 1, 1, 1, 1, ZOO_GAIN_RELU);
        x = zoo_relu(&b, zoo_nm(&b, "features.%d", idx++), x);
    }
    x = zoo_flatten(&b, "flatten", x, 512 * 7 * 7);
    x = zoo_fc(&b, "classifier.0", x, 25088, 4096, ZOO_GAIN_RELU);
    x = zoo_relu(&b, "classifier.1", x);
    x = zoo_fc(&b, "classifier.3", x, 4096, 4096, ZOO_GAIN_RELU);
    x = zoo_relu(&b, "classifier.4", x);
    x = zoo_fc(&b, "classifier.6", x, 4096, 1000, ZOO_GAIN_LINEAR);
    return zoo_finish(&b, &x, 1, err, errlen);
}

mb_graph *zoo_tiny_yolov2(uint64_t seed, char *err, size_t errlen)
{
    static const int filters[] = {16, 32, 64, 128, 256, 512, 1024, 1024};
    static const int pad_br[4] = {0, 0, 1, 1};
    zoo_b b;
    zoo_begin(&b, "tiny_yolov2", seed);
    int x = zoo_input(&b, "input", 3, 416, 416);
    for (int i = 0; i < 8; i++) {
        x = zoo_conv(&b, zoo_nm(&b, "conv%d", i + 1), x, filters[i], 3, 1, 1, 1, 0, ZOO_GAIN_RELU);
        x = zoo_bn(&b, zoo_nm(&b, "bn%d", i + 1), x, 1e-5f, 0.8f, 1.2f);
        x = zoo_leaky(&b, zoo_nm(&b, "leaky%d", i + 1), x, 0.1f);
        if (i < 5)
            x = zoo_maxpool(&b, zoo_nm(&b, "pool%d", i + 1), x, 2, 2, NULL, 0);
        else if (i == 5)
            x = zoo_maxpool(&b, "pool6", x, 2, 1, pad_br, 0);
    }
    x = zoo_conv(&b, "conv9", x, 125, 1, 1, 0, 1, 1, ZOO_GAIN_LINEAR);
    return zoo_finish(&b, &x, 1, err, errlen);
}
