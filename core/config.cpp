// Run config loading: text-format parsing with file:line:column errors, --set overrides through
// reflection (so an unknown field is named), and validation of required fields and ranges.
#include "core/config.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <cctype>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace facetrain {
namespace {

namespace pb = google::protobuf;

// Collects the first parse error as "file:line:col: message" (TextFormat reports 0-based positions).
class FirstError : public pb::io::ErrorCollector {
 public:
  explicit FirstError(std::string source) : source_(std::move(source)) {}
  void AddError(int line, int column, const std::string& message) override {
    if (!message_.empty()) return;
    line_ = line;
    column_ = column;
    std::ostringstream oss;
    oss << source_ << ":" << line + 1 << ":" << column + 1 << ": " << message;
    message_ = oss.str();
  }
  int line() const { return line_; }
  int column() const { return column_; }
  void AddWarning(int, int, const std::string&) override {}
  const std::string& message() const { return message_; }

 private:
  std::string source_;
  std::string message_;
  int line_ = -1, column_ = -1;
};

// Protobuf names the bad token but not always the field ("Expected integer, got: x"): find the
// "name:" nearest before the error column on that line so the message names the field too.
std::string field_at(const std::string& text, int line, int column) {
  std::stringstream ss(text);
  std::string row;
  for (int i = 0; i <= line && std::getline(ss, row);) ++i;
  if (line < 0 || column < 0) return "";
  row = row.substr(0, std::min<size_t>(row.size(), static_cast<size_t>(column)));
  const auto colon = row.rfind(':');
  if (colon == std::string::npos) return "";
  size_t begin = colon;
  while (begin > 0 && (std::isalnum(static_cast<unsigned char>(row[begin - 1])) || row[begin - 1] == '_')) --begin;
  return row.substr(begin, colon - begin);
}

bool needs_quotes(const pb::FieldDescriptor* field, const std::string& value) {
  if (field->cpp_type() != pb::FieldDescriptor::CPPTYPE_STRING) return false;
  return value.empty() || (value.front() != '"' && value.front() != '\'');
}

}  // namespace

void apply_override(proto::RunConfig* config, const std::string& assignment, const std::string& label) {
  const std::string what = label + " " + assignment;
  const auto eq = assignment.find('=');
  FT_USER_CHECK(eq != std::string::npos && eq > 0, what << ": expected field.path=value");
  const std::string path = assignment.substr(0, eq);
  const std::string value = assignment.substr(eq + 1);

  // Walk the path first so an unknown field is named precisely.
  std::vector<const pb::FieldDescriptor*> fields;
  const pb::Descriptor* descriptor = proto::RunConfig::descriptor();
  std::stringstream ss(path);
  for (std::string name; std::getline(ss, name, '.');) {
    FT_USER_CHECK(descriptor != nullptr, what << ": '" << fields.back()->name() << "' is not a message");
    const pb::FieldDescriptor* field = descriptor->FindFieldByName(name);
    FT_USER_CHECK(field != nullptr,
                  what << ": no field '" << name << "' in " << descriptor->name() << " (see core/config.proto)");
    fields.push_back(field);
    descriptor = field->message_type();
  }
  const pb::FieldDescriptor* leaf = fields.back();
  FT_USER_CHECK(leaf->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE,
                what << ": '" << path << "' is a message; set one of its fields");

  // Let TextFormat parse the value (it knows every type and escape) from "a { b { c: value } }";
  // a repeated field takes comma-separated values and replaces the list.
  std::vector<std::string> values{value};
  if (leaf->is_repeated()) {
    values.clear();
    std::stringstream items(value);
    for (std::string item; std::getline(items, item, ',');) values.push_back(item);
  }
  std::string text;
  for (size_t i = 0; i + 1 < fields.size(); ++i) text += fields[i]->name() + " { ";
  for (const auto& v : values) text += leaf->name() + ": " + (needs_quotes(leaf, v) ? "\"" + v + "\"" : v) + " ";
  for (size_t i = 0; i + 1 < fields.size(); ++i) text += "} ";

  FirstError errors(what);
  pb::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  proto::RunConfig patch;
  if (!parser.ParseFromString(text, &patch)) {
    const std::string& detail = errors.message();
    const auto colon = detail.rfind(": ");
    throw UserError(what + ": bad value '" + value + "' for " + leaf->type_name() + " field '" + path + "'" +
                    (colon == std::string::npos ? "" : " (" + detail.substr(colon + 2) + ")"));
  }
  if (leaf->is_repeated()) {
    pb::Message* target = config;
    for (size_t i = 0; i + 1 < fields.size(); ++i) target = target->GetReflection()->MutableMessage(target, fields[i]);
    target->GetReflection()->ClearField(target, leaf);
  }
  // MergeFrom overwrites singular fields and switches the model oneof when another kind is set.
  config->MergeFrom(patch);
}

void validate_run_config(const proto::RunConfig& c, const std::string& source) {
  if (c.model().kind_case() == proto::ModelConfig::KIND_NOT_SET) {
    const google::protobuf::OneofDescriptor* kind = proto::ModelConfig::descriptor()->FindOneofByName("kind");
    std::string names;
    for (int i = 0; i < kind->field_count(); ++i) names += (i ? ", " : "") + kind->field(i)->name();
    throw UserError(source + ": field 'model' must set one of " + names);
  }
  FT_USER_CHECK(!c.data().store().empty(), source << ": field 'data.store' is required (an HDF5 store from "
                                                     "`facetrain ingest` or `facetrain synth`)");
  FT_USER_CHECK(!c.logging().run_dir().empty(), source << ": field 'logging.run_dir' is required");
  FT_USER_CHECK(c.data().batch_size() > 0, source << ": field 'data.batch_size' must be > 0");
  FT_USER_CHECK(c.data().loader_threads() > 0, source << ": field 'data.loader_threads' must be > 0");
  FT_USER_CHECK(c.data().prefetch_batches() > 0, source << ": field 'data.prefetch_batches' must be > 0");
  FT_USER_CHECK(c.distributed().host_memory_cache_mb() >= 0,
                source << ": field 'distributed.host_memory_cache_mb' must be >= 0");
  const std::string& normalize_on = c.data().normalize_on();
  FT_USER_CHECK(normalize_on == "auto" || normalize_on == "host" || normalize_on == "device",
                source << ": field 'data.normalize_on' must be auto, host or device (got '" << normalize_on << "')");
  FT_USER_CHECK(c.optimizer().lr() > 0, source << ": field 'optimizer.lr' must be > 0");
  const std::string& opt = c.optimizer().kind();
  FT_USER_CHECK(opt == "adamw" || opt == "adam" || opt == "sgd",
                source << ": field 'optimizer.kind' must be adamw, adam or sgd (got '" << opt << "')");
  FT_USER_CHECK(c.schedule().epochs() > 0 || c.schedule().max_steps() > 0,
                source << ": field 'schedule.epochs' or 'schedule.max_steps' must be > 0");
  FT_USER_CHECK(c.schedule().accumulation_steps() >= 1, source << ": field 'schedule.accumulation_steps' must be >= 1");
  const std::string& decay = c.schedule().decay();
  FT_USER_CHECK(decay == "cosine" || decay == "constant",
                source << ": field 'schedule.decay' must be cosine or constant (got '" << decay << "')");
  const std::string& backend = c.distributed().backend();
  FT_USER_CHECK(backend == "auto" || backend == "mpi" || backend == "nccl",
                source << ": field 'distributed.backend' must be auto, mpi or nccl (got '" << backend << "')");
  const std::string& precision = c.distributed().precision();
  FT_USER_CHECK(precision == "fp32" || precision == "bf16" || precision == "fp16",
                source << ": field 'distributed.precision' must be fp32, bf16 or fp16 (got '" << precision << "')");
  const std::string& memory_format = c.distributed().memory_format();
  FT_USER_CHECK(memory_format == "auto" || memory_format == "channels_last" || memory_format == "contiguous",
                source << ": field 'distributed.memory_format' must be auto, channels_last or contiguous (got '"
                       << memory_format << "')");
  FT_USER_CHECK(c.distributed().bucket_cap_mb() > 0, source << ": field 'distributed.bucket_cap_mb' must be > 0");
  FT_USER_CHECK(c.distributed().first_bucket_mb() > 0, source << ": field 'distributed.first_bucket_mb' must be > 0");
  FT_USER_CHECK(c.checkpoint().keep_last() >= 1, source << ": field 'checkpoint.keep_last' must be >= 1");
  const std::string& preempt = c.checkpoint().preemption_signal();
  FT_USER_CHECK(
      preempt == "USR1" || preempt == "USR2" || preempt == "TERM",
      source << ": field 'checkpoint.preemption_signal' must be USR1, USR2 or TERM (got '" << preempt << "')");
  // The model section's own fields are checked by its spec (models/model_spec.h check_model_config).
}

proto::RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides,
                                 const std::string& override_label) {
  std::ifstream in(path);
  FT_USER_CHECK(in.good(), path << ": cannot read the config file (does it exist?)");
  std::stringstream buffer;
  buffer << in.rdbuf();
  proto::RunConfig config;
  FirstError errors(path);
  pb::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(buffer.str(), &config)) {
    const std::string field = field_at(buffer.str(), errors.line(), errors.column());
    throw UserError(errors.message() + (field.empty() ? "" : " (field '" + field + "')"));
  }
  for (const auto& o : overrides) apply_override(&config, o, override_label);
  validate_run_config(config, overrides.empty() ? path : path + " (with " + override_label + " overrides)");
  return config;
}

std::string to_text(const proto::RunConfig& config) {
  std::string text;
  pb::TextFormat::PrintToString(config, &text);
  return text;
}

}  // namespace facetrain
