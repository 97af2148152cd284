// syncStandby: append-only copy of versions from the active xds to the standby copy.
#include "cms/internal/sync.h"

namespace tandem::cms::internal {
namespace {

bool sameVersion(const Version& a, const Version& b) {
  return a.number == b.number && a.epoch == b.epoch && a.author == b.author &&
         formatUtc(a.created_at) == formatUtc(b.created_at);
}

Result<int64_t> copyAll(Xds& active, Xds& standby) {
  auto a_epoch = active.epoch();
  if (!a_epoch) return fail(a_epoch.error());
  auto s_epoch = standby.epoch();
  if (!s_epoch) return fail(s_epoch.error());
  if (*s_epoch >= *a_epoch)
    return fail(failedPrecondition("store `" + standby.location().store + "` has CMS epoch " +
                                   std::to_string(*s_epoch) + ", not lower than the active's " +
                                   std::to_string(*a_epoch) + "; it is not a standby"));
  if (*s_epoch < 0) {
    Status st = standby.setEpoch(0);
    if (!st.isOk()) return fail(st);
  }

  auto s_latest = standby.latest(false);
  if (!s_latest) return fail(s_latest.error());
  int64_t from = 0;
  if (*s_latest) {
    // Walk back from the standby's newest version to the newest one both hold identically.
    auto s_list = standby.list(0, 1000000, false, true);
    if (!s_list) return fail(s_list.error());
    auto a_list = active.list(0, 1000000, false, true);
    if (!a_list) return fail(a_list.error());
    std::map<int64_t, const Version*> a_by_number;
    for (const auto& v : *a_list) a_by_number[v.number] = &v;
    for (const auto& v : *s_list) {
      auto it = a_by_number.find(v.number);
      if (it != a_by_number.end() && sameVersion(v, *it->second)) {
        from = v.number;
        break;
      }
    }
    if (from < (*s_latest)->number) {
      Status st = standby.truncateAfter(from);
      if (!st.isOk()) return fail(st);
    }
  }
  int64_t copied = 0;
  for (;;) {
    auto batch = active.list(from, 50, true);
    if (!batch) return fail(batch.error());
    if (batch->empty()) break;
    for (const auto& v : *batch) {
      auto ins = standby.insert(v);
      if (!ins) return fail(ins.error());
      from = v.number;
      ++copied;
    }
  }
  return copied;
}

}  // namespace

Result<int64_t> syncStandby(Xds& active, Xds& standby) {
  auto copied = copyAll(active, standby);
  if (!copied) {
    (void)active.setMeta("standby_error", copied.error().message());
    return copied;
  }
  auto latest = standby.latest(false);
  if (latest && *latest) (void)active.setMeta("standby_version", std::to_string((*latest)->number));
  (void)active.setMeta("standby_store", standby.location().store);
  (void)active.setMeta("standby_synced_at", formatUtc(realClock().wallNow()));
  (void)active.setMeta("standby_error", "");
  return copied;
}

}  // namespace tandem::cms::internal
