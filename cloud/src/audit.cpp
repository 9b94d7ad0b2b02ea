#include "lostcard/cloud/audit.hpp"

#include <cctype>
#include <pqxx/pqxx>
#include <stdexcept>

#include "lostcard/wire/envelope.hpp"
#include "registry_pg.hpp"

namespace lostcard::cloud {

namespace {

constexpr std::size_t kMinDigitRunText = 6;
constexpr std::size_t kMinDigitRunId = 8;

std::vector<std::string> parseTextArray(const pqxx::field& field) {
  std::vector<std::string> items;
  auto parser = field.as_array();
  for (auto item = parser.get_next(); item.first != pqxx::array_parser::done;
       item = parser.get_next()) {
    if (item.first == pqxx::array_parser::string_value) {
      items.push_back(item.second);
    }
  }
  return items;
}

}  // namespace

std::string maskDigitRuns(const std::string& text, std::size_t min_run) {
  const auto digit = [&](std::size_t k) {
    return k < text.size() && std::isdigit(static_cast<unsigned char>(text[k])) != 0;
  };
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (!digit(i)) {
      out += text[i++];
      continue;
    }
    // A run of digits, single spaces or dashes between them allowed ("4000 0566 5566 5556").
    std::size_t end = i;
    std::size_t digits = 0;
    while (true) {
      while (digit(end)) {
        ++end;
        ++digits;
      }
      if (end + 1 < text.size() && (text[end] == ' ' || text[end] == '-') && digit(end + 1)) {
        ++end;
        continue;
      }
      break;
    }
    if (digits >= min_run) {
      out += '#';
    } else {
      out.append(text, i, end - i);
    }
    i = end;
  }
  return out;
}

void appendAudit(pqxx::transaction_base& tx, const AuditEntry& entry,
                 std::chrono::system_clock::time_point at) {
  if (entry.actor_role.empty() || entry.action.empty() || entry.result.empty()) {
    throw std::invalid_argument("an audit entry needs an actor role, an action and a result");
  }
  std::vector<std::string> ids;
  ids.reserve(entry.object_ids.size());
  for (const auto& id : entry.object_ids) {
    ids.push_back(wire::isUuid(id) ? id : maskDigitRuns(id, kMinDigitRunId));
  }
  tx.exec_params(
      "INSERT INTO audit_log (at, actor_role, actor_id, action, object_kind, object_ids, result, "
      "                       detail) "
      "VALUES ($1::timestamptz, $2, $3, $4, $5, $6::text[], $7, $8)",
      detail::pgTimestamp(at), entry.actor_role, maskDigitRuns(entry.actor_id, kMinDigitRunId),
      maskDigitRuns(entry.action, kMinDigitRunText), entry.object_kind,
      detail::textArrayLiteral(ids), maskDigitRuns(entry.result, kMinDigitRunText),
      maskDigitRuns(entry.detail, kMinDigitRunText));
}

std::vector<AuditRecord> readAudit(pqxx::transaction_base& tx, int limit,
                                   const std::optional<std::string>& action) {
  const auto rows =
      tx.exec_params("SELECT id, " + detail::epochMicrosSql("at") +
                         ", actor_role, actor_id, action, object_kind, object_ids, result, detail "
                         "FROM audit_log WHERE ($1::text IS NULL OR action = $1) "
                         "ORDER BY id DESC LIMIT $2",
                     action, limit);
  std::vector<AuditRecord> records;
  for (const auto& r : rows) {
    AuditRecord record;
    record.id = r[0].as<std::int64_t>();
    record.at = detail::fromEpochMicros(r[1].as<std::int64_t>());
    record.entry.actor_role = r[2].as<std::string>();
    record.entry.actor_id = r[3].as<std::string>();
    record.entry.action = r[4].as<std::string>();
    record.entry.object_kind = r[5].as<std::string>();
    record.entry.object_ids = parseTextArray(r[6]);
    record.entry.result = r[7].as<std::string>();
    record.entry.detail = r[8].as<std::string>();
    records.push_back(std::move(record));
  }
  return records;
}

}  // namespace lostcard::cloud
