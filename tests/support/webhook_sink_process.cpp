#include "lostcard/test/webhook_sink_process.hpp"

#include <chrono>
#include <fstream>
#include <regex>
#include <stdexcept>

#include "lostcard/test/files.hpp"

namespace lostcard::test {

namespace {

// The secrets file exists before the sink reads it.
std::string withSecretsFile(const std::string& dir) {
  std::ofstream(dir + "/secrets.tsv") << "# id<TAB>secret\n";
  return dir;
}

}  // namespace

WebhookSinkProcess::WebhookSinkProcess(const std::string& dir)
    : dir_(withSecretsFile(dir)),
      process_({binDir() + "/lostcard-webhook-sink", "--listen", "127.0.0.1:0", "--secrets",
                dir_ + "/secrets.tsv", "--out", outFile()},
               logFile()) {
  std::smatch match;
  std::string log;
  const std::regex listening("listening on 127\\.0\\.0\\.1:([0-9]+)");
  if (!eventually(
          [&] {
            log = readFile(logFile());
            return std::regex_search(log, match, listening);
          },
          std::chrono::seconds(30))) {
    throw std::runtime_error("lostcard-webhook-sink did not start: " + log);
  }
  base_ = "http://127.0.0.1:" + match[1].str();
}

std::string WebhookSinkProcess::url(const std::string& path) const { return base_ + path; }

void WebhookSinkProcess::addSecret(const std::string& id, const std::string& secret) {
  std::ofstream(dir_ + "/secrets.tsv", std::ios::app) << id << '\t' << secret << '\n';
}

}  // namespace lostcard::test
