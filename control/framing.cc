#include "framing.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <cstring>

namespace quiesce::control {
namespace {

// Room for the descriptors one recvmsg may carry: more than any request
// may declare, so that an excess is seen (and refused) rather than
// silently truncated.
constexpr size_t kMaxFdsPerRead = 16;

}  // namespace

LineBuffer::Next LineBuffer::Pop(std::string* line) {
  const size_t nl = data_.find('\n', scanned_);
  if (nl == std::string::npos) {
    scanned_ = data_.size();
    if (data_.size() - start_ > max_line_) return Next::kTooLong;
    // Drop consumed bytes once they dominate, so memory stays bounded.
    if (start_ > 0 && start_ >= data_.size() / 2) {
      data_.erase(0, start_);
      base_ += start_;
      scanned_ -= start_;
      start_ = 0;
    }
    return Next::kNeedMore;
  }
  size_t end = nl;
  if (end > start_ && data_[end - 1] == '\r') --end;
  if (end - start_ > max_line_) return Next::kTooLong;
  line->assign(data_, start_, end - start_);
  start_ = nl + 1;
  scanned_ = start_;
  line_end_ = base_ + start_;
  if (start_ == data_.size()) {
    base_ += data_.size();
    data_.clear();
    start_ = scanned_ = 0;
  }
  return Next::kLine;
}

LineBuffer::Next LineBuffer::PopRest(std::string* line) {
  if (!HasPartial()) return Next::kNeedMore;
  size_t end = data_.size();
  if (end > start_ && data_[end - 1] == '\r') --end;
  if (end - start_ > max_line_) return Next::kTooLong;
  line->assign(data_, start_, end - start_);
  base_ += data_.size();
  line_end_ = base_;
  data_.clear();
  start_ = scanned_ = 0;
  return Next::kLine;
}

ReadResult ReadInto(int fd, LineBuffer* lines, std::deque<UniqueFd>* fds,
                    size_t max_fds) {
  char buf[16 * 1024];
  alignas(struct cmsghdr) char control[CMSG_SPACE(kMaxFdsPerRead * sizeof(int))];
  iovec iov{buf, sizeof(buf)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    return errno == EAGAIN || errno == EWOULDBLOCK ? ReadResult::kWouldBlock
                                                   : ReadResult::kError;
  }
  bool too_many = (msg.msg_flags & MSG_CTRUNC) != 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr;
       c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int received;
      std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      UniqueFd owned(received);  // closed below when refused
      if (fds->size() < max_fds) fds->push_back(std::move(owned));
      else too_many = true;
    }
  }
  if (too_many) {
    fds->clear();
    return ReadResult::kError;
  }
  if (n == 0) return ReadResult::kClosed;
  lines->Append(std::string_view(buf, static_cast<size_t>(n)));
  return ReadResult::kData;
}

OutputBuffer::Flush OutputBuffer::FlushTo(int fd) {
  while (sent_ < data_.size()) {
    const ssize_t n = send(fd, data_.data() + sent_, data_.size() - sent_,
                           MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return Flush::kError;
    }
    sent_ += static_cast<size_t>(n);
    mid_line_ = data_[sent_ - 1] != '\n';
  }
  if (sent_ == data_.size()) {
    data_.clear();
    sent_ = 0;
    return Flush::kDone;
  }
  if (sent_ >= data_.size() / 2) {  // keep the buffer from growing
    data_.erase(0, sent_);
    sent_ = 0;
  }
  return Flush::kPending;
}

void OutputBuffer::DropUnsentLines() {
  size_t keep = sent_;
  if (mid_line_) {
    const size_t nl = data_.find('\n', sent_);
    keep = nl == std::string::npos ? data_.size() : nl + 1;
  }
  data_.resize(keep);
  data_.shrink_to_fit();
}

bool SendAll(int fd, std::string_view bytes, const std::vector<int>& fds,
             int timeout_ms) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  size_t sent = 0;
  bool fds_sent = fds.empty();
  while (sent < bytes.size()) {
    iovec iov{const_cast<char*>(bytes.data() + sent), bytes.size() - sent};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    std::vector<char> control;
    if (!fds_sent) {
      control.resize(CMSG_SPACE(fds.size() * sizeof(int)));
      msg.msg_control = control.data();
      msg.msg_controllen = control.size();
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
      std::memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
    }
    const ssize_t n = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      fds_sent = true;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return false;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - Clock::now());
    if (left.count() <= 0) {
      errno = ETIMEDOUT;
      return false;
    }
    pollfd p{fd, POLLOUT, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) < 0 && errno != EINTR) {
      return false;
    }
  }
  return true;
}

}  // namespace quiesce::control
