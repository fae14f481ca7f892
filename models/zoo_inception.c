/* GoogLeNet (Inception v1, Szegedy et al., CVPR 2015) as in torchvision/
 * models/googlenet.py without the auxiliary classifiers (they are training
 * only): published 6,624,904 params and 1.50 GFLOPS (multiply-accumulates)
 * at 224x224. torchvision's variant adds BatchNormalization after every conv
 * (eps 0.001) and, like the Caffe model it was ported from, uses a 3x3 conv
 * in the branch the paper draws as 5x5 (pytorch/vision issue #906); with
 * 5x5 there the count would be 7.0 M. Pools use ceil_mode as torchvision. */
#include <stdio.h>

#include "zoo_build.h"
#include "zoo_models.h"

#define BN_EPS 1e-3f

static int basic_conv(zoo_b *b, const char *pfx, int x, int ch, int k, int s, int p)
{
    x = zoo_conv(b, zoo_nm(b, "%s.conv", pfx), x, ch, k, s, p, 1, 0, ZOO_GAIN_RELU);
    x = zoo_bn(b, zoo_nm(b, "%s.bn", pfx), x, BN_EPS, 0.8f, 1.2f);
    return zoo_relu(b, zoo_nm(b, "%s.relu", pfx), x);
}

static int inception(zoo_b *b, const char *name, int x, int c1, int c3r, int c3, int c5r, int c5, int pp)
{
    static const int same[4] = {1, 1, 1, 1};
    char p[64];
    int br[4];
    snprintf(p, sizeof p, "%s.branch1", name);
    br[0] = basic_conv(b, p, x, c1, 1, 1, 0);
    snprintf(p, sizeof p, "%s.branch2.0", name);
    br[1] = basic_conv(b, p, x, c3r, 1, 1, 0);
    snprintf(p, sizeof p, "%s.branch2.1", name);
    br[1] = basic_conv(b, p, br[1], c3, 3, 1, 1);
    snprintf(p, sizeof p, "%s.branch3.0", name);
    br[2] = basic_conv(b, p, x, c5r, 1, 1, 0);
    snprintf(p, sizeof p, "%s.branch3.1", name);
    br[2] = basic_conv(b, p, br[2], c5, 3, 1, 1);
    br[3] = zoo_maxpool(b, zoo_nm(b, "%s.branch4.0", name), x, 3, 1, same, 1);
    snprintf(p, sizeof p, "%s.branch4.1", name);
    br[3] = basic_conv(b, p, br[3], pp, 1, 1, 0);
    return zoo_concat(b, zoo_nm(b, "%s.concat", name), br, 4);
}

mb_graph *zoo_googlenet(uint64_t seed, char *err, size_t errlen)
{
    zoo_b b;
    zoo_begin(&b, "googlenet", seed);
    int x = zoo_input(&b, "input", 3, 224, 224);
    x = basic_conv(&b, "conv1", x, 64, 7, 2, 3);
    x = zoo_maxpool(&b, "maxpool1", x, 3, 2, NULL, 1);
    x = basic_conv(&b, "conv2", x, 64, 1, 1, 0);
    x = basic_conv(&b, "conv3", x, 192, 3, 1, 1);
    x = zoo_maxpool(&b, "maxpool2", x, 3, 2, NULL, 1);
    x = inception(&b, "inception3a", x, 64, 96, 128, 16, 32, 32);
    x = inception(&b, "inception3b", x, 128, 128, 192, 32, 96, 64);
    x = zoo_maxpool(&b, "maxpool3", x, 3, 2, NULL, 1);
    x = inception(&b, "inception4a", x, 192, 96, 208, 16, 48, 64);
    x = inception(&b, "inception4b", x, 160, 112, 224, 24, 64, 64);
    x = inception(&b, "inception4c", x, 128, 128, 256, 24, 64, 64);
    x = inception(&b, "inception4d", x, 112, 144, 288, 32, 64, 64);
    x = inception(&b, "inception4e", x, 256, 160, 320, 32, 128, 128);
    x = zoo_maxpool(&b, "maxpool4", x, 2, 2, NULL, 1);
    x = inception(&b, "inception5a", x, 256, 160, 320, 32, 128, 128);
    x = inception(&b, "inception5b", x, 384, 192, 384, 48, 128, 128);
    x = zoo_gap(&b, "avgpool", x);
    x = zoo_flatten(&b, "flatten", x, 1024);
    x = zoo_fc(&b, "fc", x, 1024, 1000, ZOO_GAIN_LINEAR);
    return zoo_finish(&b, &x, 1, err, errlen);
}
