/* ResNet-18, -50 and -152 as in torchvision/models/resnet.py (He et al.,
 * CVPR 2016, with torchvision's "v1.5" bottleneck: the stride sits on the
 * 3x3 conv). torchvision's published figures at 224x224: ResNet-18
 * 11,689,512 params / 1.81 GFLOPS, ResNet-50 25,557,032 / 4.09, ResNet-152
 * 60,192,808 / 11.51 ("GFLOPS" there are multiply-accumulates). Convs have no
 * bias; each is followed by a BatchNormalization node as in the real network.
 *
 * Weight scale: without trained BN statistics a residual stack grows its
 * activations by a factor (1 + gain^2) per block. The last BN of every
 * residual branch gets a small gamma (0.1-0.3, in the spirit of "zero-init
 * residual" from Goyal et al. 2017), which keeps ResNet-152's 50 blocks
 * within a few units. */
#include <stdio.h>

#include "zoo_build.h"
#include "zoo_models.h"

#define BN_EPS 1e-5f

static int conv_bn(zoo_b *b, const char *pfx, const char *conv, const char *bn, int x, int ch, int k, int s,
                   int p, float g_lo, float g_hi)
{
    x = zoo_conv(b, zoo_nm(b, "%s.%s", pfx, conv), x, ch, k, s, p, 1, 0, ZOO_GAIN_RELU);
    return zoo_bn(b, zoo_nm(b, "%s.%s", pfx, bn), x, BN_EPS, g_lo, g_hi);
}

static int shortcut(zoo_b *b, const char *pfx, int x, int out_ch, int stride)
{
    if (x < 0)
        return -1;
    if (stride == 1 && b->ch[x] == out_ch)
        return x;
    x = zoo_conv(b, zoo_nm(b, "%s.downsample.0", pfx), x, out_ch, 1, stride, 0, 1, 0, ZOO_GAIN_LINEAR);
    return zoo_bn(b, zoo_nm(b, "%s.downsample.1", pfx), x, BN_EPS, 0.8f, 1.2f);
}

static int basic_block(zoo_b *b, const char *pfx, int x, int planes, int stride)
{
    int y = conv_bn(b, pfx, "conv1", "bn1", x, planes, 3, stride, 1, 0.8f, 1.2f);
    y = zoo_relu(b, zoo_nm(b, "%s.relu1", pfx), y);
    y = conv_bn(b, pfx, "conv2", "bn2", y, planes, 3, 1, 1, 0.1f, 0.3f);
    int sc = shortcut(b, pfx, x, planes, stride);
    y = zoo_add(b, zoo_nm(b, "%s.add", pfx), y, sc);
    return zoo_relu(b, zoo_nm(b, "%s.relu2", pfx), y);
}

static int bottleneck(zoo_b *b, const char *pfx, int x, int planes, int stride)
{
    int y = conv_bn(b, pfx, "conv1", "bn1", x, planes, 1, 1, 0, 0.8f, 1.2f);
    y = zoo_relu(b, zoo_nm(b, "%s.relu1", pfx), y);
    y = conv_bn(b, pfx, "conv2", "bn2", y, planes, 3, stride, 1, 0.8f, 1.2f);
    y = zoo_relu(b, zoo_nm(b, "%s.relu2", pfx), y);
    y = conv_bn(b, pfx, "conv3", "bn3", y, planes * 4, 1, 1, 0, 0.1f, 0.3f);
    int sc = shortcut(b, pfx, x, planes * 4, stride);
    y = zoo_add(b, zoo_nm(b, "%s.add", pfx), y, sc);
    return zoo_relu(b, zoo_nm(b, "%s.relu3", pfx), y);
}

static mb_graph *resnet(const char *name, int use_bottleneck, const int blocks[4], uint64_t seed, char *err,
                        size_t errlen)
{
    static const int pool_pads[4] = {1, 1, 1, 1};
    zoo_b b;
    zoo_begin(&b, name, seed);
    int x = zoo_input(&b, "input", 3, 224, 224);
    x = zoo_conv(&b, "conv1", x, 64, 7, 2, 3, 1, 0, ZOO_GAIN_RELU);
    x = zoo_bn(&b, "bn1", x, BN_EPS, 0.8f, 1.2f);
    x = zoo_relu(&b, "relu", x);
    x = zoo_maxpool(&b, "maxpool", x, 3, 2, pool_pads, 0);
    for (int layer = 0; layer < 4; layer++) {
        int planes = 64 << layer;
        for (int i = 0; i < blocks[layer]; i++) {
            char pfx[32];
            snprintf(pfx, sizeof pfx, "layer%d.%d", layer + 1, i);
            int stride = (layer > 0 && i == 0) ? 2 : 1;
            x = use_bottleneck ? bottleneck(&b, pfx, x, planes, stride) : basic_block(&b, pfx, x, planes, stride);
        }
    }
    int feat = use_bottleneck ? 2048 : 512;
    x = zoo_gap(&b, "avgpool", x);
    x = zoo_flatten(&b, "flatten", x, feat);
    x = zoo_fc(&b, "fc", x, feat, 1000, ZOO_GAIN_LINEAR);
    return zoo_finish(&b, &x, 1, err, errlen);
}

mb_graph *zoo_resnet18(uint64_t seed, char *err, size_t errlen)
{
    static const int blocks[4] = {2, 2, 2, 2};
    return resnet("resnet18", 0, blocks, seed, err, errlen);
}

mb_graph *zoo_resnet50(uint64_t seed, char *err, size_t errlen)
{
    static const int blocks[4] = {3, 4, 6, 3};
    return resnet("resnet50", 1, blocks, seed, err, errlen);
}

mb_graph *zoo_resnet152(uint64_t seed, char *err, size_t errlen)
{
    static const int blocks[4] = {3, 8, 36, 3};
    return resnet("resnet152", 1, blocks, seed, err, errlen);
}
