// Newline-delimited frames over a stream socket, with hard caps.
//
// LineBuffer is pure (no I/O: the fuzzer drives it); ReadInto and
// OutputBuffer do the socket work: non-blocking reads that also collect
// descriptors sent as SCM_RIGHTS, and a bounded queue of bytes to send.
// Thread safety: none; each object belongs to one connection.
#ifndef QUIESCE_CONTROL_FRAMING_H_
#define QUIESCE_CONTROL_FRAMING_H_

#include <cstddef>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "unique_fd.h"

namespace quiesce::control {

inline constexpr size_t kDefaultMaxLine = 64 * 1024;

// Splits received bytes into lines of at most max_line bytes (newline not
// counted). A trailing "\r" is dropped, so "\r\n" endings work too.
class LineBuffer {
 public:
  enum class Next {
    kLine,      // *line holds the next line
    kNeedMore,  // no complete line buffered
    kTooLong,   // a line exceeds max_line: the stream cannot be trusted
  };

  explicit LineBuffer(size_t max_line) : max_line_(max_line) {}

  void Append(std::string_view bytes) { data_.append(bytes); }
  Next Pop(std::string* line);
  // The stream has ended: the bytes of the incomplete last line, as a line
  // (a request the client sent without its newline before shutdown).
  // kNeedMore when there are none.
  Next PopRest(std::string* line);
  // Bytes of an incomplete line are buffered.
  bool HasPartial() const { return data_.size() > start_; }
  size_t max_line() const { return max_line_; }
  // Bytes buffered now. Once Pop has returned kNeedMore this is at most
  // 2 * max_line (the partial line, and consumed bytes fewer than it):
  // the bound the framing fuzzer checks.
  size_t buffered() const { return data_.size(); }
  // Offsets in the stream: every byte ever appended, and the end (past
  // its newline) of the line Pop last returned.
  uint64_t received() const { return base_ + data_.size(); }
  uint64_t line_end() const { return line_end_; }

 private:
  const size_t max_line_;
  std::string data_;
  uint64_t base_ = 0;      // the stream offset of data_[0]
  uint64_t line_end_ = 0;
  size_t start_ = 0;    // where the next line begins in data_
  size_t scanned_ = 0;  // data_[start_, scanned_) holds no newline
};

enum class ReadResult { kData, kWouldBlock, kClosed, kError };

// Reads what the socket has (one recvmsg) into *lines; descriptors that
// came with the bytes are appended to *fds, close-on-exec. More than
// max_fds pending descriptors, or a truncated control message, is kError
// (the descriptors received are closed).
ReadResult ReadInto(int fd, LineBuffer* lines, std::deque<UniqueFd>* fds,
                    size_t max_fds);

// Bytes waiting to be sent on a non-blocking socket.
class OutputBuffer {
 public:
  enum class Flush { kDone, kPending, kError };

  void Append(std::string_view bytes) { data_.append(bytes); }
  // Sends as much as the socket takes without blocking.
  Flush FlushTo(int fd);
  size_t size() const { return data_.size() - sent_; }
  bool empty() const { return size() == 0; }
  // Drops every line not yet begun on the socket (the rest of a line the
  // socket took in part stays, so the stream stays whole lines): for a
  // client about to be dropped, whose reason must come next.
  void DropUnsentLines();

 private:
  std::string data_;
  size_t sent_ = 0;
  bool mid_line_ = false;  // the socket took part of a line
};

// Sends all of `bytes` on a blocking or non-blocking socket, with `fds`
// attached to its first byte as SCM_RIGHTS; waits at most timeout_ms in
// total. Returns false with errno set (ETIMEDOUT on timeout).
bool SendAll(int fd, std::string_view bytes, const std::vector<int>& fds,
             int timeout_ms);

}  // namespace quiesce::control

#endif  // QUIESCE_CONTROL_FRAMING_H_
