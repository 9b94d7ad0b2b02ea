#pragma once
// The real lostcard-webhook-sink (tools/webhook_sink) as a child process, for tests that deliver
// notices, issuer events or contact codes to it: it listens on 127.0.0.1 (a free port), knows the
// secrets added with addSecret (it re-reads its secrets file when that changes, so a secret
// added while it runs counts from the next request), and appends what it accepts to a JSON-lines
// file.
//
//   test::WebhookSinkProcess sink(test::makeTestDir("my_test_sink"));
//   sink.addSecret(holder_id, secret);
//   store.upsertHolder(holder_id, "Ada", sink.url("/holders/" + holder_id), secret);
//   ... deliver ...
//   for (const auto& line : test::readLines(sink.outFile())) { ... }
#include <string>
#include <vector>

#include "lostcard/test/child_process.hpp"

namespace lostcard::test {

class WebhookSinkProcess {
 public:
  // Starts the sink with its files in `dir` (secrets.tsv, out.jsonl, sink.log) and waits until it
  // listens (throws std::runtime_error after 30 s).
  explicit WebhookSinkProcess(const std::string& dir);

  // "http://127.0.0.1:<port>" + path.
  std::string url(const std::string& path) const;
  // Appends "id<TAB>secret" to its secrets file.
  void addSecret(const std::string& id, const std::string& secret);
  std::string outFile() const { return dir_ + "/out.jsonl"; }
  std::string logFile() const { return dir_ + "/sink.log"; }
  // Ends it (SIGTERM); its exit status as waitpid gives it.
  int terminate() { return process_.terminate(); }

 private:
  std::string dir_;
  ChildProcess process_;
  std::string base_;
};

}  // namespace lostcard::test
