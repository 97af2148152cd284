// StreamReader: parser events queued and handed out one by one.
#include "xmpp/stream_reader.h"

#include <vector>

namespace tandem::xmpp {

StreamReader::StreamReader(Transport& transport, xml::StreamParserLimits limits)
    : transport_(transport),
      parser_(
          xml::StreamParser::Callbacks{
              [this](const xml::Element& h) { events_.push_back({StreamEvent::kOpen, h, "", ""}); },
              [this](xml::Element e) {
                events_.push_back({StreamEvent::kStanza, std::move(e), "", ""});
              },
              [this] { events_.push_back({StreamEvent::kClose, {}, "", ""}); }},
          limits) {}

asio::awaitable<StreamEvent> StreamReader::next() {
  std::vector<char> buf(16384);
  while (events_.empty()) {
    size_t n = co_await transport_.readSome(buf.data(), buf.size());
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
