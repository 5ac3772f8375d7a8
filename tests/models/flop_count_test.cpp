// The FLOP counter (models/flop_count.h): single operators in closed form, then the main job's ViT and the DCGAN
// of configs/ against hand counts written out below, the ViT's analytic counts (vit_flops_per_image, and
// vit_executed_flops_per_image for what forward() runs), the DCGAN discriminator's and MobileNetV2's; and
// that counting leaves a module's modes and BatchNorm statistics as they were.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <cstdlib>
#include <string>

#include "core/config.h"
#include "core/error.h"
#include "models/dcgan.h"
#include "models/flop_count.h"
#include "models/mobilenet_v2.h"
#include "models/model_options.h"
#include "models/vit.h"
#include "lib/repository_inputs.h"

namespace facetrain {
namespace {

using testing::repository_config;
using testing::store_shape;

TEST(FlopCount, SingleOperatorsInClosedForm) {
  const auto a = torch::randn({3, 5}), b = torch::randn({5, 2});
  EXPECT_DOUBLE_EQ(count_flops([&] { torch::mm(a, b); }).matmul, 2.0 * 3 * 5 * 2);
  EXPECT_DOUBLE_EQ(count_flops([&] { torch::addmm(torch::zeros({2}), a, b); }).matmul, 2.0 * 3 * 5 * 2);
  EXPECT_DOUBLE_EQ(count_flops([&] {
                     torch::bmm(torch::randn({4, 3, 5}), torch::randn({4, 5, 6}));
                   }).matmul,
                   2.0 * 4 * 3 * 5 * 6);
  // A broadcast matmul: (2, 3, 5) x (5, 2) is 2 x 3 x 2 outputs of 5 products each.
  EXPECT_DOUBLE_EQ(count_flops([&] { torch::matmul(torch::randn({2, 3, 5}), b); }).matmul, 2.0 * 2 * 3 * 2 * 5);
  // linear counts once, not again for the addmm or matmul it calls: (7, 3, 5) rows through 5 -> 4.
  torch::nn::Linear linear(5, 4);
  const FlopCount l = count_flops([&] { linear(torch::randn({7, 3, 5})); });
  EXPECT_DOUBLE_EQ(l.matmul, 2.0 * 7 * 3 * 5 * 4);
  EXPECT_DOUBLE_EQ(l.total(), l.matmul);
  // Conv 3 -> 8 channels, 3x3, stride 2, padding 1, on 2 x 10x10: 2 x 8 x 5 x 5 outputs of 3*9 products.
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(3, 8, 3).stride(2).padding(1));
  EXPECT_DOUBLE_EQ(count_flops([&] { conv(torch::randn({2, 3, 10, 10})); }).convolution, 2.0 * 2 * 8 * 25 * 27);
  // Grouped (depthwise) conv: 8 channels in 8 groups, 3x3, stride 1, padding 1, 6x6: 8 x 36 outputs of 9 products.
  torch::nn::Conv2d depthwise(torch::nn::Conv2dOptions(8, 8, 3).padding(1).groups(8));
  EXPECT_DOUBLE_EQ(count_flops([&] { depthwise(torch::randn({1, 8, 6, 6})); }).convolution, 2.0 * 8 * 36 * 9);
  // Transposed conv 8 -> 4, 4x4, stride 2, padding 1 on 3x3: every one of the 8 x 9 inputs scatters into 4 x 16.
  torch::nn::ConvTranspose2d up(torch::nn::ConvTranspose2dOptions(8, 4, 4).stride(2).padding(1));
  EXPECT_DOUBLE_EQ(count_flops([&] { up(torch::randn({1, 8, 3, 3})); }).convolution, 2.0 * 8 * 9 * 4 * 16);
  // Elementwise work is not counted.
  EXPECT_DOUBLE_EQ(count_flops([&] { torch::softmax(torch::relu(a) * 2 + 1, -1); }).total(), 0.0);
  // Nothing is counted outside the call, and calls do not nest.
  EXPECT_THROW(count_flops([&] { count_flops([] {}); }), std::runtime_error);
  EXPECT_DOUBLE_EQ(count_flops([] {}).total(), 0.0);
}

TEST(FlopCount, MainJobVitAgainstAHandCount) {
  // configs/vit-fashion-mnist.pbtxt on 28x28 grayscale, 10 classes: patch 7 -> 16 patches + the class token,
  // T = 17 tokens of width w = 64, 4 blocks, 4 heads, MLP hidden 128, class-token pooling.
  const proto::RunConfig config = repository_config("vit-fashion-mnist.pbtxt");
  const VitOptions o = vit_options_from(config, store_shape(28, 1, 10));
  ASSERT_EQ(o.tokens(), 17);
  ASSERT_EQ(o.width, 64);
  ASSERT_EQ(o.depth, 4);
  ASSERT_EQ(o.mlp_hidden(), 128);
  // Multiply-adds per image:
  //   patch embedding: 16 patches x (1 x 7 x 7) x 64                       =    50,176
  //   a block, all 17 rows: qkv 17 x 64 x 192                              =   208,896
  //                         q k^T 17 x 17 x 64 and weights v the same      =    36,992
  //                         projection 17 x 64 x 64                        =    69,632
  //                         MLP 17 x (64 x 128 + 128 x 64)                 =   278,528
  //                                                                  block =   594,048
  //   head 64 x 10                                                         =       640
  // Every token through every block: 50,176 + 4 x 594,048 + 640 = 2,427,008 -> 4,854,016 FLOPs.
  constexpr double kEveryToken = 2.0 * 2427008;
  // forward() computes only the class token's row after attention in the last block: k, v 17 x 64 x 128 =
  // 139,264; q 64 x 64 = 4,096; q k^T and weights v 2 x 17 x 64 = 2,176; projection 4,096; MLP 16,384 ->
  // 166,016, so 50,176 + 3 x 594,048 + 166,016 + 640 = 1,998,976 -> 3,997,952 FLOPs.
  constexpr double kExecuted = 2.0 * 1998976;
  EXPECT_DOUBLE_EQ(vit_flops_per_image(o), kEveryToken);
  EXPECT_DOUBLE_EQ(vit_executed_flops_per_image(o), kExecuted);

  torch::manual_seed(0);
  Vit vit(o);
  const auto image = torch::randn({1, 1, 28, 28});
  // forward_with_attention runs every token through every block (and the explicit attention in both LibTorch
  // versions): the standard count, vit_flops_per_image.
  const FlopCount every = count_forward_flops(*vit, [&] { vit->forward_with_attention(image); });
  EXPECT_DOUBLE_EQ(every.total(), kEveryToken);
  EXPECT_DOUBLE_EQ(every.convolution, 2.0 * 50176);
  // forward(): in LibTorch 2.x its attention is scaled_dot_product_attention, in 1.13 two bmm; the same FLOPs:
  // q k^T and weights v 3 x 36,992 + 2,176 = 113,152 multiply-adds.
  const FlopCount executed = count_forward_flops(*vit, [&] { vit->forward(image); });
  EXPECT_DOUBLE_EQ(executed.total(), kExecuted);
#if TORCH_VERSION_MAJOR >= 2
  EXPECT_DOUBLE_EQ(executed.attention, 2.0 * 113152);
#else
  EXPECT_DOUBLE_EQ(executed.attention, 0.0);
#endif
  // The count is per image: a batch of 3 counts 3 times as much.
  EXPECT_DOUBLE_EQ(count_forward_flops(*vit,
                                       [&] {
                                         vit->forward(torch::randn({3, 1, 28, 28}));
                                       })
                       .total(),
                   3 * kExecuted);
}

TEST(FlopCount, MainDcganAgainstAHandCount) {
  // configs/dcgan-fashion-mnist.pbtxt on 32x32 grayscale: seed32 layout, z 100, widths 32, 3 stride-2 layers.
  const proto::RunConfig config = repository_config("dcgan-fashion-mnist.pbtxt");
  const DcganOptions o = dcgan_options_from(config, store_shape(32, 1, 10));
  ASSERT_EQ(o.num_layers(), 3);
  // Generator multiply-adds: fc 100 -> 128 x 4 x 4 = 2,048: 204,800; t_conv1 128 -> 64 on 4x4: every input
  // element (128 x 16 = 2,048) into 64 x 4 x 4 = 1,024: 2,097,152; t_conv2 64 -> 32 on 8x8: 4,096 x 512 =
  // 2,097,152; t_conv3 32 -> 1 on 16x16: 8,192 x 16 = 131,072. Sum 4,530,176 -> 9,060,352 FLOPs.
  constexpr double kGenerator = 2.0 * 4530176;
  // Discriminator: conv1 1 -> 32 to 16x16: 8,192 outputs x 16 = 131,072; conv2 32 -> 64 to 8x8: 4,096 x 512 =
  // 2,097,152; conv3 64 -> 128 to 4x4: 2,048 x 1,024 = 2,097,152; fc 2,048 -> 1: 2,048. Sum 4,327,424 ->
  // 8,654,848 FLOPs.
  constexpr double kDiscriminator = 2.0 * 4327424;
  DcganGenerator g(o);
  DcganDiscriminator d(o);
  EXPECT_DOUBLE_EQ(count_forward_flops(*g, [&] { g->forward(torch::zeros({1, 100})); }).total(), kGenerator);
  EXPECT_DOUBLE_EQ(count_forward_flops(*d, [&] { d->forward(torch::zeros({1, 1, 32, 32})); }).total(), kDiscriminator);
  EXPECT_DOUBLE_EQ(discriminator_flops_per_image(o), kDiscriminator);
  // The paper's 64x64 layout (4x4 convs to and from 1x1) against its analytic count too.
  DcganOptions paper = DcganOptions::paper64();
  paper.channels = 1;
  DcganDiscriminator dp(paper);
  EXPECT_DOUBLE_EQ(count_forward_flops(*dp,
                                       [&] {
                                         dp->forward(torch::zeros({1, 1, 64, 64}));
                                       })
                       .total(),
                   discriminator_flops_per_image(paper));
}

TEST(FlopCount, MobileNetV2AgreesWithItsAnalyticCount) {
  MobileNetV2Options o;
  o.channels = 3;
  o.num_classes = 10;
  o.height = o.width = 64;
  MobileNetV2 net(o);
  EXPECT_DOUBLE_EQ(count_forward_flops(*net,
                                       [&] {
                                         net->logits(torch::zeros({1, 3, 64, 64}));
                                       })
                       .total(),
                   net->flops_per_image());
}

TEST(FlopCount, LeavesModesAndBatchNormStatisticsAlone) {
  DcganDiscriminator d(DcganOptions::seed32());
  d->train();
  d->convs_[1]->eval();  // one submodule in its own mode
  const torch::Tensor mean_before = d->convs_[1]->named_buffers()["1.running_mean"].clone();
  const auto before = d->named_buffers()["conv3.1.num_batches_tracked"].item<int64_t>();
  count_forward_flops(*d, [&] {
    EXPECT_FALSE(d->is_training());
    d->forward(torch::randn({1, 3, 32, 32}));
  });
  EXPECT_TRUE(d->is_training());
  EXPECT_FALSE(d->convs_[1]->is_training());
  EXPECT_TRUE(d->convs_[2]->is_training());
  EXPECT_TRUE(torch::equal(d->convs_[1]->named_buffers()["1.running_mean"], mean_before));
  EXPECT_EQ(d->named_buffers()["conv3.1.num_batches_tracked"].item<int64_t>(), before);
  // A forward that throws restores the modes too.
  EXPECT_THROW(count_forward_flops(*d, [&] { d->forward(torch::zeros({1, 2, 8, 8})); }), UserError);
  EXPECT_TRUE(d->is_training());
  EXPECT_FALSE(d->convs_[1]->is_training());
}

}  // namespace
}  // namespace facetrain
