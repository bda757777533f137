// A control server on a socket in a private temporary directory, with the
// test shims registered, and helpers to talk to it.
#ifndef QUIESCE_TESTS_CONTROL_SERVER_FIXTURE_H_
#define QUIESCE_TESTS_CONTROL_SERVER_FIXTURE_H_

#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "client.h"
#include "context.h"
#include "server.h"
#include "support.h"

namespace quiesce::control {

inline constexpr int kTimeoutMs = 10000;

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override { quiesce::testing::RegisterShims(); }

  void StartServer(ServerLimits limits = {},
                   AccessPolicy policy = {geteuid(), {}, ""},
                   std::string socket = "") {
    ServerOptions options;
    options.socket = socket.empty() ? dir_.File("s.sock") : socket;
    options.policy = std::move(policy);
    options.limits = limits;
    Result<std::unique_ptr<Server>> server =
        Server::Start(Context::Get(), options);
    ASSERT_TRUE(server.ok()) << server.error().message;
    server_ = std::move(server.value());
  }

  std::unique_ptr<Client> Connect() {
    std::string error;
    auto client = Client::Connect(server_->socket(), kTimeoutMs, &error);
    EXPECT_NE(client, nullptr) << error;
    return client;
  }

  // A call that must get a reply (ok or not).
  static Message Call(Client& client, const std::string& op,
                      const json& args = json::object()) {
    Message reply;
    std::string error;
    EXPECT_EQ(client.Call(op, args, &reply, kTimeoutMs, &error),
              Client::Status::kOk)
        << op << ": " << error;
    return reply;
  }

  // Reads until the host closes the connection; returns every message.
  static std::vector<Message> ReadToEnd(Client& client) {
    std::vector<Message> out;
    for (;;) {
      Message m;
      std::string error;
      const auto status = client.Read(&m, kTimeoutMs, &error);
      if (status != Client::Status::kOk) {
        EXPECT_EQ(status, Client::Status::kClosed) << error;
        return out;
      }
      out.push_back(std::move(m));
    }
  }

  quiesce::testing::TempDir dir_;
  std::unique_ptr<Server> server_;
};

}  // namespace quiesce::control

#endif  // QUIESCE_TESTS_CONTROL_SERVER_FIXTURE_H_
