// StreamParser: incremental parser for one XMPP stream (RFC 6120 §4), built on expat.
//
// Bytes go in as they arrive from the socket; out come the stream header, each complete
// depth-1 element (a stanza, or a stream-level element such as <auth/> or <r/>), and the end of
// the stream. No namespace processing: qualified names stay as written ("stream:features") and
// `xmlns` declarations stay ordinary attributes, as Element expects.
//
// Hostile input is refused, never expanded (RFC 6120 §11.1 "restricted XML"): a DTD, an entity
// declaration, a comment or a processing instruction stops the parser with "restricted-xml", so
// billion-laughs style expansion cannot happen. A stanza larger than max_stanza_bytes or nested
// deeper than max_depth stops it with "policy-violation". After an error the parser stays failed
// until reset().
//
// One parser per connection; not thread-safe (use it from the connection's strand only).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "xml/element.h"

namespace tandem::xml {

struct StreamParserLimits {
  // Largest stanza accepted, in bytes as received (tags, attributes and text). Bigger stanzas
  // end the stream with policy-violation. Default 256 KiB: far above any chat message, small
  // enough that a hostile peer cannot make us hold much memory per connection.
  size_t max_stanza_bytes = 256 * 1024;
  // Deepest element nesting accepted, counting <stream:stream> as depth 1. Default 32.
  size_t max_depth = 32;
};

class StreamParser {
 public:
  struct Callbacks {
    // <stream:stream ...> (or whatever the root element is) with its attributes, no children.
    std::function<void(const Element& header)> on_stream_open;
    // Each complete depth-1 element.
    std::function<void(Element stanza)> on_stanza;
    // </stream:stream>.
    std::function<void()> on_stream_close;
  };

  explicit StreamParser(Callbacks cb, StreamParserLimits limits = {});
  ~StreamParser();
  StreamParser(const StreamParser&) = delete;
  StreamParser& operator=(const StreamParser&) = delete;

  // Parses `bytes`, calling the callbacks for what completes. Returns OK, or an error Status
  // (code InvalidArgument, message one sentence) when the input violates XML or our limits; then
  // errorCondition() names the RFC 6120 stream error condition ("not-well-formed",
  // "restricted-xml", "policy-violation", "invalid-xml", "unsupported-encoding") and every later
  // feed() returns the same error until reset(). Never blocks.
  // If a callback calls reset(), the rest of `bytes` is discarded (after STARTTLS those bytes
  // belong to the TLS layer; after SASL success a client sends nothing before the new header).
  Status feed(std::string_view bytes);

  // The stream error condition of the last failure; "" while the parser is healthy.
  const std::string& errorCondition() const { return condition_; }
  bool failed() const { return !condition_.empty(); }

  // Starts a fresh stream (after STARTTLS or SASL success): forgets all state and errors.
  // Safe to call from inside a callback (see feed()).
  void reset();

 private:
  struct Impl;
  void recreate();
  void fail(std::string condition, std::string message);

  Callbacks cb_;
  StreamParserLimits limits_;
  std::unique_ptr<Impl> impl_;
  std::string condition_;
  std::string message_;
  bool in_feed_ = false;
  bool reset_pending_ = false;
};

}  // namespace tandem::xml

namespace tandem::xml {
// Parses one complete element from `text` (e.g. a stanza kept in a database) with the same
// restrictions as StreamParser. Fails with InvalidArgument when `text` is not exactly one
// well-formed element.
Result<Element> parseElement(std::string_view text);
}  // namespace tandem::xml
