// The flags of one subcommand, declared once and parsed once: every subcommand in launcher/commands/ goes
// through CommandLine, so every mistake is one UserError line that names the flag (cxxopts' own messages,
// e.g. "Argument 'abc' failed to parse", name no flag), --help works the same everywhere and a stray
// argument is an error. cxxopts stays behind this header (launcher/ only).
#pragma once

#include <cstdint>
#include <limits>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace facetrain {

class CommandLine {
 public:
  // `argv[0]` is "facetrain <command>" (the launcher sets it); `summary` heads the help text.
  CommandLine(const std::string& program, const std::string& summary);
  ~CommandLine();
  CommandLine(const CommandLine&) = delete;
  CommandLine& operator=(const CommandLine&) = delete;

  // Declarations, in the order --help lists them. All values are read as text and converted on access, so
  // a bad number names its flag.
  CommandLine& text(const std::string& name, const std::string& help, const std::string& fallback = "");
  // A text flag that must be given: "<program>: --name is required (help)".
  CommandLine& required(const std::string& name, const std::string& help);
  CommandLine& toggle(const std::string& name, const std::string& help);    // no value
  CommandLine& repeated(const std::string& name, const std::string& help);  // --name a --name b
  // Flags bound to a variable: the variable's current value is the default (shown in --help), and parse()
  // stores the flag's value there, converted (UserError naming the flag for a bad number or one below `min`).
  CommandLine& bind(const std::string& name, std::string* target, const std::string& help);
  CommandLine& bind(const std::string& name, int64_t* target, const std::string& help,
                    int64_t min = std::numeric_limits<int64_t>::min());
  CommandLine& bind(const std::string& name, double* target, const std::string& help);
  CommandLine& bind_required(const std::string& name, std::string* target, const std::string& help);

  // Runs `f` at the end of a successful parse(), after the bound flags are stored (e.g. to record whether a
  // flag was given).
  CommandLine& after_parse(std::function<void(const CommandLine&)> f);

  // Lines printed after the flags in --help (e.g. "Examples:" with commands).
  CommandLine& examples(const std::string& text);
  // The one positional argument (e.g. stats FILE); required.
  CommandLine& positional(const std::string& name, const std::string& help);

  // Parses argv (argv[0] included). Returns false after printing the help for -h/--help: the command then
  // returns 0. Throws UserError for an unknown flag, a stray argument or a missing required flag.
  bool parse(int argc, char** argv);

  const std::string& program() const { return program_; }
  bool given(const std::string& name) const;  // set on the command line (for toggles: switched on)
  std::string get(const std::string& name) const;
  std::vector<std::string> all(const std::string& name) const;  // a repeated flag's values, in order
  // Integer and floating-point values: UserError "--name 'x' is not an integer" / "... must be >= min, got v".
  int64_t integer(const std::string& name, int64_t min = std::numeric_limits<int64_t>::min()) const;
  double number(const std::string& name) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string program_;
  std::string positional_;
  std::string examples_;
  std::vector<std::function<void()>> assign_;  // bound flags, run at the end of parse()
  std::vector<std::string> required_;
};

}  // namespace facetrain
