// StreamReader: pulls XMPP stream events (header, stanza, close, error) from a Transport one at
// a time, for protocol code written as straight-line coroutines (component and internal links).
// Not thread-safe; lives with its Transport.
#pragma once

#include <deque>
#include <string>

#include <asio.hpp>

#include "xml/stream_parser.h"
#include "xmpp/transport.h"

namespace tandem::xmpp {

struct StreamEvent {
  enum Kind { kOpen, kStanza, kClose, kError } kind = kClose;
  xml::Element element;   // header for kOpen, the stanza for kStanza
  std::string condition;  // kError: the RFC 6120 stream error condition
  std::string message;    // kError: one sentence
};

class StreamReader {
 public:
  explicit StreamReader(Transport& transport, xml::StreamParserLimits limits = {});
  // The next event. Reads from the network as needed; throws asio::system_error when the
  // connection fails or closes (a closed connection without </stream:stream> is such a failure).
  // After kError or kClose, do not call again.
  asio::awaitable<StreamEvent> next();
  // Starts a new stream on the same transport (after TLS or authentication).
  void reset();

 private:
  Transport& transport_;
  xml::StreamParser parser_;
  std::deque<StreamEvent> events_;
};

}  // namespace tandem::xmpp
