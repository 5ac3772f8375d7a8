// Rendering of slurm/train.sbatch (see sbatch_script.h): line-based rewriting of the #SBATCH resource lines
// and of the knob assignments, plus the flag checks of `facetrain submit`.
#include "slurm/sbatch_script.h"

#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>

#include "core/error.h"
#include "slurm/train_sbatch_text.h"  // generated from slurm/train.sbatch: kTrainSbatchText

namespace facetrain {
namespace {

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// "#SBATCH --key=value" -> key ("" for any other line). Comments after values are not allowed by sbatch.
std::string sbatch_key(const std::string& line) {
  static const std::string prefix = "#SBATCH --";
  if (line.compare(0, prefix.size(), prefix) != 0) return "";
  const size_t eq = line.find('=', prefix.size());
  return line.substr(prefix.size(), eq == std::string::npos ? std::string::npos : eq - prefix.size());
}

// "NAME=value  # comment" -> NAME ("" for any other line); knob names are upper case.
std::string knob_name(const std::string& line) {
  static const std::regex knob(R"(^([A-Z_]+)=.*)");
  std::smatch m;
  return std::regex_match(line, m, knob) ? m[1].str() : std::string();
}

// Keeps the knob's trailing "  # comment" (the template's documentation of that knob).
std::string with_value(const std::string& line, const std::string& name, const std::string& value) {
  const size_t comment = line.find("  # ");
  return name + "=" + value + (comment == std::string::npos ? std::string() : line.substr(comment));
}

}  // namespace

const std::string& train_sbatch_template() {
  static const std::string text(kTrainSbatchText);
  return text;
}

std::string shell_quote(const std::string& word) {
  static const std::regex safe(R"(^[A-Za-z0-9_./:=+,@%-]+$)");
  if (std::regex_match(word, safe)) return word;
  std::string quoted = "'";
  for (char c : word) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

std::string render_sbatch_script(const std::string& template_text, const SbatchSettings& s) {
  const std::string output = s.array.empty() ? "%x-%j.out" : "%x-%A_%a.out";
  std::map<std::string, std::string> resources{
      {"job-name", s.job_name},
      {"nodes", std::to_string(s.nodes)},
      {"ntasks-per-node", std::to_string(s.tasks_per_node)},
      // Every rank sees all of its node's GPUs (and takes the one of its local rank): NVLink/P2P paths between
      // them stay open to NCCL, which --gpus-per-task's per-task binding can close. "" drops the line (CPU).
      {"gpus-per-node", s.gpus ? std::to_string(s.tasks_per_node) : ""},
      {"cpus-per-task", std::to_string(s.cpus_per_task)},
      {"time", s.time},
      {"signal", s.preemption_signal.empty() ? "" : "B:" + s.preemption_signal + "@120"},
      {"output", output},
  };
  std::string sets = "(";
  for (size_t i = 0; i < s.sets.size(); ++i) sets += (i ? " " : "") + shell_quote(s.sets[i]);
  sets += ")";
  const std::map<std::string, std::string> knobs{
      {"CONFIG", s.config.empty() ? "" : shell_quote(s.config)},
      {"FACETRAIN", s.facetrain.empty() ? "" : shell_quote(s.facetrain)},
      {"LAUNCHER", s.launcher.empty() ? "" : shell_quote(s.launcher)},
      {"RUN_DIR", s.run_dir.empty() ? "" : shell_quote(s.run_dir)},
      {"SETS", sets},
      {"PREEMPT_SIGNAL", s.preemption_signal},
  };
  std::vector<std::string> extra;  // resource lines the template does not carry
  if (!s.partition.empty()) extra.push_back("#SBATCH --partition=" + s.partition);
  if (!s.account.empty()) extra.push_back("#SBATCH --account=" + s.account);
  if (!s.array.empty()) extra.push_back("#SBATCH --array=" + s.array);

  const std::vector<std::string> lines = split_lines(template_text);
  size_t last_sbatch = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (!sbatch_key(lines[i]).empty()) last_sbatch = i;
  }
  FT_CHECK(!lines.empty() && lines[0].rfind("#!", 0) == 0 && last_sbatch > 0,
           "the sbatch template has no shebang or no #SBATCH lines");

  std::set<std::string> seen;
  std::ostringstream out;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    const std::string key = sbatch_key(line);
    const std::string name = knob_name(line);
    if (!key.empty() && resources.count(key)) {
      seen.insert(key);
      const std::string& value = resources.at(key);
      if (key == "gpus-per-node" && value.empty()) continue;
      out << (value.empty() ? line : "#SBATCH --" + key + "=" + value) << "\n";
    } else if (!name.empty() && knobs.count(name) && !seen.count(name)) {
      seen.insert(name);  // only the first assignment is the knob; later ones are the script's own logic
      const std::string& value = knobs.at(name);
      out << (value.empty() ? line : with_value(line, name, value)) << "\n";
    } else {
      out << line << "\n";
    }
    if (i == 0 && !s.provenance.empty()) out << "# " << s.provenance << "\n";
    if (i == last_sbatch) {
      for (const auto& e : extra) out << e << "\n";
    }
  }
  for (const auto& r : resources) {
    FT_CHECK(seen.count(r.first), "the sbatch template has no '#SBATCH --" << r.first << "=' line to rewrite");
  }
  for (const auto& k : knobs) {
    FT_CHECK(seen.count(k.first), "the sbatch template has no knob '" << k.first << "=' to rewrite");
  }
  return out.str();
}

void check_time_limit(const std::string& value, const std::string& flag) {
  // days-hours[:minutes[:seconds]] or minutes[:seconds] or hours:minutes:seconds
  static const std::regex with_days(R"(^(\d+)-(\d{1,2})(?::(\d{1,2})(?::(\d{1,2}))?)?$)");
  static const std::regex without(R"(^(\d+)(?::(\d{1,2})(?::(\d{1,2}))?)?$)");
  std::smatch m;
  bool ok = false;
  if (std::regex_match(value, m, with_days)) {
    ok = std::stoi(m[2]) < 24 && (!m[3].matched || std::stoi(m[3]) < 60) && (!m[4].matched || std::stoi(m[4]) < 60);
  } else if (std::regex_match(value, m, without)) {
    // MM, MM:SS or HH:MM:SS: every field after the first is below 60
    ok = (!m[2].matched || std::stoi(m[2]) < 60) && (!m[3].matched || std::stoi(m[3]) < 60);
  }
  FT_USER_CHECK(ok, flag << " " << value
                         << ": expected a Slurm time limit such as 02:30:00 (HH:MM:SS), 90 (minutes) or 1-12:00:00");
  FT_USER_CHECK(value.find_first_not_of("0:-") != std::string::npos, flag << " " << value << ": must be > 0");
}

void check_array_spec(const std::string& value, const std::string& flag) {
  static const std::regex item(R"(^(\d+)(?:-(\d+)(?::(\d+))?)?$)");
  const std::string hint = ": expected a job array such as 0-3, 0-15%4, 1,3,5 or 0-10:2";
  std::string items = value;
  const size_t percent = value.find('%');
  if (percent != std::string::npos) {
    items = value.substr(0, percent);
    const std::string limit = value.substr(percent + 1);
    FT_USER_CHECK(!limit.empty() && limit.find_first_not_of("0123456789") == std::string::npos && std::stol(limit) > 0,
                  flag << " " << value << hint << " (%K: at most K tasks at once, K >= 1)");
  }
  FT_USER_CHECK(!items.empty() && items.front() != ',' && items.back() != ',', flag << " " << value << hint);
  std::istringstream in(items);
  for (std::string part; std::getline(in, part, ',');) {
    std::smatch m;
    FT_USER_CHECK(std::regex_match(part, m, item), flag << " " << value << hint);
    if (m[2].matched) {
      FT_USER_CHECK(std::stol(m[1]) <= std::stol(m[2]),
                    flag << " " << value << ": range " << part << " ends before it starts");
    }
    if (m[3].matched)
      FT_USER_CHECK(std::stol(m[3]) > 0, flag << " " << value << ": step in " << part << " must be >= 1");
  }
}

void check_slurm_name(const std::string& value, const std::string& flag, bool allow_list) {
  static const std::regex name(R"(^[A-Za-z0-9_.-]+$)");
  static const std::regex list(R"(^[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*$)");
  FT_USER_CHECK(std::regex_match(value, allow_list ? list : name),
                flag << " '" << value << "': expected a name of letters, digits, _ . -"
                     << (allow_list ? " (several separated by commas)" : ""));
}

}  // namespace facetrain
