// The model table is complete and every entry answers its questions: a spec for every case of the config's
// `model` oneof (walked from the descriptor, so a new case without a spec fails here), each spec builds a
// model whose main module offers its role's capability, and classifier configs carry the shared fields.
#include <gtest/gtest.h>
#include <google/protobuf/descriptor.h>

#include <set>

#include "core/error.h"
#include "models/memory_format.h"
#include "models/model_spec.h"

namespace facetrain {
namespace {

// A run config selecting the oneof case `field` with its defaults (plus small sizes where they matter).
proto::RunConfig config_selecting(const google::protobuf::FieldDescriptor* field) {
  proto::RunConfig config;
  config.mutable_model()->GetReflection()->MutableMessage(config.mutable_model(), field);
  if (config.model().has_vit()) {
    auto* v = config.mutable_model()->mutable_vit();
    v->set_patch_size(8);
    v->set_width(16);
    v->set_depth(1);
    v->set_heads(2);
  }
  return config;
}

StoreInfo small_input() {
  StoreInfo in;
  in.height = in.width = 32;
  in.channels = 3;
  for (int k = 0; k < 10; ++k) in.class_names.push_back("class " + std::to_string(k));
  return in;
}

TEST(ModelSpec, EveryOneofCaseHasASpec) {
  const google::protobuf::OneofDescriptor* kind = proto::ModelConfig::descriptor()->FindOneofByName("kind");
  ASSERT_NE(kind, nullptr);
  ASSERT_EQ(static_cast<size_t>(kind->field_count()), model_specs().size())
      << "a spec without a oneof case, or the reverse";
  for (int i = 0; i < kind->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* field = kind->field(i);
    const ModelSpec* spec = find_model_spec(field->name());
    ASSERT_NE(spec, nullptr) << "model." << field->name() << " has no spec in models/model_spec.cpp";
    EXPECT_EQ(spec->config_case, field->number()) << field->name();
    EXPECT_EQ(&model_spec_of(config_selecting(field)), spec) << field->name();
    EXPECT_FALSE(spec->description.empty()) << field->name();
  }
}

// distributed.memory_format applies to the convolutional models only; to_channels_last re-lays every 4-D weight
// out in place (the same tensors: optimizers and gradient buckets keep them), and a classifier's logits are
// the same in either layout (the e2e test trainer_memory_format_np2 trains each model both ways).
TEST(ModelSpec, ConvolutionalModelsGoChannelsLastInPlace) {
  const google::protobuf::OneofDescriptor* kind = proto::ModelConfig::descriptor()->FindOneofByName("kind");
  for (int i = 0; i < kind->field_count(); ++i) {
    const proto::RunConfig config = config_selecting(kind->field(i));
    const ModelSpec& spec = model_spec_of(config);
    EXPECT_EQ(spec.convolutional, spec.name != "vit") << spec.name;
    if (!spec.convolutional) continue;
    const std::vector<NamedModule> modules = spec.build(config, small_input());
    torch::Tensor before;
    ImageClassifier* net = model_capability<ImageClassifier>(spec, modules);
    const torch::Tensor images = torch::randn({2, 3, 32, 32});
    if (net != nullptr) {
      modules[0].module->eval();
      torch::NoGradGuard no_grad;
      before = net->logits(images);
    }
    for (const auto& m : modules) {
      std::vector<const void*> identity;
      for (const auto& p : m.module->parameters()) identity.push_back(p.unsafeGetTensorImpl());
      to_channels_last(*m.module);
      size_t k = 0;
      int four_d = 0;
      for (const auto& p : m.module->parameters()) {
        EXPECT_EQ(p.unsafeGetTensorImpl(), identity[k++]) << spec.name << ": a parameter was replaced";
        if (p.dim() != 4) continue;
        ++four_d;
        EXPECT_TRUE(p.is_contiguous(torch::MemoryFormat::ChannelsLast)) << spec.name << " " << p.sizes();
      }
      EXPECT_GT(four_d, 0) << spec.name << " " << m.name;
    }
    if (net != nullptr) {
      torch::NoGradGuard no_grad;
      const torch::Tensor after = net->logits(in_memory_format(images, true));
      EXPECT_TRUE(torch::allclose(after, before, 1e-4, 1e-5)) << spec.name << ": " << (after - before).abs().max();
    }
  }
}

TEST(ModelSpec, NamesAreUnique) {
  std::set<std::string> names;
  for (const auto& spec : model_specs()) EXPECT_TRUE(names.insert(spec.name).second) << spec.name;
}

TEST(ModelSpec, EveryModelOffersItsRolesCapability) {
  const google::protobuf::OneofDescriptor* kind = proto::ModelConfig::descriptor()->FindOneofByName("kind");
  for (int i = 0; i < kind->field_count(); ++i) {
    const proto::RunConfig config = config_selecting(kind->field(i));
    const ModelSpec& spec = model_spec_of(config);
    const std::vector<NamedModule> modules = spec.build(config, small_input());
    ASSERT_FALSE(modules.empty()) << spec.name;
    const bool classifier = model_capability<ImageClassifier>(spec, modules) != nullptr;
    const bool generator = model_capability<ImageGenerator>(spec, modules) != nullptr;
    const bool autoencoder = model_capability<ImageAutoencoder>(spec, modules) != nullptr;
    EXPECT_EQ(classifier, spec.role == ModelRole::kClassifier) << spec.name;
    EXPECT_EQ(generator, spec.role == ModelRole::kGenerator) << spec.name;
    EXPECT_EQ(autoencoder, spec.role == ModelRole::kAutoencoder) << spec.name;
    if (classifier) {
      ImageClassifier& net = *model_capability<ImageClassifier>(spec, modules);
      EXPECT_EQ(net.num_classes(), 10) << spec.name;
      torch::NoGradGuard no_grad;
      modules[0].module->eval();
      EXPECT_EQ(net.logits(torch::zeros({2, 3, 32, 32})).sizes(), (std::vector<int64_t>{2, 10})) << spec.name;
      EXPECT_GT(net.flops_per_image(), 0) << spec.name;
      const ParameterLayers layers = net.parameter_layers();
      EXPECT_EQ(layers.parameters.size(), modules[0].module->parameters().size()) << spec.name;
    }
  }
}

// A DCGAN's discriminator has a classifier's shape, but a DCGAN is not a classifier: its spec's main module
// is the generator.
TEST(ModelSpec, ADcganIsNoClassifier) {
  const ModelSpec& dcgan = *find_model_spec("dcgan");
  proto::RunConfig config;
  config.mutable_model()->mutable_dcgan();
  const std::vector<NamedModule> modules = dcgan.build(config, small_input());
  EXPECT_EQ(model_capability<ImageClassifier>(dcgan, modules), nullptr);
  EXPECT_NE(model_capability<ImageGenerator>(dcgan, modules), nullptr);
}

// The shared classifier fields, read by name from whichever message the config selects.
TEST(ModelSpec, ClassifierMessagesCarryTheSharedFields) {
  const google::protobuf::OneofDescriptor* kind = proto::ModelConfig::descriptor()->FindOneofByName("kind");
  for (int i = 0; i < kind->field_count(); ++i) {
    const ModelSpec* spec = find_model_spec(kind->field(i)->name());
    if (!spec->is_classifier()) continue;
    const google::protobuf::Descriptor* message = kind->field(i)->message_type();
    EXPECT_NE(message->FindFieldByName("class_weights"), nullptr) << spec->name;
    EXPECT_NE(message->FindFieldByName("label_smoothing"), nullptr) << spec->name;
    // A spec that loads foreign weights takes them from model.<name>.pretrained.
    EXPECT_EQ(message->FindFieldByName("pretrained") != nullptr, static_cast<bool>(spec->load_foreign)) << spec->name;
  }
  proto::RunConfig config;
  config.mutable_model()->mutable_cnn()->set_label_smoothing(0.25f);
  config.mutable_model()->mutable_cnn()->set_class_weights(true);
  const ClassifierSettings s = classifier_settings(config);
  EXPECT_TRUE(s.class_weights);
  EXPECT_DOUBLE_EQ(s.label_smoothing, 0.25);
  EXPECT_TRUE(s.pretrained.empty());
}

// A model section's bad field is one line naming it, before anything is built.
TEST(ModelSpec, ConfigChecksNameTheField) {
  auto error_of = [](const proto::RunConfig& c) {
    try {
      check_model_config(c, "run.pbtxt");
    } catch (const UserError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  proto::RunConfig vit;
  vit.mutable_model()->mutable_vit()->set_width(64);
  vit.mutable_model()->mutable_vit()->set_heads(5);
  EXPECT_NE(error_of(vit).find("run.pbtxt: field 'model.vit.width' (64) must be a multiple of 'model.vit.heads'"),
            std::string::npos);
  proto::RunConfig dcgan;
  dcgan.mutable_model()->mutable_dcgan()->set_architecture("paper128");
  EXPECT_NE(error_of(dcgan).find("model.dcgan.architecture"), std::string::npos);
  proto::RunConfig vae;
  vae.mutable_model()->mutable_vae()->set_reconstruction("huber");
  EXPECT_NE(error_of(vae).find("model.vae.reconstruction"), std::string::npos);
  proto::RunConfig cnn;
  cnn.mutable_model()->mutable_cnn();
  EXPECT_EQ(error_of(cnn), "");
}

TEST(ModelSpec, AConfigWithoutAModelIsOneLineNamingEveryKind) {
  try {
    model_spec_of(proto::RunConfig(), "run.pbtxt");
    FAIL() << "no UserError";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()), "run.pbtxt: field 'model' must set one of vit, dcgan, vae, mobilenet_v2, cnn");
  }
}

}  // namespace
}  // namespace facetrain
