// The Backup Service's state rules (src/backup/state.cc).
#include "backup/state.h"

#include <gtest/gtest.h>

namespace tandem::backup {
namespace {

Observation streaming() {
  Observation o;
  o.pool = "pool1.example.test";
  o.backup_pool = "pool2.example.test";
  o.source_store = "sql1";
  o.target_store = "sql2";
  o.subscription_exists = true;
  o.slot_exists = true;
  o.slot_wal_status = "reserved";
  o.slot_active = true;
  o.worker_running = true;
  o.lag_bytes = 0;
  o.lag_s = 0;
  return o;
}

TEST(BackupStateTest, NothingCopiedYetIsNotInitialized) {
  Observation o = streaming();
  o.subscription_exists = o.slot_exists = o.worker_running = false;
  ModuleState m = classify(o);
  EXPECT_EQ(m.export_state, ExportState::kNotInitialized);
  EXPECT_EQ(m.import_state, ImportState::kNormalState);
}

TEST(BackupStateTest, StreamingAndCaughtUpIsSteady) {
  ModuleState m = classify(streaming());
  EXPECT_EQ(m.export_state, ExportState::kSteadyState);
  EXPECT_EQ(m.import_state, ImportState::kNormalState);
  EXPECT_EQ(m.export_reason, "");
}

TEST(BackupStateTest, LagAboveTheSteadyBoundIsNonSteady) {
  Observation o = streaming();
  o.lag_s = 2.5;
  EXPECT_EQ(classify(o).export_state, ExportState::kNonSteadyState);
  o = streaming();
  o.lag_bytes = kSteadyLagBytes + 1;
  EXPECT_EQ(classify(o).export_state, ExportState::kNonSteadyState);
}

TEST(BackupStateTest, PartnerStoreDownIsErrorStateWithItsReason) {
  Observation o = streaming();
  o.target_error = "connection refused";
  ModuleState m = classify(o);
  EXPECT_EQ(m.export_state, ExportState::kErrorState);
  EXPECT_EQ(m.import_state, ImportState::kErrorState);
  EXPECT_NE(m.export_reason.find("`sql2` does not answer"), std::string::npos) << m.export_reason;
  EXPECT_NE(m.import_reason.find("connection refused"), std::string::npos) << m.import_reason;
}

TEST(BackupStateTest, PoolStoreDownIsErrorStateNamingIt) {
  Observation o = streaming();
  o.source_error = "timeout";
  ModuleState m = classify(o);
  EXPECT_EQ(m.export_state, ExportState::kErrorState);
  EXPECT_NE(m.export_reason.find("store `sql1` of pool `pool1.example.test` does not answer"),
            std::string::npos);
}

TEST(BackupStateTest, MissingSlotAfterMirrorFailoverIsErrorUntilTheFullCopy) {
  Observation o = streaming();
  o.slot_exists = false;
  ModuleState m = classify(o);
  EXPECT_EQ(m.export_state, ExportState::kErrorState);
  EXPECT_NE(m.export_reason.find("missing"), std::string::npos);
  o.resync_running = true;
  EXPECT_EQ(classify(o).export_state, ExportState::kNonSteadyState);
}

TEST(BackupStateTest, LostSlotIsErrorState) {
  Observation o = streaming();
  o.slot_wal_status = "lost";
  ModuleState m = classify(o);
  EXPECT_EQ(m.export_state, ExportState::kErrorState);
  EXPECT_NE(m.export_reason.find("max_slot_wal_keep_size"), std::string::npos);
}

TEST(BackupStateTest, StoppedApplyWorkerIsAnImportError) {
  Observation o = streaming();
  o.worker_running = false;
  ModuleState m = classify(o);
  EXPECT_EQ(m.import_state, ImportState::kErrorState);
  EXPECT_EQ(m.export_state, ExportState::kNonSteadyState);
}

TEST(BackupStateTest, FrozenCopyIsFinalAndARefusalIsAnError) {
  Observation o = streaming();
  o.final = true;
  EXPECT_EQ(classify(o).export_state, ExportState::kFinalState);
  o = streaming();
  o.refusal = "store `sql1` was rebuilt";
  ModuleState m = classify(o);
  EXPECT_EQ(m.export_state, ExportState::kErrorState);
  EXPECT_EQ(m.export_reason, "store `sql1` was rebuilt");
}

TEST(BackupStateTest, FailedFirstCopyIsErrorNotNotInitialized) {
  Observation o = streaming();
  o.subscription_exists = false;
  o.last_resync_error = "pg_dump exited 1";
  ModuleState m = classify(o);
  EXPECT_EQ(m.export_state, ExportState::kErrorState);
  EXPECT_NE(m.export_reason.find("pg_dump exited 1"), std::string::npos);
}

TEST(BackupStateTest, StateNamesAreTheReferenceSystems) {
  EXPECT_STREQ(exportStateName(ExportState::kNotInitialized), "NotInitialized");
  EXPECT_STREQ(exportStateName(ExportState::kSteadyState), "SteadyState");
  EXPECT_STREQ(exportStateName(ExportState::kNonSteadyState), "NonSteadyState");
  EXPECT_STREQ(exportStateName(ExportState::kFinalState), "FinalState");
  EXPECT_STREQ(exportStateName(ExportState::kErrorState), "ErrorState");
  EXPECT_STREQ(importStateName(ImportState::kNormalState), "NormalState");
  EXPECT_STREQ(importStateName(ImportState::kErrorState), "ErrorState");
}

}  // namespace
}  // namespace tandem::backup
