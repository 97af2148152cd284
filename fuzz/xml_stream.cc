// libFuzzer target: arbitrary bytes into the XMPP stream parser, fed in uneven pieces, must
// never crash, leak or hang; stanzas that come out must serialise.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "xml/stream_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using tandem::xml::Element;
  using tandem::xml::StreamParser;
  size_t out_bytes = 0;
  StreamParser::Callbacks cb;
  cb.on_stream_open = [&](const Element& h) { out_bytes += h.toString().size(); };
  cb.on_stanza = [&](Element e) { out_bytes += e.toString().size(); };
  cb.on_stream_close = [] {};
  StreamParser parser(cb, {.max_stanza_bytes = 4096, .max_depth = 16});
  std::string_view in(reinterpret_cast<const char*>(data), size);
  // The first byte picks the piece size so the fuzzer explores chunk boundaries too.
  size_t piece = size > 0 ? (data[0] % 17) + 1 : 1;
  while (!in.empty()) {
    size_t n = in.size() < piece ? in.size() : piece;
    if (!parser.feed(in.substr(0, n)).isOk()) break;
    in.remove_prefix(n);
  }
  return out_bytes == static_cast<size_t>(-1) ? 1 : 0;
}
