// StreamParser: expat callbacks turned into stream header / stanza / close events.
//
// Design:
// - Depth 0 is outside the root, depth 1 inside <stream:stream>; elements opened at depth 1 are
//   built on a stack of Elements and handed out when they close.
// - Restricted XML (DTD, entity declarations, comments, PIs) stops expat from inside the handler
//   that saw it, so nothing of it is ever expanded or kept.
// - The stanza size limit counts bytes since the last stanza boundary. Input is fed to expat in
//   small chunks so a huge start tag (which expat buffers whole) is caught after one chunk past
//   the limit, not after the whole attack has been buffered.
#include "xml/stream_parser.h"

#include <expat.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace tandem::xml {

namespace {
constexpr size_t kChunkBytes = 16 * 1024;
}  // namespace

struct StreamParser::Impl {
  StreamParser* owner = nullptr;
  XML_Parser parser = nullptr;
  size_t depth = 0;
  std::vector<Element> stack;  // open elements below the root
  uint64_t fed_bytes = 0;      // bytes handed to expat since the stream began
  uint64_t boundary = 0;       // byte offset of the last stanza boundary
  bool stopped = false;        // a handler stopped the parser

  ~Impl() {
    if (parser) XML_ParserFree(parser);
  }

  void stop(std::string condition, std::string message) {
    if (stopped) return;
    stopped = true;
    owner->fail(std::move(condition), std::move(message));
    XML_StopParser(parser, XML_FALSE);
  }

  uint64_t position() const {
    XML_Index i = XML_GetCurrentByteIndex(parser);
    return i < 0 ? fed_bytes : static_cast<uint64_t>(i);
  }

  bool checkSize() {
    if (position() - boundary > owner->limits_.max_stanza_bytes) {
      stop("policy-violation", "a stanza is larger than the limit of " +
                                   std::to_string(owner->limits_.max_stanza_bytes) + " bytes");
      return false;
    }
    return true;
  }

  static Impl* self(void* data) { return static_cast<Impl*>(data); }

  static void onStart(void* data, const XML_Char* name, const XML_Char** attrs) {
    Impl* s = self(data);
    if (s->stopped) return;
    s->depth++;
    if (s->depth > s->owner->limits_.max_depth) {
      s->stop("policy-violation", "elements are nested deeper than the limit of " +
                                      std::to_string(s->owner->limits_.max_depth));
      return;
    }
    Element e{std::string(name)};
    for (int i = 0; attrs[i] != nullptr; i += 2) e.setAttr(attrs[i], attrs[i + 1]);
    if (s->depth == 1) {
      s->boundary = s->position();
      if (s->owner->cb_.on_stream_open) s->owner->cb_.on_stream_open(e);
      return;
    }
    if (s->depth == 2) s->boundary = s->position();
    if (!s->checkSize()) return;
    s->stack.push_back(std::move(e));
  }

  static void onEnd(void* data, const XML_Char* /*name*/) {
    Impl* s = self(data);
    if (s->stopped) return;
    size_t depth = s->depth--;
    if (depth == 1) {
      if (s->owner->cb_.on_stream_close) s->owner->cb_.on_stream_close();
      return;
    }
    if (!s->checkSize()) return;
    Element done = std::move(s->stack.back());
    s->stack.pop_back();
    if (depth == 2) {
      s->boundary = s->position();
      if (s->owner->cb_.on_stanza) s->owner->cb_.on_stanza(std::move(done));
    } else {
      s->stack.back().addChild(std::move(done));
    }
  }

  static void onText(void* data, const XML_Char* text, int len) {
    Impl* s = self(data);
    if (s->stopped) return;
    if (s->depth < 2) {  // whitespace keepalives between stanzas
      s->boundary = s->position();
      return;
    }
    if (!s->checkSize()) return;
    s->stack.back().addText(std::string(text, static_cast<size_t>(len)));
  }

  static void onDoctype(void* data, const XML_Char*, const XML_Char*, const XML_Char*, int) {
    self(data)->stop("restricted-xml", "the stream contains a document type declaration");
  }
  static void onEntityDecl(void* data, const XML_Char*, int, const XML_Char*, int,
                           const XML_Char*, const XML_Char*, const XML_Char*, const XML_Char*) {
    self(data)->stop("restricted-xml", "the stream contains an entity declaration");
  }
  static void onComment(void* data, const XML_Char*) {
    self(data)->stop("restricted-xml", "the stream contains an XML comment");
  }
  static void onPi(void* data, const XML_Char*, const XML_Char*) {
    self(data)->stop("restricted-xml", "the stream contains a processing instruction");
  }
  static void onXmlDecl(void* data, const XML_Char* /*version*/, const XML_Char* encoding, int) {
    if (encoding != nullptr && strcasecmp(encoding, "UTF-8") != 0) {
      self(data)->stop("unsupported-encoding",
                       std::string("the stream declares encoding `") + encoding +
                           "`; XMPP streams must be UTF-8");
    }
  }
};

StreamParser::StreamParser(Callbacks cb, StreamParserLimits limits)
    : cb_(std::move(cb)), limits_(limits) {
  recreate();
}

StreamParser::~StreamParser() = default;

void StreamParser::recreate() {
  impl_ = std::make_unique<Impl>();
  impl_->owner = this;
  // Forcing UTF-8 makes expat ignore a BOM or declaration asking for another encoding; the
  // XML declaration handler still reports such a declaration as unsupported-encoding.
  impl_->parser = XML_ParserCreate("UTF-8");
  XML_Parser p = impl_->parser;
  XML_SetUserData(p, impl_.get());
  XML_SetElementHandler(p, &Impl::onStart, &Impl::onEnd);
  XML_SetCharacterDataHandler(p, &Impl::onText);
  XML_SetStartDoctypeDeclHandler(p, &Impl::onDoctype);
  XML_SetEntityDeclHandler(p, &Impl::onEntityDecl);
  XML_SetCommentHandler(p, &Impl::onComment);
  XML_SetProcessingInstructionHandler(p, &Impl::onPi);
  XML_SetXmlDeclHandler(p, &Impl::onXmlDecl);
  XML_SetParamEntityParsing(p, XML_PARAM_ENTITY_PARSING_NEVER);
#ifdef TANDEM_HAVE_XML_REPARSE_DEFERRAL
  // With reparse deferral (expat >= 2.6.0, and Debian 12's patched 2.5.0), expat may hold back
  // a complete element that arrived in small pieces until more bytes come. A client that sends
  // `<r/>` (or a ping) and waits for the answer would then wait forever. Expat's own advice for
  // streaming protocols is to turn it off; the quadratic reparse it guards against is bounded
  // here by the stanza size limit (max_stanza_bytes) and the per-connection rate limit.
  XML_SetReparseDeferralEnabled(p, XML_FALSE);
#endif
  condition_.clear();
  message_.clear();
}

void StreamParser::fail(std::string condition, std::string message) {
  if (!condition_.empty()) return;
  condition_ = std::move(condition);
  message_ = std::move(message);
}

void StreamParser::reset() {
  if (in_feed_) {
    // Do not free expat from inside its own handler: stop it and rebuild after XML_Parse.
    reset_pending_ = true;
    impl_->stopped = true;
    XML_StopParser(impl_->parser, XML_FALSE);
    return;
  }
  recreate();
}

namespace {
std::string expatConditionFor(XML_Error code) {
  switch (code) {
    case XML_ERROR_UNKNOWN_ENCODING:
    case XML_ERROR_INCORRECT_ENCODING:
      return "unsupported-encoding";
    case XML_ERROR_UNDEFINED_ENTITY:
    case XML_ERROR_RECURSIVE_ENTITY_REF:
    case XML_ERROR_EXTERNAL_ENTITY_HANDLING:
      return "restricted-xml";
    case XML_ERROR_UNBOUND_PREFIX:
    case XML_ERROR_UNDECLARING_PREFIX:
      return "invalid-xml";
    default:
      return "not-well-formed";
  }
}
}  // namespace

Status StreamParser::feed(std::string_view bytes) {
  if (failed()) return invalidArgument(message_);
  in_feed_ = true;
  while (!bytes.empty() && !failed() && !reset_pending_) {
    size_t n = std::min(bytes.size(), kChunkBytes);
    impl_->fed_bytes += n;
    XML_Status rc = XML_Parse(impl_->parser, bytes.data(), static_cast<int>(n), XML_FALSE);
    bytes.remove_prefix(n);
    if (reset_pending_) break;
    if (rc == XML_STATUS_ERROR && !failed()) {
      XML_Error code = XML_GetErrorCode(impl_->parser);
      if (code != XML_ERROR_ABORTED) {
        fail(expatConditionFor(code),
             std::string("the stream is not valid XML at line ") +
                 std::to_string(XML_GetCurrentLineNumber(impl_->parser)) + ": " +
                 XML_ErrorString(code));
      }
    }
    // A start tag or text run that expat is still buffering counts against the limit too.
    if (!failed() &&
        impl_->fed_bytes - impl_->boundary > limits_.max_stanza_bytes + kChunkBytes) {
      fail("policy-violation", "a stanza is larger than the limit of " +
                                   std::to_string(limits_.max_stanza_bytes) + " bytes");
    }
  }
  in_feed_ = false;
  if (reset_pending_) {
    reset_pending_ = false;
    recreate();
    return Status::ok();
  }
  if (failed()) return invalidArgument(message_);
  return Status::ok();
}

}  // namespace tandem::xml

namespace tandem::xml {
Result<Element> parseElement(std::string_view text) {
  std::vector<Element> out;
  StreamParser p({nullptr, [&](Element e) { out.push_back(std::move(e)); }, nullptr});
  Status st = p.feed("<r>");
  if (st.isOk()) st = p.feed(text);
  if (st.isOk()) st = p.feed("</r>");
  if (!st.isOk()) return fail(st);
  if (out.size() != 1) {
    return fail(StatusCode::kInvalidArgument, "the text holds " + std::to_string(out.size()) +
                                                  " elements, expected exactly one");
  }
  return std::move(out[0]);
}
}  // namespace tandem::xml
