// deploy's process mechanics: run records, ports, log lines, local addresses.
#include "deploy/internal/processes.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace tandem::deploy::internal {
namespace {

std::string tempDir() {
  char tmpl[] = "/tmp/tandem-deploy-test-XXXXXX";
  return ::mkdtemp(tmpl);
}

TEST(ProcessesTest, RunRecordsRoundTrip) {
  std::string dir = tempDir();
  RunRecord r{"sql1",
              "store",
              "Site1",
              "sqlagent",
              "127.0.1.10",
              dir + "/a.log",
              4242,
              {"tandemd", "--role", "sqlagent"},
              "2026-11-25T00:00:00Z"};
  ASSERT_TRUE(writeRunRecord(dir, r).isOk());
  auto back = readRunRecord(dir, "sql1");
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->pid, 4242);
  EXPECT_EQ(back->argv, r.argv);
  EXPECT_EQ(readRunRecords(dir).size(), 1u);
  EXPECT_FALSE(readRunRecord(dir, "absent").has_value());
  std::filesystem::remove_all(dir);
}

TEST(ProcessesTest, ATakenPortIsRefusedNamingAddressAndPort) {
  // 127.77.x: a test-only loopback address nobody else uses.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(0);
  ::inet_pton(AF_INET, "127.77.0.9", &a.sin_addr);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  Status st = checkPortsFree("sql1", "127.77.0.9", {port});
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("127.77.0.9:" + std::to_string(port)), std::string::npos)
      << st.message();
  EXPECT_TRUE(checkPortsFree("sql1", "127.77.0.10", {port}).isOk());
  ::close(fd);
  EXPECT_TRUE(checkPortsFree("sql1", "127.77.0.9", {port}).isOk());
}

TEST(ProcessesTest, LoopbackAddressesAreLocalOthersMustBeOnAnInterface) {
  EXPECT_TRUE(checkAddressIsLocal("127.42.3.4").isOk());
  EXPECT_EQ(checkAddressIsLocal("not-an-address").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(checkAddressIsLocal("192.0.2.77").code(), StatusCode::kFailedPrecondition);
}

TEST(ProcessesTest, LastLogLineSkipsBlankLines) {
  std::string dir = tempDir();
  std::ofstream(dir + "/x.log") << "first\nerror: the edge role is not built yet\n\n  \n";
  EXPECT_EQ(lastLogLine(dir + "/x.log"), "error: the edge role is not built yet");
  EXPECT_EQ(lastLogLine(dir + "/missing.log"), "");
  std::filesystem::remove_all(dir);
}

TEST(ProcessesTest, ADeadOrForeignPidIsNotOurs) {
  EXPECT_FALSE(isOurProcess(0));
  EXPECT_FALSE(isOurProcess(::getpid()));  // alive, but not tandemd
}

}  // namespace
}  // namespace tandem::deploy::internal
