// StreamReader: parser events queued and handed out one by one.
#include "xmpp/stream_reader.h"

#include <span>

namespace tandem::xmpp {

StreamReader::StreamReader(Transport& transport, xml::StreamParserLimits limits)
    : transport_(transport),
      parser_(xml::StreamParser::Callbacks{
                  [this](const xml::Element& h) {
                    events_.push_back({StreamEvent::kOpen, h, "", ""});
                  },
                  [this](xml::Element e) {
                    events_.push_back({StreamEvent::kStanza, std::move(e), "", ""});
                  },
                  [this] {
                    events_.push_back({StreamEvent::kClose, {}, "", ""});
                  }},
              limits) {}

asio::awaitable<StreamEvent> StreamReader::next() {
  while (events_.empty()) {
    // The thread's buffer: nothing of it is kept across the wait below.
    std::span<char> buf = threadReadBuffer();
    size_t n = transport_.readNow(buf.data(), buf.size());
    if (n == 0) {
      co_await transport_.waitReadable();
      continue;
    }
    Status st = parser_.feed(std::string_view(buf.data(), n));
    if (!st.isOk()) {
      events_.push_back({StreamEvent::kError, {}, parser_.errorCondition(), st.message()});
    }
  }
  StreamEvent ev = std::move(events_.front());
  events_.pop_front();
  co_return ev;
}

void StreamReader::reset() {
  parser_.reset();
  events_.clear();
}

}  // namespace tandem::xmpp
