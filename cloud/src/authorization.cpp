#include "lostcard/cloud/authorization.hpp"

#include <algorithm>

namespace lostcard::cloud {

namespace {

struct RoleName {
  Role role;
  const char* name;
};
constexpr RoleName kRoleNames[] = {
    {Role::kHolder, "holder"},
    {Role::kOperator, "operator"},
    {Role::kIssuerStaff, "issuer_staff"},
    {Role::kAdmin, "admin"},
};

bool servesKiosk(const Principal& who, const std::string& kiosk_id) {
  return who.role == Role::kOperator &&
         std::find(who.kiosk_ids.begin(), who.kiosk_ids.end(), kiosk_id) != who.kiosk_ids.end();
}

}  // namespace

std::string roleName(Role role) {
  for (const auto& entry : kRoleNames) {
    if (entry.role == role) {
      return entry.name;
    }
  }
  return "unknown";
}

std::optional<Role> roleFromName(std::string_view name) {
  for (const auto& entry : kRoleNames) {
    if (name == entry.name) {
      return entry.role;
    }
  }
  return std::nullopt;
}

Access mayListHolderDeposits(const Principal& who, const std::string& holder_id) {
  switch (who.role) {
    case Role::kAdmin:
      return Access::allow();
    case Role::kHolder:
      if (!who.holder_id.empty() && who.holder_id == holder_id) {
        return Access::allow();
      }
      return Access::forbid("a holder sees only their own deposits");
    default:
      return Access::forbid("only holders list their deposits");
  }
}

Access mayListKioskDeposits(const Principal& who, const std::string& kiosk_id) {
  switch (who.role) {
    case Role::kAdmin:
      return Access::allow();
    case Role::kOperator:
      if (servesKiosk(who, kiosk_id)) {
        return Access::allow();
      }
      return Access::forbid("this operator does not serve kiosk " + kiosk_id);
    default:
      return Access::forbid("only operators list a kiosk's deposits");
  }
}

Access mayListIssuerCards(const Principal& who, const std::string& issuer_id) {
  switch (who.role) {
    case Role::kAdmin:
      return Access::allow();
    case Role::kIssuerStaff:
      if (!who.issuer_id.empty() && who.issuer_id == issuer_id) {
        return Access::allow();
      }
      return Access::forbid("issuer staff see only their own issuer's cards");
    default:
      return Access::forbid("only issuer staff list an issuer's cards");
  }
}

Access mayEnrollIssuerCards(const Principal& who, const std::string& issuer_id) {
  switch (who.role) {
    case Role::kAdmin:
      return Access::allow();
    case Role::kIssuerStaff:
      if (!who.issuer_id.empty() && who.issuer_id == issuer_id) {
        return Access::allow();
      }
      return Access::forbid("issuer staff enroll cards only for their own issuer");
    default:
      return Access::forbid("only issuer staff enroll an issuer's cards");
  }
}

Access mayReadDeposit(const Principal& who, const DepositOwnership& deposit) {
  switch (who.role) {
    case Role::kAdmin:
      return Access::allow();
    case Role::kHolder:
      return !deposit.holder_id.empty() && deposit.holder_id == who.holder_id ? Access::allow()
                                                                              : Access::hide();
    case Role::kOperator:
      return servesKiosk(who, deposit.kiosk_id) ? Access::allow() : Access::hide();
    case Role::kIssuerStaff:
      return !deposit.issuer_id.empty() && deposit.issuer_id == who.issuer_id ? Access::allow()
                                                                              : Access::hide();
  }
  return Access::hide();
}

Access mayViewFleet(const Principal& who) {
  if (who.role == Role::kAdmin || who.role == Role::kOperator) {
    return Access::allow();
  }
  return Access::forbid("only operators see the fleet");
}

Access mayServeKiosk(const Principal& who, const std::string& kiosk_id) {
  switch (who.role) {
    case Role::kAdmin:
      return Access::allow();
    case Role::kOperator:
      if (servesKiosk(who, kiosk_id)) {
        return Access::allow();
      }
      return Access::forbid("this operator does not serve kiosk " + kiosk_id);
    default:
      return Access::forbid("only operators service kiosks");
  }
}

namespace {

// One object of a kiosk whose id can be probed: its operators and admins; hidden from the
// operators of other kiosks; `forbidden` for every other role.
Access mayHandleKioskObject(const Principal& who, const std::string& kiosk_id,
                            const char* forbidden) {
  switch (who.role) {
    case Role::kAdmin:
      return Access::allow();
    case Role::kOperator:
      return servesKiosk(who, kiosk_id) ? Access::allow() : Access::hide();
    default:
      return Access::forbid(forbidden);
  }
}

}  // namespace

Access mayReviewDifficult(const Principal& who, const std::string& deposit_kiosk_id) {
  return mayHandleKioskObject(who, deposit_kiosk_id, "only operators review difficult cards");
}

Access mayAcknowledgeAlert(const Principal& who, const std::string& alert_kiosk_id) {
  return mayHandleKioskObject(who, alert_kiosk_id, "only operators acknowledge alerts");
}

std::optional<std::vector<std::string>> servedKiosks(const Principal& who) {
  if (who.role == Role::kAdmin) {
    return std::nullopt;
  }
  return who.role == Role::kOperator ? who.kiosk_ids : std::vector<std::string>{};
}

Access mayUseHolderApi(const Principal& who) {
  if (who.role != Role::kHolder || who.holder_id.empty()) {
    return Access::forbid("only a holder's own account may use the holder's endpoints");
  }
  return Access::allow();
}

}  // namespace lostcard::cloud
