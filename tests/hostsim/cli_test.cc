// quiescectl against the Gecko-like host, for what issue #14 found a new
// user tripping over: outputs silently replaced, a database named by its
// file name not found, an --origin without a scheme refused without a
// word of what to write, and a host that dies mid-command giving exit 3 or
// exit 1 depending on the moment.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "op_log.h"
#include "subprocess.h"
#include "support.h"

namespace quiesce::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Waits (bounded) until the host lists `count` databases.
bool WaitForDatabases(const std::string& quiescectl, const std::string& socket,
                      size_t count) {
  for (int i = 0; i < 200; ++i) {
    const Finished list =
        RunProgram({quiescectl, "--socket", socket, "--json", "list"}, 5s);
    if (list.exit_code == 0) {
      const json parsed = json::parse(list.out, nullptr, false);
      if (!parsed.is_discarded() &&
          parsed.value("databases", json::array()).size() >= count) {
        return true;
      }
    }
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(QuiescectlCli, NamesOutputsOriginsAndAHostThatGoes) {
  const std::string hostsim = ProgramFromEnv("HOSTSIM");
  const std::string ctl = ProgramFromEnv("QUIESCECTL");
  ASSERT_FALSE(hostsim.empty() || ctl.empty());
  TempDir dir;
  const std::string socket = dir.File("host.sock");
  {
    // Two origins: two open databases named caches.sqlite.
    Background host({hostsim, "--gecko", "--dir", dir.File("two"), "--origins",
                     "2", "--socket", socket, "--seconds", "20", "--rate",
                     "20"},
                    dir.File("two.out"));
    ASSERT_TRUE(host.started());
    ASSERT_TRUE(WaitForDatabases(ctl, socket, 2));
    const Finished ambiguous = RunProgram(
        {ctl, "--socket", socket, "snapshot", "caches.sqlite", "-o",
         dir.File("x.sqlite")},
        10s);
    EXPECT_EQ(ambiguous.exit_code, 2);
    EXPECT_FALSE(fs::exists(dir.File("x.sqlite")));

    // A watch whose host is killed: the host went away, exit 3, whether
    // the kill comes before it connected or while it streams.
    Background watch({ctl, "--socket", socket, "watch"}, dir.File("w.out"));
    ASSERT_TRUE(watch.started());
    std::this_thread::sleep_for(300ms);  // usually streaming by now
    host.Kill();
    EXPECT_EQ(watch.Wait(10s), 3) << ReadText(dir.File("w.out"));
    // And connecting to it now: exit 3 as well.
    const Finished gone =
        RunProgram({ctl, "--socket", socket, "list"}, 10s);
    EXPECT_EQ(gone.exit_code, 3);
  }
  Background host({hostsim, "--gecko", "--dir", dir.File("one"), "--socket",
                   socket, "--writable", "--seconds", "20", "--rate", "20"},
                  dir.File("one.out"));
  ASSERT_TRUE(host.started());
  ASSERT_TRUE(WaitForDatabases(ctl, socket, 1));
  // One caches.sqlite: its file name is enough.
  const std::string image = dir.File("by-name.sqlite");
  const Finished by_name = RunProgram(
      {ctl, "--socket", socket, "snapshot", "caches.sqlite", "-o", image},
      20s);
  EXPECT_EQ(by_name.exit_code, 0);
  ASSERT_TRUE(fs::exists(image));
  // An existing output is kept without --force.
  const auto size = fs::file_size(image);
  {
    std::ofstream mark(image, std::ios::app);
    mark << "mine";
  }
  const Finished again = RunProgram(
      {ctl, "--socket", socket, "snapshot", "caches.sqlite", "-o", image},
      20s);
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_EQ(fs::file_size(image), size + 4) << "the file was replaced";
  EXPECT_EQ(RunProgram({ctl, "--socket", socket, "snapshot", "caches.sqlite",
                        "-o", image, "--force"},
                       20s)
                .exit_code,
            0);
  const std::string zip = dir.File("b.zip");
  {
    std::ofstream mine(zip);
    mine << "mine";
  }
  // --origin without a scheme: the one the browser has open.
  EXPECT_EQ(RunProgram({ctl, "--socket", socket, "bundle", "pack", "--origin",
                        "127.0.0.1:8000", "--cache", "hostsim-v1", "-o", zip},
                       20s)
                .exit_code,
            2);
  EXPECT_EQ(ReadText(zip), "mine");
  EXPECT_EQ(RunProgram({ctl, "--socket", socket, "bundle", "pack", "--origin",
                        "127.0.0.1:8000", "--cache", "hostsim-v1", "-o", zip,
                        "--force"},
                       20s)
                .exit_code,
            0);
  // Not an origin at all: a usage error that shows what one looks like.
  const Finished bad = RunProgram(
      {ctl, "--socket", socket, "--json", "bundle", "ls", "--origin",
       "cache-of-mine"},
      10s);
  EXPECT_EQ(bad.exit_code, 2);
  host.Kill();
}

}  // namespace
}  // namespace quiesce::testing
