// Framing: lines split however the bytes arrive, hard length caps, and
// descriptors that travel with a line over a real socket pair.
#include "framing.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <string>

namespace quiesce::control {
namespace {

TEST(LineBuffer, SplitsLinesArrivingInAnyPieces) {
  const std::string stream = "{\"a\":1}\n\n{\"b\":2}\r\nrest";
  for (size_t piece = 1; piece <= stream.size(); ++piece) {
    LineBuffer buffer(64);
    std::vector<std::string> lines;
    for (size_t at = 0; at < stream.size(); at += piece) {
      buffer.Append(std::string_view(stream).substr(at, piece));
      std::string line;
      while (buffer.Pop(&line) == LineBuffer::Next::kLine) {
        lines.push_back(line);
      }
    }
    ASSERT_EQ(lines.size(), 3u) << "piece " << piece;
    EXPECT_EQ(lines[0], "{\"a\":1}");
    EXPECT_EQ(lines[1], "");
    EXPECT_EQ(lines[2], "{\"b\":2}");
    EXPECT_TRUE(buffer.HasPartial());
  }
}

TEST(LineBuffer, ALineOfExactlyTheCapPasses) {
  LineBuffer buffer(8);
  buffer.Append("12345678\n");
  std::string line;
  EXPECT_EQ(buffer.Pop(&line), LineBuffer::Next::kLine);
  EXPECT_EQ(line, "12345678");
}

TEST(LineBuffer, ALongerLineIsRefusedWithOrWithoutItsNewline) {
  LineBuffer complete(8);
  complete.Append("123456789\n");
  std::string line;
  EXPECT_EQ(complete.Pop(&line), LineBuffer::Next::kTooLong);

  LineBuffer endless(8);
  endless.Append("1234");
  EXPECT_EQ(endless.Pop(&line), LineBuffer::Next::kNeedMore);
  endless.Append("56789");
  EXPECT_EQ(endless.Pop(&line), LineBuffer::Next::kTooLong);
}

class SocketPair : public ::testing::Test {
 protected:
  void SetUp() override {
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    a_.reset(sv[0]);
    b_.reset(sv[1]);
  }
  UniqueFd a_, b_;
};

TEST_F(SocketPair, DescriptorsArriveWithTheirLine) {
  UniqueFd file(open("/dev/null", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(file);
  ASSERT_TRUE(SendAll(a_.get(), "{\"id\":1,\"op\":\"x\",\"fds\":1}\n",
                      {file.get()}, 1000));
  LineBuffer lines(1024);
  std::deque<UniqueFd> fds;
  ASSERT_EQ(ReadInto(b_.get(), &lines, &fds, 4), ReadResult::kData);
  ASSERT_EQ(fds.size(), 1u);
  struct stat mine, theirs;
  ASSERT_EQ(fstat(file.get(), &mine), 0);
  ASSERT_EQ(fstat(fds[0].get(), &theirs), 0);
  EXPECT_EQ(mine.st_ino, theirs.st_ino);
  EXPECT_TRUE(fcntl(fds[0].get(), F_GETFD) & FD_CLOEXEC);
  std::string line;
  EXPECT_EQ(lines.Pop(&line), LineBuffer::Next::kLine);
}

TEST_F(SocketPair, TooManyDescriptorsAreRefusedAndClosed) {
  UniqueFd file(open("/dev/null", O_RDONLY | O_CLOEXEC));
  std::vector<int> many(5, file.get());
  ASSERT_TRUE(SendAll(a_.get(), "x\n", many, 1000));
  LineBuffer lines(1024);
  std::deque<UniqueFd> fds;
  EXPECT_EQ(ReadInto(b_.get(), &lines, &fds, 4), ReadResult::kError);
  EXPECT_TRUE(fds.empty());
}

TEST_F(SocketPair, ReadReportsWouldBlockAndClose) {
  LineBuffer lines(1024);
  std::deque<UniqueFd> fds;
  EXPECT_EQ(ReadInto(b_.get(), &lines, &fds, 4), ReadResult::kWouldBlock);
  a_.reset();
  EXPECT_EQ(ReadInto(b_.get(), &lines, &fds, 4), ReadResult::kClosed);
}

TEST_F(SocketPair, OutputBufferKeepsWhatTheSocketDoesNotTake) {
  OutputBuffer out;
  const std::string chunk(1 << 20, 'x');  // more than a socket buffer
  out.Append(chunk);
  EXPECT_EQ(out.FlushTo(a_.get()), OutputBuffer::Flush::kPending);
  const size_t left = out.size();
  EXPECT_GT(left, 0u);
  EXPECT_LT(left, chunk.size());
  b_.reset();
  EXPECT_EQ(out.FlushTo(a_.get()), OutputBuffer::Flush::kError);
}

TEST_F(SocketPair, SendAllTimesOutWhenThePeerDoesNotRead) {
  const std::string chunk(8 << 20, 'x');
  EXPECT_FALSE(SendAll(a_.get(), chunk, {}, 50));
  EXPECT_EQ(errno, ETIMEDOUT);
}

}  // namespace
}  // namespace quiesce::control
