// syncStandby: append-only copy of versions from the active xds to the standby copy.
#include "cms/internal/sync.h"

#include "store/transaction.h"

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
  if (*s_epoch != 0) {  // a standby is never active: an old active copy loses its epoch here
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

Result<ExportFile> exportFrom(Xds& xds) {
  ExportFile f;
  f.store = xds.location().store;
  f.pool = xds.location().pool;
  auto e = xds.epoch();
  if (!e) return fail(e.error());
  f.epoch = *e;
  f.exported_at = realClock().wallNow();
  for (int64_t after = 0;;) {
    auto batch = xds.list(after, 50, true);
    if (!batch) return fail(batch.error());
    if (batch->empty()) break;
    after = batch->back().number;
    for (auto& v : *batch) f.versions.push_back(std::move(v));
  }
  if (f.versions.empty())
    return fail(notFound("the CMS on store `" + f.store + "` holds no version yet; nothing to "
                         "export (`tandemctl topology publish FILE` first)"));
  return f;
}

Result<int64_t> importInto(Xds& xds, const ExportFile& file) {
  if (file.versions.empty())
    return fail(invalidArgument("the CMS export holds no version; nothing to import"));
  auto latest = xds.latest(false);
  if (!latest) return fail(latest.error());
  if (*latest) {
    const Version& mine = **latest;
    const Version& theirs = file.versions.back();
    if (mine.number == theirs.number && mine.epoch == theirs.epoch &&
        formatUtc(mine.created_at) == formatUtc(theirs.created_at))
      return int64_t{0};
    return fail(failedPrecondition(
        "store `" + xds.location().store + "` already holds CMS versions (newest " +
        std::to_string(mine.number) + "), so it is not an empty CMS store; run `tandemctl cms "
        "install-db --store " + xds.location().store + " --clean` first"));
  }
  int64_t loaded = 0;
  Status st = store::inTransaction(xds.conn(), [&](store::Connection&) -> Status {
    loaded = 0;
    for (const auto& v : file.versions) {
      auto ins = xds.insert(v);
      if (!ins) return ins.error();
      ++loaded;
    }
    return Status::ok();
  });
  if (!st.isOk()) return fail(st.withContext("importing into store `" + xds.location().store + "`"));
  return loaded;
}

}  // namespace tandem::cms::internal
