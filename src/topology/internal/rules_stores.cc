// Validator: store rules (site, mirror, witness, log shipping).
//
// - A mirror is a synchronous standby in its principal's site; one principal per mirror, and a
//   mirror has no mirror of its own (PostgreSQL cascading would not be synchronous).
// - A witness is a witness-only agent outside the pair, and only means something with a mirror.
// - Log shipping goes to a store in another site, at an interval of 1..3600 s (the RPO bound).
#include <map>

#include "topology/internal/checker.h"

namespace tandem::topology::internal {
namespace {

constexpr int kMinIntervalS = 1;
constexpr int kMaxIntervalS = 3600;

void checkMirror(Checker& c, const Store& s) {
  const Topology& t = c.topology();
  int line = lineOf(s.key_lines, "mirror", s.line);
  if (s.mirror == s.name) {
    c.add(line, "mirror-self",
          subjectOf(s) + " names itself as its mirror; a mirror must be another store");
    return;
  }
  const Store* m = c.store(s.mirror, "mirror", subjectOf(s), line);
  if (m == nullptr) return;
  if (s.witness_only) {
    c.add(line, "witness-only-used",
          subjectOf(s) + " is witness-only and holds no database, so it cannot have a mirror");
  }
  if (m->witness_only) {
    c.add(line, "witness-only-used",
          "store `" + m->name + "` is witness-only and holds no database, so it cannot be the "
          "mirror of `" + s.name + "`");
  }
  if (!m->site.empty() && !s.site.empty() && m->site != s.site) {
    c.add(line, "mirror-other-site",
          "store `" + m->name + "` is the mirror of `" + s.name + "` but is in site `" +
              m->site + "`; a mirror must be in its principal's site (`" + s.site + "`)");
  }
  if (!m->mirror.empty()) {
    c.add(line, "mirror-chain",
          "store `" + m->name + "` is the mirror of `" + s.name + "` and has a mirror of its "
          "own (`" + m->mirror + "`); mirrors cannot be chained");
  }
  const Store* first = t.principalOf(s.mirror);
  if (first != nullptr && first != &s) {
    c.add(line, "mirror-shared",
          "store `" + m->name + "` is already the mirror of `" + first->name +
              "`; each principal needs its own mirror");
  }
}

void checkWitness(Checker& c, const Store& s) {
  int line = lineOf(s.key_lines, "witness", s.line);
  if (s.witness == s.name || (!s.mirror.empty() && s.witness == s.mirror)) {
    c.add(line, "witness-is-member",
          "store `" + s.witness + "` cannot be the witness of `" + s.name +
              "`: a witness must be a third agent, outside the principal and its mirror");
    return;
  }
  const Store* w = c.store(s.witness, "witness", subjectOf(s), line);
  if (w == nullptr) return;
  if (!w->witness_only) {
    c.add(line, "witness-not-witness-only",
          "store `" + w->name + "` is the witness of `" + s.name +
              "` but is not marked `witness_only: true`; a witness holds no database");
  }
  if (s.mirror.empty()) {
    c.add(line, "witness-without-mirror",
          subjectOf(s) + " has a witness but no mirror; a witness only decides mirror "
          "failover, so add `mirror:` or remove `witness:`");
  }
}

void checkLogShipping(Checker& c, const Store& s,
                      std::map<std::string, const Store*>& target_of) {
  const LogShipping& ls = *s.log_shipping;
  std::string subject = "`log_shipping` of " + subjectOf(s);
  int to_line = lineOf(ls.key_lines, "to", ls.line);
  if (s.witness_only) {
    c.add(ls.line, "witness-only-used",
          subjectOf(s) + " is witness-only and holds no database, so it cannot ship logs");
  }
  if (ls.interval_s < kMinIntervalS || ls.interval_s > kMaxIntervalS) {
    c.add(lineOf(ls.key_lines, "interval_s", ls.line), "interval-out-of-range",
          "`interval_s` of " + subject + " is " + std::to_string(ls.interval_s) +
              "; it must be between 1 and 3600 seconds (it bounds the data lost on failover)");
  }
  if (!ls.share.empty()) {
    // A relative share resolves under the state dir; `..` would escape it.
    std::string padded = "/" + ls.share + "/";
    if (padded.find("/../") != std::string::npos) {
      c.add(lineOf(ls.key_lines, "share", ls.line), "invalid-share",
            "`share` of " + subject + " (`" + ls.share +
                "`) contains `..`; give an absolute path or one inside the state directory");
    }
  }
  if (ls.to == s.name) {
    c.add(to_line, "log-shipping-self",
          subjectOf(s) + " ships its logs to itself; `to` must name the backup store in "
          "another site");
    return;
  }
  const Store* to = c.store(ls.to, "to", subject, to_line);
  if (to == nullptr) return;
  if (to->witness_only) {
    c.add(to_line, "witness-only-used",
          "store `" + to->name + "` is witness-only and holds no database, so it cannot be "
          "the log-shipping target of `" + s.name + "`");
  }
  if (!to->site.empty() && to->site == s.site) {
    c.add(to_line, "log-shipping-same-site",
          subjectOf(s) + " ships its logs to `" + to->name + "` in the same site (`" + s.site +
              "`); the backup store must be in another site to survive the loss of this one");
  }
  auto [it, inserted] = target_of.emplace(to->name, &s);
  if (!inserted) {
    c.add(to_line, "log-shipping-target-shared",
          "store `" + to->name + "` already restores the logs of `" + it->second->name +
              "`; a backup store restores one store only");
  }
}

}  // namespace

void checkStores(Checker& c) {
  std::map<std::string, const Store*> target_of;      // backup store -> shipping store
  std::map<std::string, const Store*> share_of;       // share path -> store
  for (const auto& s : c.topology().stores) {
    c.site(s.site, "site", subjectOf(s), lineOf(s.key_lines, "site", s.line));
    if (!s.mirror.empty()) checkMirror(c, s);
    if (!s.witness.empty()) checkWitness(c, s);
    if (s.log_shipping) {
      checkLogShipping(c, s, target_of);
      const std::string& share = s.log_shipping->share;
      if (!share.empty()) {
        auto [it, inserted] = share_of.emplace(share, &s);
        if (!inserted) {
          c.add(lineOf(s.log_shipping->key_lines, "share", s.log_shipping->line),
                "duplicate-share",
                "`share` of " + subjectOf(s) + " (`" + share + "`) is already the share of `" +
                    it->second->name + "`; each log-shipped store needs its own share");
        }
      }
    }
  }
}

}  // namespace tandem::topology::internal
