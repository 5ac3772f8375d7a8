// DCGAN samples, interpolations and their class histogram (see samples.h).
#include "eval/samples.h"

#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <sstream>

#include "comm/communicator.h"
#include "core/error.h"
#include "core/log.h"
#include "models/checkpoint.h"
#include "eval/loaded_model.h"
#include "eval/files.h"
#include "eval/interpolation.h"
#include "eval/image_grid.h"
#include "runtime/setup_agreement.h"

namespace facetrain {
namespace {

// Generator outputs for `z` in batches (eval mode: BatchNorm uses running statistics, so a sample does not
// depend on the batch it is generated in).
torch::Tensor generate(ImageGenerator& generator, const torch::Tensor& z, int64_t batch, torch::Device device) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> parts;
  for (int64_t begin = 0; begin < z.size(0); begin += batch) {
    const int64_t end = std::min(z.size(0), begin + batch);
    parts.push_back(generator.generate(z.slice(0, begin, end).to(device)).to(torch::kCPU));
  }
  return parts.empty() ? torch::empty({0}) : torch::cat(parts);
}

}  // namespace

void write_dcgan_samples(const SamplesRequest& request, ProcessContext& ctx) {
  const std::string& checkpoint = request.checkpoint;
  const std::string& output = request.output;
  const std::string& classifier_path = request.classifier;
  const std::string& store_path = request.store;
  const int64_t count = request.count, columns = request.columns, rows = request.interpolations;
  const int64_t steps = request.steps, classify_count = request.classify_count, batch = request.batch;
  const int64_t seed = request.seed;
  // The request as the launcher checked it (samples.h).
  FT_CHECK(classifier_path.empty() || !store_path.empty(), "a classifier without its store");
  FT_CHECK(count > 0 && columns > 0 && rows >= 0 && (rows == 0 || steps >= 2) && batch > 0 &&
               (classifier_path.empty() || classify_count > 0),
           "count " << count << ", columns " << columns << ", interpolations " << rows << ", steps " << steps
                    << ", classify_count " << classify_count << ", batch " << batch);

  std::unique_ptr<StoreReader> store;
  StoreInfo shape;
  if (!store_path.empty()) {
    store = std::make_unique<StoreReader>(store_path);
    shape = store->info();
  } else {
    const std::string path = resolve_checkpoint_path(checkpoint, request.checkpoint_name);
    FT_CHECK(!is_safetensors_path(path), path << ": a safetensors file without a store (no image size)");
    shape = model_input_from_checkpoint(path);
  }
  const LoadedModel gan = load_model_for_eval(checkpoint, request.model_config, shape, ctx.device, ModelWeights::kRaw,
                                              ModelInputNames{request.checkpoint_name, request.store_name});
  ImageGenerator& generator_net = gan.need<ImageGenerator>("a generator (dcgan)");
  const int64_t z_size = generator_net.latent_size();
  LoadedModel classifier;  // no spec without --classifier
  ImageClassifier* classifier_net = nullptr;
  if (!classifier_path.empty()) {
    classifier = load_model_for_eval(classifier_path, request.classifier_config, store->info(), ctx.device,
                                     ModelWeights::kRaw, ModelInputNames{request.classifier_name, request.store_name});
    classifier_net = &classifier.need<ImageClassifier>("a classifier");
  }
  log("eval samples: " + gan.source + " (" + std::to_string(shape.height) + "x" + std::to_string(shape.width) + "x" +
      std::to_string(shape.channels) + ", z " + std::to_string(z_size) + "), seed " + std::to_string(seed));

  // Latents: one stream from --seed, identical on every rank: the grid's z, then the interpolation endpoints,
  // then the classified samples' z (the grid's z are their first `count`, so the grid shows a sample of them).
  auto generator = torch::make_generator<torch::CPUGeneratorImpl>(static_cast<uint64_t>(seed));
  const int64_t classified = classifier_path.empty() ? 0 : classify_count;
  const torch::Tensor sample_z = torch::randn({std::max(count, classified), z_size}, generator);
  const torch::Tensor starts = torch::randn({rows, z_size}, generator);
  const torch::Tensor ends = torch::randn({rows, z_size}, generator);
  const std::filesystem::path dir(output);

  if (ctx.rank == 0) {  // (rank 0 only) the grids: a few hundred images at most
    const std::string grid_path = (dir / "samples.png").string();
    write_png(grid_path, make_image_grid(generate(generator_net, sample_z.slice(0, 0, count), batch, ctx.device),
                                         static_cast<int>(columns), -1.0f, 1.0f));
    log("eval samples: " + std::to_string(count) + " samples: " + grid_path);
    if (rows > 0) {
      for (const bool spherical : {false, true}) {
        const std::string path =
            (dir / (spherical ? "interpolations_spherical.png" : "interpolations_linear.png")).string();
        const torch::Tensor z = interpolation_latents(starts, ends, steps, spherical);
        write_png(path,
                  make_image_grid(generate(generator_net, z, batch, ctx.device), static_cast<int>(steps), -1.0f, 1.0f));
        log("eval samples: " + std::to_string(rows) + " " + (spherical ? "spherical" : "linear") +
            " interpolations of " + std::to_string(steps) + " steps: " + path);
      }
    }
  }

  // Every rank's flags, files and models are good, and rank 0's grids are written (else: one line, no abort).
  agree_setup_done(*ctx.comm);

  if (!classifier_path.empty()) {
    // (collective) every rank classifies a contiguous, non-padded slice of the samples; gathered in order.
    std::vector<int64_t> all(static_cast<size_t>(classified));
    for (int64_t i = 0; i < classified; ++i) all[i] = i;
    const std::vector<int64_t> mine = eval_shard(all, ctx.rank, ctx.world_size);
    torch::Tensor local = torch::empty({0, classifier_net->num_classes()});
    if (!mine.empty()) {
      torch::NoGradGuard no_grad;
      const torch::Tensor images =
          generate(generator_net, sample_z.slice(0, mine.front(), mine.back() + 1), batch, ctx.device);
      std::vector<torch::Tensor> probs;
      for (int64_t begin = 0; begin < images.size(0); begin += batch) {
        const torch::Tensor x = generated_to_classifier_input(images.slice(0, begin, begin + batch), store->info(),
                                                              classifier.normalization, request.store_name);
        probs.push_back(torch::softmax(classifier_net->logits(x.to(ctx.device)), 1).to(torch::kCPU, torch::kFloat32));
      }
      local = torch::cat(probs).contiguous();
    }
    const torch::Tensor gathered = ctx.comm->all_gather(local);
    FT_CHECK(gathered.size(0) == classified, "gathered " << gathered.size(0) << " of " << classified << " samples");
    const torch::Tensor predicted = gathered.argmax(1).contiguous();
    const std::vector<int64_t> labels(predicted.data_ptr<int64_t>(), predicted.data_ptr<int64_t>() + predicted.numel());
    const ClassHistogram histogram = class_histogram(labels, store->info().class_names);

    if (ctx.rank == 0) {  // (rank 0 only)
      nlohmann::json j = class_histogram_json(histogram);
      j["generator"] = gan.source;
      j["classifier"] = classifier.source;
      j["seed"] = seed;
      write_text_file((dir / "class_histogram.json").string(), j.dump(2) + "\n");
      std::ostringstream csv;
      csv << "sample,predicted_label,predicted_class,score\n";
      const torch::Tensor best = std::get<0>(gathered.max(1)).contiguous();
      for (int64_t i = 0; i < classified; ++i) {
        char score[32];
        std::snprintf(score, sizeof(score), "%.9g", best[i].item<float>());
        csv << i << "," << labels[i] << "," << csv_field(histogram.class_names[labels[i]]) << "," << score << "\n";
      }
      write_text_file((dir / "sample_classes.csv").string(), csv.str());
      std::ostringstream table;
      char line[256];
      std::snprintf(line, sizeof(line), "%lld samples classified by %s: entropy %.3f bits of at most %.3f (%.1f%%)",
                    static_cast<long long>(histogram.total), classifier.source.c_str(), histogram.entropy_bits,
                    histogram.max_entropy_bits,
                    histogram.max_entropy_bits > 0 ? 100 * histogram.entropy_bits / histogram.max_entropy_bits : 0.0);
      table << line;
      for (size_t c = 0; c < histogram.counts.size(); ++c) {
        std::snprintf(line, sizeof(line), "\n  %-24.24s %7lld  %5.1f%%", histogram.class_names[c].c_str(),
                      static_cast<long long>(histogram.counts[c]),
                      histogram.total ? 100.0 * histogram.counts[c] / histogram.total : 0.0);
        table << line;
      }
      log(table.str());
      log("eval samples: wrote " + (dir / "class_histogram.json").string() + " and " +
          (dir / "sample_classes.csv").string());
    }
  }
  ctx.comm->barrier();
}

}  // namespace facetrain
