// Mining: threshold rule, hit order, mined.csv, contact sheet and subset store (see mining.h).
#include "eval/mining.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "core/error.h"
#include "eval/files.h"
#include "eval/image_grid.h"

namespace facetrain {

void check_mining_threshold(double threshold, const std::string& what) {
  FT_USER_CHECK(std::isfinite(threshold) && threshold > 0 && threshold <= 1,
                what << " must be in (0, 1] (a probability), got " << threshold);
}

std::vector<MinedImage> select_hits(const std::vector<int64_t>& indices, const std::vector<float>& scores,
                                    double threshold) {
  check_mining_threshold(threshold);
  FT_CHECK(indices.size() == scores.size(), "indices and scores differ in length");
  const float cut = static_cast<float>(threshold);
  std::vector<MinedImage> hits;
  for (size_t i = 0; i < scores.size(); ++i) {
    if (scores[i] >= cut) hits.push_back({indices[i], scores[i]});
  }
  std::sort(hits.begin(), hits.end(), [](const MinedImage& a, const MinedImage& b) {
    return a.score != b.score ? a.score > b.score : a.index < b.index;
  });
  return hits;
}

std::string mined_csv(const std::vector<MinedImage>& hits, const std::vector<std::string>& filenames,
                      const std::vector<int32_t>& identities) {
  std::ostringstream out;
  out << "index,file_name,score" << (identities.empty() ? "" : ",identity") << "\n";
  char score[32];
  for (const MinedImage& hit : hits) {
    std::snprintf(score, sizeof(score), "%.9g", hit.score);  // round-trips a float
    out << hit.index << "," << csv_field(filenames.at(static_cast<size_t>(hit.index))) << "," << score;
    if (!identities.empty()) out << "," << identities.at(static_cast<size_t>(hit.index));
    out << "\n";
  }
  return out.str();
}

int64_t write_contact_sheet(StoreReader& store, const std::vector<MinedImage>& hits, int64_t max_images, int columns,
                            const std::string& path) {
  const int64_t n = std::min<int64_t>(static_cast<int64_t>(hits.size()), std::max<int64_t>(max_images, 0));
  if (n == 0) return 0;
  const StoreInfo& info = store.info();
  std::vector<int64_t> indices(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) indices[i] = hits[i].index;
  torch::Tensor pixels = torch::empty({n, info.height, info.width, info.channels}, torch::kUInt8);
  store.read_images(indices.data(), n, pixels.data_ptr<uint8_t>());
  if (columns <= 0) columns = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n))));
  write_png(path, make_image_grid(pixels.permute({0, 3, 1, 2}).to(torch::kFloat32), columns, 0.0f, 255.0f));
  return n;
}

int64_t write_subset_store(StoreReader& store, const std::vector<MinedImage>& hits, const std::string& path,
                           bool keep_splits, bool overwrite) {
  const StoreInfo& info = store.info();
  StoreWriter writer(path, layout_of(info), overwrite);

  std::vector<int64_t> order;
  order.reserve(hits.size());
  for (const MinedImage& hit : hits) order.push_back(hit.index);
  std::sort(order.begin(), order.end());
  const std::vector<int64_t> labels = store.labels();
  const std::vector<uint8_t> splits = store.splits();
  const std::vector<std::string> filenames = store.filenames();
  const std::vector<int32_t> identities = info.has_identities ? store.identities() : std::vector<int32_t>{};
  const std::vector<int8_t> attributes = info.attribute_names.empty() ? std::vector<int8_t>{} : store.attributes();
  const size_t attribute_count = info.attribute_names.size();

  // Bounded memory: images are read and appended in blocks.
  constexpr int64_t kBlock = 256;
  const int64_t bytes = store.image_bytes();
  std::vector<uint8_t> block(static_cast<size_t>(kBlock * bytes));
  for (size_t begin = 0; begin < order.size(); begin += kBlock) {
    const int64_t count = std::min<int64_t>(kBlock, static_cast<int64_t>(order.size() - begin));
    store.read_images(order.data() + begin, count, block.data());
    for (int64_t k = 0; k < count; ++k) {
      const auto index = static_cast<size_t>(order[begin + k]);
      std::vector<int8_t> attrs;
      if (attribute_count) {
        attrs.assign(attributes.begin() + index * attribute_count, attributes.begin() + (index + 1) * attribute_count);
      }
      const Split split = keep_splits ? static_cast<Split>(splits[index]) : Split::kTrain;
      writer.append(block.data() + k * bytes, labels[index], split, filenames[index], attrs,
                    identities.empty() ? -1 : identities[index]);
    }
  }
  writer.finish();
  return writer.count();
}

}  // namespace facetrain
