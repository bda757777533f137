// Nothing a client does can grow the host: 20,000 holds that end every way
// a hold can end (granted and released, failed, revoked, dropped mid-way)
// and 1,000 watch clients that subscribe and stop reading leave the host's
// resident memory and descriptors where they were, and keep no Database of
// a closed database alive.
#include <dirent.h>
#include <malloc.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "framing.h"
#include "server_fixture.h"

namespace quiesce::control {
namespace {

using quiesce::testing::Conn;
using quiesce::testing::Find;

const AccessPolicy kWritable{geteuid(), {}, "1"};

// Resident memory of this process (the host: the server runs in it), after
// giving freed heap back, in KiB.
uint64_t RssKiB() {
  malloc_trim(0);
  FILE* f = std::fopen("/proc/self/statm", "r");
  unsigned long long size = 0, resident = 0;
  if (f != nullptr) {
    if (std::fscanf(f, "%llu %llu", &size, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) / 1024;
}

size_t OpenFds() {
  size_t n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (const dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

// The host's server has closed this client's connection (POLLHUP), read
// or not.
bool HungUp(const Client& client) {
  pollfd p{client.fd(), 0, 0};
  return poll(&p, 1, 0) == 1 && (p.revents & POLLHUP);
}

class ReleaseTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    path_ = dir_.File("live.db");
    host_ = std::make_unique<Conn>(path_);
    host_->Must("PRAGMA journal_mode=wal; PRAGMA synchronous=off");
    // The host's own page cache stays small, so that what is measured is
    // the control server's memory.
    host_->Must("PRAGMA cache_size=16");
    host_->Must("CREATE TABLE t(x)");
  }

  // One hold that ends as `kind` says; false (with a test failure) when
  // the host answered otherwise.
  enum class Kind { kReleased, kFailed, kRevoked, kDropped };
  void Hold(Client& client, Kind kind, const std::string& db) {
    if (kind == Kind::kDropped) {
      // A client that sends a hold and goes away before its answer.
      std::string error;
      auto gone = Client::Connect(server_->socket(), kTimeoutMs, &error);
      ASSERT_NE(gone, nullptr) << error;
      int64_t id;
      ASSERT_EQ(gone->Send("hold", {{"db", db}, {"lease_ms", 1000}}, {}, &id,
                           kTimeoutMs, &error),
                Client::Status::kOk);
      return;
    }
    json args = {{"db", db}};
    if (kind == Kind::kFailed) args["drain_ms"] = 1;  // a reader holds it
    if (kind == Kind::kRevoked) args["lease_ms"] = 1;
    // "busy" is the server's "try again": on a loaded machine the jobs of
    // earlier holds may still be ending (at most kMaxJobs run), and a
    // dropped client holds the point until the server sees it go. What
    // this test counts is what they leave behind, not how soon.
    Message held = Call(client, "hold", args);
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (held.error_code == "busy" &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      held = Call(client, "hold", args);
    }
    if (kind == Kind::kFailed) {
      ASSERT_EQ(held.error_code, "timeout") << held.error_message;
      return;
    }
    ASSERT_TRUE(held.ok) << held.error_message;
    if (kind == Kind::kRevoked) {
      Message revoked;
      std::string error;
      ASSERT_EQ(client.Read(&revoked, kTimeoutMs, &error),
                Client::Status::kOk)
          << error;
      ASSERT_EQ(revoked.event, "revoked");
      return;
    }
    const Message released = Call(client, "release", {{"hold", *held.id}});
    ASSERT_TRUE(released.ok) << released.error_message;
    ASSERT_TRUE(released.result["intact"].get<bool>());
  }

  std::string path_;
  std::unique_ptr<Conn> host_;
};

TEST_F(ReleaseTest, TwentyThousandHoldsLeaveNothingBehind) {
  // Dropped clients come faster than the connection caps let them: the
  // caps are not what this test is about.
  ServerLimits limits;
  limits.max_connections = limits.max_per_uid = 100000;
  StartServer(limits, kWritable);
  auto client = Connect();
  // Warm up every path once, then take the baseline.
  for (Kind kind : {Kind::kReleased, Kind::kRevoked, Kind::kDropped}) {
    Hold(*client, kind, path_);
  }
  ASSERT_TRUE(Call(*client, "hello").ok);
  const uint64_t rss_before = RssKiB();
  const size_t fds_before = OpenFds();

  constexpr int kEach = 5000;
  for (int i = 0; i < kEach; ++i) Hold(*client, Kind::kReleased, path_);
  for (int i = 0; i < kEach; ++i) Hold(*client, Kind::kRevoked, path_);
  for (int i = 0; i < kEach; ++i) Hold(*client, Kind::kDropped, path_);
  // Failed holds, on a database of their own that closes afterwards: the
  // session that made them stays connected and must not keep it alive.
  {
    const std::string other = dir_.File("other.db");
    Conn db(other);
    db.Must("PRAGMA journal_mode=wal; CREATE TABLE t(x)");
    std::weak_ptr<Database> weak = Find(other);
    Conn reader(other);
    reader.Must("BEGIN; SELECT count(*) FROM t");  // holds a read mark
    for (int i = 0; i < kEach && !HasFatalFailure(); ++i) {
      Hold(*client, Kind::kFailed, other);
    }
    reader.Must("COMMIT");
    reader.Close();
    db.Close();
    ASSERT_TRUE(Call(*client, "hello").ok);  // the jobs' last words are in
    EXPECT_TRUE(weak.expired())
        << "failed holds keep a closed database's Database alive";
  }
  ASSERT_FALSE(HasFatalFailure());
  // Every dropped client's session is gone once its descriptors are.
  EXPECT_TRUE(quiesce::testing::Eventually(
      [&] { return OpenFds() <= fds_before; }))
      << OpenFds() << " descriptors open, " << fds_before << " before";
  const uint64_t rss_after = RssKiB();
  // 20,000 holds: a leak of 100 bytes each would be ~2 MiB.
  EXPECT_LE(rss_after, rss_before + 1024)
      << "RSS " << rss_before << " KiB before, " << rss_after << " after";
  // The session that made them all still idles out like any other.
  host_->Must("INSERT INTO t VALUES (1)");
  EXPECT_TRUE(Call(*client, "hello").ok);
}

TEST_F(ReleaseTest, ASessionWithAnEndedLeaseStillIdlesOut) {
  ServerLimits limits;
  limits.idle_timeout = std::chrono::milliseconds(300);
  StartServer(limits, kWritable);
  auto client = Connect();
  const Message held = Call(*client, "hold", {{"db", path_}, {"lease_ms", 1}});
  ASSERT_TRUE(held.ok) << held.error_message;
  const auto messages = ReadToEnd(*client);
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0].event, "revoked");
  EXPECT_EQ(messages[1].error_code, "timeout");
  EXPECT_NE(messages[1].error_message.find("idle"), std::string::npos);
}

TEST_F(ReleaseTest, ARevokedHoldStillAnswersALateRelease) {
  StartServer({}, kWritable);
  auto client = Connect();
  const Message held = Call(*client, "hold", {{"db", path_}, {"lease_ms", 1}});
  ASSERT_TRUE(held.ok) << held.error_message;
  Message revoked;
  std::string error;
  ASSERT_EQ(client->Read(&revoked, kTimeoutMs, &error), Client::Status::kOk);
  ASSERT_EQ(revoked.event, "revoked");
  const Message late = Call(*client, "release", {{"hold", *held.id}});
  ASSERT_TRUE(late.ok) << late.error_message;
  EXPECT_FALSE(late.result["intact"].get<bool>());
}

// Idle means no request: empty lines (or any bytes that are not a request)
// do not keep a connection slot.
TEST_F(ReleaseTest, EmptyLinesDoNotKeepASessionAlive) {
  ServerLimits limits;
  limits.idle_timeout = std::chrono::milliseconds(300);
  StartServer(limits);
  auto client = Connect();
  ASSERT_TRUE(Call(*client, "hello").ok);
  // An empty line every 20 ms, until the host hangs up (bounded).
  bool closed = false;
  for (int i = 0; i < 1000 && !closed; ++i) {
    closed = !SendAll(client->fd(), "\n", {}, kTimeoutMs) || HungUp(*client);
    pollfd p{client->fd(), POLLIN, 0};
    if (poll(&p, 1, 20) == 1) closed = true;  // its reason arrived
  }
  ASSERT_TRUE(closed) << "empty lines kept the session open for 20 s";
  const auto messages = ReadToEnd(*client);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].error_code, "timeout");
}

// A client that stops reading is dropped whatever it asked for: here it
// asked for nothing that streams, and its unsent replies stay below the
// output cap.
TEST_F(ReleaseTest, AClientThatStopsReadingIsDropped) {
  ServerLimits limits;
  limits.write_stall = std::chrono::milliseconds(200);
  StartServer(limits);
  auto client = Connect();
  // Replies to these (about 1.5 KB each) fill the socket buffer and leave
  // the rest of them in the host's output, below its cap.
  constexpr int kRequests = 1000;
  std::string burst;
  for (int i = 0; i < kRequests; ++i) {
    burst += "{\"id\":" + std::to_string(i) + ",\"op\":\"hello\"}\n";
  }
  ASSERT_TRUE(SendAll(client->fd(), burst, {}, kTimeoutMs));
  // The host hangs up on a client that reads nothing (its reason waits in
  // the host for the linger, behind the full socket buffer).
  ASSERT_TRUE(quiesce::testing::Eventually([&] { return HungUp(*client); }));
  const auto messages = ReadToEnd(*client);  // whole lines only
  EXPECT_GT(messages.size(), 0u);
  EXPECT_LT(messages.size(), size_t{kRequests}) << "nothing was dropped";
}

TEST_F(ReleaseTest, AThousandWatchersThatStopReadingLeaveNothingBehind) {
  ServerLimits limits;
  constexpr size_t kWave = 100, kWaves = 10;
  limits.max_connections = limits.max_per_uid = kWave + 4;
  limits.watch_low_water = 1;
  limits.write_stall = std::chrono::milliseconds(100);
  StartServer(limits);
  {
    auto warm = Connect();
    ASSERT_TRUE(Call(*warm, "watch").ok);
    host_->Must("INSERT INTO t VALUES (1)");
  }
  uint64_t rss_before = 0;  // after the first wave: the heaps warmed up
  const size_t fds_before = OpenFds();
  for (size_t wave = 0; wave < kWaves; ++wave) {
    if (wave == 1) rss_before = RssKiB();
    // A database that opens and closes while they watch everything.
    const std::string brief = dir_.File("brief" + std::to_string(wave));
    std::weak_ptr<Database> weak;
    std::vector<std::unique_ptr<Client>> clients;
    {
      Conn db(brief);
      db.Must("CREATE TABLE t(x)");
      weak = Find(brief);
      for (size_t i = 0; i < kWave; ++i) {
        clients.push_back(Connect());
        ASSERT_NE(clients.back(), nullptr);
        json args = json::object();
        if (i % 2) args["db"] = path_;  // half watch one database
        ASSERT_TRUE(Call(*clients.back(), "watch", args).ok);
      }
      db.Must("INSERT INTO t VALUES (1)");
    }
    // Commit until every client of the wave has been dropped (a client
    // that reads nothing falls behind whatever it watches).
    auto all_gone = [&] {
      for (const auto& c : clients) {
        if (!HungUp(*c)) return false;
      }
      return true;
    };
    for (int i = 0; i < 20000 && !all_gone(); ++i) {
      ASSERT_EQ(host_->Exec("INSERT INTO t VALUES (randomblob(16))"),
                SQLITE_OK);
      if (i % 64 == 0) std::this_thread::yield();
    }
    ASSERT_TRUE(quiesce::testing::Eventually(all_gone))
        << "clients that stopped reading were not dropped";
    clients.clear();
    EXPECT_TRUE(weak.expired())
        << "a watch keeps a closed database's Database alive";
  }
  EXPECT_TRUE(quiesce::testing::Eventually(
      [&] { return OpenFds() <= fds_before; }))
      << OpenFds() << " descriptors open, " << fds_before << " before";
  // 900 watchers after the first wave: 2 MiB is ~2 KB each (a closed
  // database's ring kept by a cursor is ~400 KB).
  const uint64_t rss_after = RssKiB();
  EXPECT_LE(rss_after, rss_before + 2048)
      << "RSS " << rss_before << " KiB after the first wave, " << rss_after
      << " after the last";
  EXPECT_TRUE(Call(*Connect(), "hello").ok);
}

}  // namespace
}  // namespace quiesce::control
