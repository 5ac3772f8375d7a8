// CommandLine over cxxopts (see flags.h).
#include "launcher/flags.h"

#include <cxxopts.hpp>

#include <sstream>

#include "core/error.h"
#include "core/log.h"

namespace facetrain {

struct CommandLine::Impl {
  explicit Impl(const std::string& program, const std::string& summary) : options(program, summary) {}
  cxxopts::Options options;
  cxxopts::ParseResult args;
};

CommandLine::CommandLine(const std::string& program, const std::string& summary)
    : impl_(std::make_unique<Impl>(program, summary)), program_(program) {}

CommandLine::~CommandLine() = default;

CommandLine& CommandLine::text(const std::string& name, const std::string& help, const std::string& fallback) {
  impl_->options.add_options()(name, help, cxxopts::value<std::string>()->default_value(fallback));
  return *this;
}

CommandLine& CommandLine::required(const std::string& name, const std::string& help) {
  impl_->options.add_options()(name, help + " (required)", cxxopts::value<std::string>());
  required_.push_back(name);
  return *this;
}

CommandLine& CommandLine::toggle(const std::string& name, const std::string& help) {
  impl_->options.add_options()(name, help);
  return *this;
}

CommandLine& CommandLine::repeated(const std::string& name, const std::string& help) {
  impl_->options.add_options()(name, help + " (repeatable)", cxxopts::value<std::vector<std::string>>());
  return *this;
}

CommandLine& CommandLine::bind(const std::string& name, std::string* target, const std::string& help) {
  text(name, help, *target);
  assign_.push_back([this, name, target] { *target = get(name); });
  return *this;
}

CommandLine& CommandLine::bind(const std::string& name, int64_t* target, const std::string& help, int64_t min) {
  text(name, help, std::to_string(*target));
  assign_.push_back([this, name, target, min] { *target = integer(name, min); });
  return *this;
}

CommandLine& CommandLine::bind(const std::string& name, double* target, const std::string& help) {
  std::ostringstream fallback;
  fallback << *target;  // shortest form: 0.5, 12, 0.995
  text(name, help, fallback.str());
  assign_.push_back([this, name, target] { *target = number(name); });
  return *this;
}

CommandLine& CommandLine::bind_required(const std::string& name, std::string* target, const std::string& help) {
  required(name, help);
  assign_.push_back([this, name, target] { *target = get(name); });
  return *this;
}

CommandLine& CommandLine::after_parse(std::function<void(const CommandLine&)> f) {
  assign_.push_back([this, f = std::move(f)] { f(*this); });
  return *this;
}

CommandLine& CommandLine::examples(const std::string& text) {
  examples_ = text;
  return *this;
}

CommandLine& CommandLine::positional(const std::string& name, const std::string& help) {
  impl_->options.add_options()(name, help, cxxopts::value<std::string>());
  impl_->options.parse_positional({name});
  impl_->options.positional_help(name == "file" ? "FILE" : name);
  positional_ = name;
  return *this;
}

bool CommandLine::parse(int argc, char** argv) {
  impl_->options.add_options()("h,help", "show this help");
  try {
    impl_->args = impl_->options.parse(argc, argv);
  } catch (const cxxopts::exceptions::exception& e) {
    throw UserError(program_ + ": " + e.what());
  }
  if (impl_->args.count("help")) {
    log(impl_->options.help() + (examples_.empty() ? "" : "\nExamples:\n" + examples_ + "\n"));
    return false;
  }
  FT_USER_CHECK(impl_->args.unmatched().empty(),
                program_ << ": unexpected argument '" << impl_->args.unmatched().front() << "'");
  if (!positional_.empty()) {
    FT_USER_CHECK(given(positional_), program_ << ": " << (positional_ == "file" ? "FILE" : positional_)
                                               << " is required (" << program_ << " --help)");
  }
  for (const auto& name : required_) {
    FT_USER_CHECK(given(name) && !get(name).empty(), program_ << ": --" << name << " is required");
  }
  for (const auto& assign : assign_) assign();
  return true;
}

bool CommandLine::given(const std::string& name) const { return impl_->args.count(name) > 0; }

std::string CommandLine::get(const std::string& name) const {
  if (!impl_->args.count(name) && !impl_->args[name].has_default()) return "";
  return impl_->args[name].as<std::string>();
}

std::vector<std::string> CommandLine::all(const std::string& name) const {
  if (!impl_->args.count(name)) return {};
  return impl_->args[name].as<std::vector<std::string>>();
}

int64_t CommandLine::integer(const std::string& name, int64_t min) const {
  const std::string text = get(name);
  int64_t value = 0;
  try {
    size_t used = 0;
    value = std::stoll(text, &used);
    if (used != text.size()) throw std::invalid_argument(text);
  } catch (const std::logic_error&) {
    throw UserError("--" + name + " '" + text + "' is not an integer");
  }
  FT_USER_CHECK(value >= min, "--" << name << " must be >= " << min << ", got " << value);
  return value;
}

double CommandLine::number(const std::string& name) const {
  const std::string text = get(name);
  try {
    size_t used = 0;
    const double value = std::stod(text, &used);
    if (used == text.size()) return value;
  } catch (const std::logic_error&) {
  }
  throw UserError("--" + name + " '" + text + "' is not a number");
}

}  // namespace facetrain
