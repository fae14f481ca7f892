/* DenseNet-121 (Huang et al., CVPR 2017) as in torchvision/models/
 * densenet.py: growth 32, bottleneck width 4x32, blocks of 6/12/24/16
 * layers, compression 0.5; published 7,978,856 params and 2.83 GFLOPS
 * (multiply-accumulates) at 224x224. Each dense layer reads the
 * concatenation of the block input and every earlier layer's new features
 * (one Concat per layer, as torchvision's torch.cat exports to ONNX), so the
 * DAG keeps DenseNet's long skip edges for the partitioners. Layers are
 * pre-activation: BN, ReLU, 1x1 conv, BN, ReLU, 3x3 conv. */
#include <stdio.h>

#include "zoo_build.h"
#include "zoo_models.h"

#define BN_EPS 1e-5f
#define GROWTH 32
#define BN_SIZE 4

static int bn_relu_conv(zoo_b *b, const char *pfx, int idx, int x, int ch, int k, int p)
{
    x = zoo_bn(b, zoo_nm(b, "%s.norm%d", pfx, idx), x, BN_EPS, 0.8f, 1.2f);
    x = zoo_relu(b, zoo_nm(b, "%s.relu%d", pfx, idx), x);
    return zoo_conv(b, zoo_nm(b, "%s.conv%d", pfx, idx), x, ch, k, 1, p, 1, 0, ZOO_GAIN_RELU);
}

static int dense_block(zoo_b *b, int block, int x, int layers)
{
    int feats[1 + 24];
    int nf = 0;
    feats[nf++] = x;
    for (int l = 0; l < layers; l++) {
        char pfx[64];
        snprintf(pfx, sizeof pfx, "denseblock%d.denselayer%d", block, l + 1);
        int in = nf == 1 ? feats[0] : zoo_concat(b, zoo_nm(b, "%s.concat", pfx), feats, nf);
        int y = bn_relu_conv(b, pfx, 1, in, BN_SIZE * GROWTH, 1, 0);
        y = bn_relu_conv(b, pfx, 2, y, GROWTH, 3, 1);
        feats[nf++] = y;
    }
    return zoo_concat(b, zoo_nm(b, "denseblock%d.concat", block), feats, nf);
}

static int transition(zoo_b *b, int idx, int x)
{
    if (x < 0)
        return -1;
    char pfx[32];
    snprintf(pfx, sizeof pfx, "transition%d", idx);
    int half = b->ch[x] / 2;
    x = zoo_bn(b, zoo_nm(b, "%s.norm", pfx), x, BN_EPS, 0.8f, 1.2f);
    x = zoo_relu(b, zoo_nm(b, "%s.relu", pfx), x);
    x = zoo_conv(b, zoo_nm(b, "%s.conv", pfx), x, half, 1, 1, 0, 1, 0, ZOO_GAIN_LINEAR);
    return zoo_avgpool(b, zoo_nm(b, "%s.pool", pfx), x, 2, 2, NULL, 0);
}

mb_graph *zoo_densenet121(uint64_t seed, char *err, size_t errlen)
{
    static const int layers[4] = {6, 12, 24, 16};
    static const int pool_pads[4] = {1, 1, 1, 1};
    zoo_b b;
    zoo_begin(&b, "densenet121", seed);
    int x = zoo_input(&b, "input", 3, 224, 224);
    x = zoo_conv(&b, "conv0", x, 64, 7, 2, 3, 1, 0, ZOO_GAIN_RELU);
    x = zoo_bn(&b, "norm0", x, BN_EPS, 0.8f, 1.2f);
    x = zoo_relu(&b, "relu0", x);
    x = zoo_maxpool(&b, "pool0", x, 3, 2, pool_pads, 0);
    for (int i = 0; i < 4; i++) {
        x = dense_block(&b, i + 1, x, layers[i]);
        if (i < 3)
            x = transition(&b, i + 1, x);
    }
    x = zoo_bn(&b, "norm5", x, BN_EPS, 0.8f, 1.2f);
    x = zoo_relu(&b, "relu5", x);
    x = zoo_gap(&b, "avgpool", x);
    x = zoo_flatten(&b, "flatten", x, 1024);
    x = zoo_fc(&b, "classifier", x, 1024, 1000, ZOO_GAIN_LINEAR);
    return zoo_finish(&b, &x, 1, err, errlen);
}
