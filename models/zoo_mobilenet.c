/* MobileNetV2 (Sandler et al., CVPR 2018) as in torchvision/models/
 * mobilenetv2.py, width 1.0 at 224x224: published 3,504,872 params and
 * 0.30 GFLOPS (multiply-accumulates; the paper's Table 1 / figure: 300 M
 * multiply-adds, 3.4 M params). Inverted residual blocks: 1x1 expansion
 * (skipped when t = 1), 3x3 depthwise, 1x1 linear projection, each conv
 * followed by BatchNormalization, ReLU6 after the first two; a residual add
 * where stride is 1 and channels are kept. */
#include <stdio.h>

#include "zoo_build.h"
#include "zoo_models.h"

#define BN_EPS 1e-5f

static int conv_bn(zoo_b *b, const char *conv, const char *bn, int x, int ch, int k, int s, int group, float gain,
                   float g_lo, float g_hi)
{
    x = zoo_conv(b, conv, x, ch, k, s, (k - 1) / 2, group, 0, gain);
    return zoo_bn(b, bn, x, BN_EPS, g_lo, g_hi);
}

static int inverted_residual(zoo_b *b, int idx, int x, int out_ch, int stride, int expand)
{
    if (x < 0)
        return -1;
    int in_ch = b->ch[x];
    int hidden = in_ch * expand;
    int y = x, c = 0; /* c numbers the convs inside .conv like torchvision */
    char n1[MB_NAME_LEN], n2[MB_NAME_LEN];
    if (expand != 1) {
        snprintf(n1, sizeof n1, "features.%d.conv.%d.0", idx, c);
        snprintf(n2, sizeof n2, "features.%d.conv.%d.1", idx, c);
        y = conv_bn(b, n1, n2, y, hidden, 1, 1, 1, ZOO_GAIN_RELU, 0.8f, 1.2f);
        y = zoo_relu6(b, zoo_nm(b, "features.%d.conv.%d.2", idx, c), y);
        c++;
    }
    snprintf(n1, sizeof n1, "features.%d.conv.%d.0", idx, c);
    snprintf(n2, sizeof n2, "features.%d.conv.%d.1", idx, c);
    y = conv_bn(b, n1, n2, y, hidden, 3, stride, hidden, ZOO_GAIN_RELU, 0.8f, 1.2f);
    y = zoo_relu6(b, zoo_nm(b, "features.%d.conv.%d.2", idx, c), y);
    c++;
    int use_res = stride == 1 && in_ch == out_ch;
    snprintf(n1, sizeof n1, "features.%d.conv.%d", idx, c);
    snprintf(n2, sizeof n2, "features.%d.conv.%d", idx, c + 1);
    y = conv_bn(b, n1, n2, y, out_ch, 1, 1, 1, ZOO_GAIN_LINEAR, use_res ? 0.2f : 0.8f, use_res ? 0.4f : 1.2f);
    if (use_res)
        y = zoo_add(b, zoo_nm(b, "features.%d.add", idx), x, y);
    return y;
}

mb_graph *zoo_mobilenetv2(uint64_t seed, char *err, size_t errlen)
{
    /* t (expansion), c (channels), n (repeats), s (first stride): the paper's Table 2. */
    static const int setting[7][4] = {{1, 16, 1, 1},  {6, 24, 2, 2},  {6, 32, 3, 2},  {6, 64, 4, 2},
                                      {6, 96, 3, 1},  {6, 160, 3, 2}, {6, 320, 1, 1}};
    zoo_b b;
    zoo_begin(&b, "mobilenetv2", seed);
    int x = zoo_input(&b, "input", 3, 224, 224);
    x = conv_bn(&b, "features.0.0", "features.0.1", x, 32, 3, 2, 1, ZOO_GAIN_RELU, 0.8f, 1.2f);
    x = zoo_relu6(&b, "features.0.2", x);
    int idx = 1;
    for (int i = 0; i < 7; i++)
        for (int r = 0; r < setting[i][2]; r++)
            x = inverted_residual(&b, idx++, x, setting[i][1], r == 0 ? setting[i][3] : 1, setting[i][0]);
    char n1[MB_NAME_LEN], n2[MB_NAME_LEN];
    snprintf(n1, sizeof n1, "features.%d.0", idx);
    snprintf(n2, sizeof n2, "features.%d.1", idx);
    x = conv_bn(&b, n1, n2, x, 1280, 1, 1, 1, ZOO_GAIN_RELU, 0.8f, 1.2f);
    x = zoo_relu6(&b, zoo_nm(&b, "features.%d.2", idx), x);
    x = zoo_gap(&b, "avgpool", x);
    x = zoo_flatten(&b, "flatten", x, 1280);
    x = zoo_fc(&b, "classifier.1", x, 1280, 1000, ZOO_GAIN_LINEAR);
    return zoo_finish(&b, &x, 1, err, errlen);
}
