// PRAGMA quiesce_status (pragma_status.h): one description of a database,
// walked by two writers (key=value text and JSON).
#include "pragma_status.h"

#include <sqlite3.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "position.h"
#include "sqlite_api.h"

namespace quiesce {
namespace {

// Receives the description, in order; the writers below render it.
class Writer {
 public:
  virtual ~Writer() = default;
  virtual void Begin(const char* name) = 0;  // a nested object
  virtual void End() = 0;
  virtual void Number(const char* name, uint64_t value) = 0;
  virtual void Signed(const char* name, int64_t value) = 0;
  virtual void Bool(const char* name, bool value) = 0;
  virtual void String(const char* name, std::string_view value) = 0;
};

// The same keys as the control channel's status (control/describe.cc).
void Describe(const DatabaseInfo& info, Writer& w) {
  w.Number("db", info.id);
  w.String("path", info.path);
  w.String("journal_mode", JournalModeName(info.journal_mode));
  w.String("locking_mode", LockingModeName(info.locking_mode));
  w.Number("page_size", info.page_size);
  w.Number("db_pages", info.db_pages);
  w.Number("db_bytes", uint64_t{info.page_size} * info.db_pages);
  w.Number("generation", info.generation);
  w.Begin("position");
  if (info.position.wal) {
    w.Number("salt1", info.position.salt1);
    w.Number("salt2", info.position.salt2);
    w.Number("mx_frame", info.position.mx_frame);
  } else {
    w.Number("change_counter", info.position.change_counter);
  }
  w.End();
  w.Signed("last_commit_us", info.last_commit_us);
  w.Number("handles", info.handles.size());
  w.Begin("counters");
  w.Number("transactions", info.transactions);
  w.Number("frames", info.frames);
  w.Number("bytes_written", info.bytes_written);
  w.Number("syncs", info.syncs);
  w.Number("checkpoints", info.checkpoints);
  w.Number("foreign_commits", info.foreign_commits);
  w.End();
  const GateStats& g = info.gate;
  w.Begin("host_waits");
  w.Begin("gate");
  w.Number("count", g.waits);
  w.Number("total_us", g.wait_us);
  w.Number("max_us", g.max_wait_us);
  w.End();
  w.Begin("own_lock");
  w.Number("count", g.own_waits);
  w.Number("total_us", g.own_wait_us);
  w.Number("max_us", g.own_max_wait_us);
  w.End();
  w.Number("max_stall_reached", g.stall_timeouts);
  w.End();
  w.Begin("gate");
  w.Bool("closed", info.gate_closed);
  w.Number("closes", g.closes);
  w.Number("drain_timeouts", g.drain_timeouts);
  w.Number("revocations", g.revocations);
  w.Number("yields", g.yields);
  w.End();
}

class TextWriter final : public Writer {
 public:
  void Begin(const char* name) override {
    prefixes_.push_back(Prefix() + name + ".");
  }
  void End() override { prefixes_.pop_back(); }
  void Number(const char* name, uint64_t value) override {
    Line(name, std::to_string(value));
  }
  void Signed(const char* name, int64_t value) override {
    Line(name, std::to_string(value));
  }
  void Bool(const char* name, bool value) override {
    Line(name, value ? "1" : "0");
  }
  void String(const char* name, std::string_view value) override {
    // One line per key: a newline in a path is shown as "\n".
    std::string shown;
    for (char c : value) {
      if (c == '\n') shown += "\\n";
      else if (c == '\\') shown += "\\\\";
      else shown += c;
    }
    Line(name, shown);
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string Prefix() const {
    return prefixes_.empty() ? std::string() : prefixes_.back();
  }
  void Line(const char* name, const std::string& value) {
    out_ += Prefix();
    out_ += name;
    out_ += '=';
    out_ += value;
    out_ += '\n';
  }
  std::vector<std::string> prefixes_;
  std::string out_;
};

// Appends `s` as a JSON string: ", \ and control characters escaped,
// invalid UTF-8 bytes replaced by U+FFFD so that the output always parses.
void AppendJsonString(std::string_view s, std::string& out) {
  out += '"';
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      ++i;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
      ++i;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
    } else {
      // A whole, shortest-form UTF-8 sequence of a scalar value, or U+FFFD.
      size_t len = 0;
      uint32_t cp = 0;
      if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1Fu; }
      else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0Fu; }
      else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07u; }
      bool ok = len != 0 && i + len <= s.size();
      for (size_t k = 1; ok && k < len; ++k) {
        const auto cc = static_cast<unsigned char>(s[i + k]);
        ok = (cc & 0xC0u) == 0x80u;
        cp = (cp << 6) | (cc & 0x3Fu);
      }
      if (ok) {
        ok = !(len == 3 && cp < 0x800) && !(len == 4 && cp < 0x10000) &&
             cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
      }
      if (ok) {
        out.append(s.substr(i, len));
        i += len;
      } else {
        out += "\xEF\xBF\xBD";  // U+FFFD
        ++i;
      }
    }
  }
  out += '"';
}

class JsonWriter final : public Writer {
 public:
  JsonWriter() { out_ = "{"; }
  void Begin(const char* name) override {
    Key(name);
    out_ += '{';
    first_ = true;
  }
  void End() override {
    out_ += '}';
    first_ = false;
  }
  void Number(const char* name, uint64_t value) override {
    Key(name);
    out_ += std::to_string(value);
  }
  void Signed(const char* name, int64_t value) override {
    Key(name);
    out_ += std::to_string(value);
  }
  void Bool(const char* name, bool value) override {
    Key(name);
    out_ += value ? "true" : "false";
  }
  void String(const char* name, std::string_view value) override {
    Key(name);
    AppendJsonString(value, out_);
  }
  std::string Take() {
    out_ += '}';
    return std::move(out_);
  }

 private:
  void Key(const char* name) {
    if (!first_) out_ += ',';
    first_ = false;
    AppendJsonString(name, out_);
    out_ += ':';
  }
  std::string out_;
  bool first_ = true;
};

bool EqualsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

}  // namespace

std::string FormatStatusText(const DatabaseInfo& info) {
  TextWriter w;
  Describe(info, w);
  return w.Take();
}

std::string FormatStatusJson(const DatabaseInfo& info) {
  JsonWriter w;
  Describe(info, w);
  return w.Take();
}

bool IsStatusPragma(const char* name) {
  return name != nullptr && EqualsNoCase(name, "quiesce_status");
}

int AnswerStatusPragma(Database& db, const SqliteApi& api,
                       char** args) noexcept {
  try {
    StatusFormat format = StatusFormat::kText;
    if (args[2] != nullptr) {
      if (EqualsNoCase(args[2], "json")) {
        format = StatusFormat::kJson;
      } else if (!EqualsNoCase(args[2], "text")) {
        args[0] = api.mprintf(
            "quiesce_status: unknown format '%s' (text or json)", args[2]);
        return SQLITE_ERROR;
      }
    }
    const DatabaseInfo info = db.Info();
    std::string text = format == StatusFormat::kJson ? FormatStatusJson(info)
                                                     : FormatStatusText(info);
    // One row: the text form without its final newline.
    if (!text.empty() && text.back() == '\n') text.pop_back();
    args[0] = api.mprintf("%s", text.c_str());
    return args[0] != nullptr ? SQLITE_OK : SQLITE_NOMEM;
  } catch (...) {
    return SQLITE_NOMEM;
  }
}

}  // namespace quiesce
