// lostcard-cloud: the cloud service. Accepts kiosks over mutual TLS, recognizes dropped cards,
// decides where they go, records deposits in PostgreSQL and delivers the holders' notices.
//
//   lostcard-cloud --db "host=... dbname=..." --listen 0.0.0.0:7443
//       --ca fleet-ca.crt --cert cloud.crt --key cloud.key --crl fleet-crl.pem --card-key-file card.key
//
// Options may also come from a file (--config FILE, lines "name = value").
//
// The notices waiting in the outbox hold pickup codes: they are sealed with the notice key
// (--notice-key-file, else $LOSTCARD_NOTICE_KEY, else a key derived from the card key; see
// delivery.hpp). Every cloud node of one database needs the same.
//
// --http-listen HOST:PORT also serves the people's HTTPS API (api_v1.hpp, docs/openapi.yaml)
// with the same server certificate; accounts are made with `lostcard-admin add-account`.
//
// SIGTERM/SIGINT: stop accepting, let each kiosk session finish the message in hand (decision
// committed, answer sent), close the sessions and exit 0, within --drain-timeout-ms (after that
// the sessions are closed anyway: kiosks resend what was not answered). A second signal closes
// them at once. The notice delivery worker stops after the notice it is sending.
//
// Revocation (--crl, made by tools/pki): the list is looked at before each kiosk's TLS handshake
// and every --crl-check-ms, and re-read when its file changed, so no signal or restart is needed
// and a kiosk connected under a certificate just revoked is dropped within --crl-check-ms. A list
// that cannot be used at start stops the cloud (fail closed); a bad list later is logged and the
// previous one stays in force.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/program_options.hpp>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <pqxx/except>
#include <thread>

#include <sys/prctl.h>
#include <unistd.h>

#include "lostcard/cloud/api_v1.hpp"
#include "lostcard/cloud/card_hasher.hpp"
#include "lostcard/cloud/card_import.hpp"
#include "lostcard/cloud/delivery.hpp"
#include "lostcard/cloud/deposit_service.hpp"
#include "lostcard/cloud/gateway.hpp"
#include "lostcard/cloud/image_retention.hpp"
#include "lostcard/cloud/image_vault.hpp"
#include "lostcard/cloud/store.hpp"
#include "lostcard/cloud/unclaimed.hpp"
#include "lostcard/wire/log.hpp"
#include "lostcard/wire/tls.hpp"

namespace po = boost::program_options;
namespace asio = boost::asio;
using namespace lostcard;

namespace {

// After the drain deadline, how long worker calls in hand and the notice being sent may take
// before the process exits regardless.
constexpr std::chrono::milliseconds kStopGrace{15'000};

asio::ip::tcp::endpoint parseEndpoint(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) {
    throw std::invalid_argument("--listen must be HOST:PORT, got '" + text + "'");
  }
  std::string host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return {asio::ip::make_address(host),
          static_cast<unsigned short>(std::stoul(text.substr(colon + 1)))};
}

}  // namespace

int main(int argc, char** argv) {
  // Debian's Tesseract parallelizes each recognition with OpenMP; with one recognition per
  // worker thread already, that only oversubscribes the cores (measured: about twice as slow
  // per card on a busy 2-core machine). OpenMP reads its limit from the environment when it
  // loads, before main, so the process restarts itself once with the limit set.
  if (std::getenv("OMP_THREAD_LIMIT") == nullptr) {
    ::setenv("OMP_THREAD_LIMIT", "1", 1);
    ::execv("/proc/self/exe", argv);
    // Without /proc, run on with OpenMP's default.
  }
  // The process holds card photos and read numbers in memory: a crash must not write them to a
  // core file (nor may another process of this user read its memory).
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  po::options_description desc("lostcard-cloud options");
  std::string config_file, listen, db, ca, cert, key, card_key_file, tessdata, models, log_level;
  std::string port_file, crl;
  std::string http_listen, http_port_file;
  unsigned token_ttl_minutes = 0;
  std::size_t http_max_body_bytes = 0;
  std::uint64_t http_max_import_bytes = 0;
  int signups_per_ip_per_hour = 0, signups_per_hour = 0;
  bool signup_allow_http_webhooks = false, allow_internal_webhooks = false;
  unsigned crl_check_ms = 0;
  int workers = 0, db_pool = 0, pickup_ttl_hours = 0;
  int pickup_code_tries = 0, pickup_kiosk_wrong_tries = 0, pickup_kiosk_window_s = 0;
  int operator_code_tries = 0, operator_code_window_s = 0, holder_new_codes_per_hour = 0;
  int resolve_tries = 0, resolve_window_s = 0;
  std::string image_key_file, notice_key_file;
  int image_retention_days = 0;
  int unclaimed_days = 0, alert_bin_percent = 0, alert_slots_percent = 0, online_within_s = 0;
  std::size_t max_frame_bytes = 0;
  double min_confidence = 0;
  unsigned hello_timeout_ms = 0, idle_timeout_ms = 0, db_wait_ms = 0, drain_timeout_ms = 0;
  unsigned busy_keepalive_ms = 0;
  std::size_t max_queued_recognitions = 0;
  desc.add_options()
    ("help,h", "show this help")
    ("config", po::value(&config_file), "read options from this file (name = value lines)")
    ("listen", po::value(&listen)->default_value("0.0.0.0:7443"), "kiosk gateway HOST:PORT (port 0: any free port)")
    ("port-file", po::value(&port_file), "write the bound gateway port to this file once listening")
    ("http-listen", po::value(&http_listen), "people's HTTPS API HOST:PORT (port 0: any free port); no API when absent")
    ("http-port-file", po::value(&http_port_file), "write the bound API port to this file once listening")
    ("http-max-body-bytes", po::value(&http_max_body_bytes)->default_value(64 * 1024), "largest API request body (larger: 413)")
    ("http-max-import-bytes", po::value(&http_max_import_bytes)->default_value(std::uint64_t{1} << 30), "largest bulk enrollment body, POST /v1/issuer/enrollments (larger: 413)")
    ("signups-per-ip-per-hour", po::value(&signups_per_ip_per_hour)->default_value(5), "holder sign-ups (POST /v1/holder/signup) tried from one client address per hour (more: 429)")
    ("signups-per-hour", po::value(&signups_per_hour)->default_value(100), "holder sign-ups made per hour, from every address (more: 429)")
    ("signup-allow-http-webhooks", po::bool_switch(&signup_allow_http_webhooks), "accept http:// webhooks at sign-up (a demo on one machine; https only otherwise)")
    ("allow-internal-webhooks", po::bool_switch(&allow_internal_webhooks), "POST notices and events to webhooks at loopback, private and link-local addresses too (tests, a demo on one machine, receivers on a private network); refused otherwise")
    ("token-ttl-minutes", po::value(&token_ttl_minutes)->default_value(15), "how long an API login token works")
    ("db", po::value(&db)->required(), "PostgreSQL conninfo")
    ("db-pool", po::value(&db_pool)->default_value(4), "database connections")
    ("db-wait-ms", po::value(&db_wait_ms)->default_value(60'000), "at start-up, how long to wait for an unreachable database")
    ("ca", po::value(&ca)->required(), "fleet CA certificate (PEM): kiosks must present a certificate it issued")
    ("cert", po::value(&cert)->required(), "this server's certificate chain (PEM)")
    ("key", po::value(&key)->required(), "this server's private key (PEM)")
    ("crl", po::value(&crl), "kiosk certificate revocation list (PEM, signed by the --ca), re-read when it changes")
    ("crl-check-ms", po::value(&crl_check_ms)->default_value(5'000), "how often the --crl file is looked at (it is also looked at before each kiosk's handshake)")
    ("card-key-file", po::value(&card_key_file), "card hash key file ('<key id> <hex key>'); default: $LOSTCARD_CARD_KEY")
    ("image-key-file", po::value(&image_key_file), "key file sealing the photos kept of difficult cards ('<key id> <64 hex>' lines, the first seals); default: $LOSTCARD_IMAGE_KEY; neither: no photo is kept")
    ("notice-key-file", po::value(&notice_key_file), "key file sealing the notices waiting in the outbox ('<key id> <64 hex>' lines, the first seals); default: $LOSTCARD_NOTICE_KEY; neither: a key derived from the card key")
    ("image-retention-days", po::value(&image_retention_days)->default_value(30), "delete difficult cards' photos older than this (checked hourly)")
    ("unclaimed-days", po::value(&unclaimed_days)->default_value(30), "mark cards waiting in a slot this many days for return to their issuer (checked hourly; 0: never)")
    ("alert-bin-percent", po::value(&alert_bin_percent)->default_value(80), "operators' alert when a box's difficult-card bin is this full")
    ("alert-slots-percent", po::value(&alert_slots_percent)->default_value(90), "operators' alert when this share of a box's slots is in use")
    ("online-within-s", po::value(&online_within_s)->default_value(30), "a box is online when its last heartbeat is no older than this")
    ("workers", po::value(&workers)->default_value(0), "recognition and database threads (0: one per core)")
    ("max-frame-bytes", po::value(&max_frame_bytes)->default_value(wire::kDefaultMaxFrameBytes), "largest frame a kiosk may send")
    ("hello-timeout-ms", po::value(&hello_timeout_ms)->default_value(10'000), "time a new connection has to say Hello")
    ("idle-timeout-ms", po::value(&idle_timeout_ms)->default_value(60'000), "silence after which a kiosk is considered gone")
    ("busy-keepalive-ms", po::value(&busy_keepalive_ms)->default_value(2'000), "while working for a kiosk, tell it the cloud is alive this often (0: never); keep it below the kiosks' --peer-timeout-ms")
    ("max-queued-recognitions", po::value(&max_queued_recognitions)->default_value(0), "recognitions waiting or running at most; more kiosks wait (0: twice --workers)")
    ("drain-timeout-ms", po::value(&drain_timeout_ms)->default_value(20'000), "on SIGTERM, how long sessions may take to answer the message in hand")
    ("min-confidence", po::value(&min_confidence)->default_value(0.5), "readings below this confidence (0..1) are difficult cards")
    ("pickup-code-ttl-hours", po::value(&pickup_ttl_hours)->default_value(24 * 14), "how long a pickup code works")
    ("pickup-code-tries", po::value(&pickup_code_tries)->default_value(5), "wrong codes a deposit takes before it locks (until its holder gets a new code)")
    ("pickup-kiosk-wrong-tries", po::value(&pickup_kiosk_wrong_tries)->default_value(20), "wrong codes, across all its slots, after which a kiosk refuses every pickup for a while")
    ("pickup-kiosk-window-s", po::value(&pickup_kiosk_window_s)->default_value(15 * 60), "the window --pickup-kiosk-wrong-tries counts in, in seconds")
    ("operator-code-tries", po::value(&operator_code_tries)->default_value(5), "refused operator box codes at one kiosk after which it refuses every operator code for a while")
    ("operator-code-window-s", po::value(&operator_code_window_s)->default_value(15 * 60), "the window --operator-code-tries counts in, in seconds")
    ("holder-new-codes-per-hour", po::value(&holder_new_codes_per_hour)->default_value(5), "new pickup codes a holder may ask for in an hour (asked for, or pushed by a card query)")
    ("resolve-tries", po::value(&resolve_tries)->default_value(20), "card numbers an operator may type to resolve difficult cards within --resolve-window-s (each answer tells whether a number is enrolled)")
    ("resolve-window-s", po::value(&resolve_window_s)->default_value(3600), "the window --resolve-tries counts in, in seconds")
    ("tessdata-dir", po::value(&tessdata)->default_value(""), "Tesseract data folder (default: the system's)")
    ("models-dir", po::value(&models)->default_value(""), "lostcard models/ folder (recognition configuration)")
    ("log-level", po::value(&log_level)->default_value("info"), "trace, debug, info, warn, error");

  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    if (vm.count("help")) {
      std::cout << desc << "\n";
      return 0;
    }
    if (vm.count("config")) {
      std::ifstream in(vm["config"].as<std::string>());
      if (!in) {
        throw std::runtime_error("cannot read config file " + vm["config"].as<std::string>());
      }
      po::store(po::parse_config_file(in, desc), vm);
    }
    po::notify(vm);
  } catch (const std::exception& e) {
    std::cerr << "lostcard-cloud: " << e.what() << "\n\n" << desc << "\n";
    return 2;
  }

  wire::setLogLevel(log_level);
  auto log = wire::componentLogger("cloud");
  try {
    // TLS first: a certificate or revocation list that cannot be used stops the cloud before it
    // waits for its database.
    auto tls = wire::makeServerContext({ca, cert, key});
    std::optional<wire::RevocationList> revocations;
    if (!crl.empty()) {
      revocations.emplace(tls, ca, crl);
      log->info("revocation list: {}", revocations->describe());
    } else {
      log->warn("no --crl: revoked kiosk certificates are not refused");
    }
    const auto hasher = card_key_file.empty() ? cloud::CardHasher::fromEnv()
                                              : cloud::CardHasher::fromFile(card_key_file);
    // The notices in the outbox carry pickup codes: sealed with this key (delivery.hpp).
    const auto notice_vault = cloud::loadNoticeVault(notice_key_file, hasher);
    log->info("notices in the outbox: sealed with notice key {} (from the {})",
              notice_vault.keyId(), cloud::noticeKeySource(notice_key_file));
    cloud::StoreOptions store_options;
    store_options.conninfo = db;
    store_options.notice_vault = &notice_vault;
    store_options.pool_size = db_pool;
    store_options.pickup_code_ttl = std::chrono::hours(pickup_ttl_hours);
    if (pickup_ttl_hours < 1 || pickup_code_tries < 1 || pickup_kiosk_wrong_tries < 1 ||
        pickup_kiosk_window_s < 1) {
      throw std::invalid_argument("the --pickup-* options must be at least 1");
    }
    store_options.pickup_code_tries = pickup_code_tries;
    store_options.pickup_limits.kiosk_wrong_tries = pickup_kiosk_wrong_tries;
    store_options.pickup_limits.kiosk_window = std::chrono::seconds(pickup_kiosk_window_s);
    if (operator_code_tries < 1 || operator_code_window_s < 1 || holder_new_codes_per_hour < 1 ||
        resolve_tries < 1 || resolve_window_s < 1) {
      throw std::invalid_argument(
          "--operator-code-*, --holder-new-codes-per-hour and --resolve-* must be at least 1");
    }
    store_options.operator_code_tries = operator_code_tries;
    store_options.operator_code_window = std::chrono::seconds(operator_code_window_s);
    // PostgreSQL may be restarting just when the cloud (re)starts, after a crash say: wait for
    // it up to --db-wait-ms rather than exit. Found by tools/chaos (a kill -9 of the cloud
    // followed by a PostgreSQL restart left no cloud running).
    std::optional<cloud::Store> store_holder;
    const auto db_deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(db_wait_ms);
    while (true) {
      try {
        store_holder.emplace(store_options);
        store_holder->migrate();
        break;
      } catch (const pqxx::broken_connection& e) {
        store_holder.reset();
        if (std::chrono::steady_clock::now() >= db_deadline) {
          throw;
        }
        log->warn("database not reachable ({}); retrying", e.what());
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
      }
    }
    cloud::Store& store = *store_holder;

    cloud::RecognizerOptions recognizer;
    recognizer.tessdata_dir = tessdata;
    recognizer.models_dir = models;
    {
      // Fail at start-up, not at the first card, when Tesseract cannot start.
      cloud::Recognizer probe(recognizer);
    }
    cloud::DecisionPolicy policy;
    policy.min_confidence = min_confidence;
    // Difficult cards keep their photos only sealed (image_vault.hpp); without a key, none.
    std::optional<cloud::ImageVault> image_vault;
    if (!image_key_file.empty()) {
      image_vault.emplace(cloud::ImageVault::fromFile(image_key_file));
    } else if (cloud::ImageVault::envIsSet()) {
      image_vault.emplace(cloud::ImageVault::fromEnv());
    }
    if (image_vault) {
      log->info("difficult cards' photos: sealed with image key {}, kept {} days",
                image_vault->keyId(), image_retention_days);
    } else {
      log->warn("no --image-key-file: difficult cards' photos are not kept");
    }
    cloud::ImageRetentionSweep retention(
        store, {.retention = std::chrono::hours(24 * std::max(0, image_retention_days))});
    retention.start();
    std::optional<cloud::UnclaimedSweep> unclaimed;
    if (unclaimed_days > 0) {
      unclaimed.emplace(db, cloud::UnclaimedOptions{.after = std::chrono::hours(24 * unclaimed_days)});
      unclaimed->start();
    }
    cloud::DepositService service(store, hasher, recognizer, policy,
                                  image_vault ? &*image_vault : nullptr);

    const int threads =
        workers > 0 ? workers : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    asio::thread_pool work(threads);
    asio::io_context io(1);

    cloud::GatewayOptions options;
    options.listen = parseEndpoint(listen);
    options.revocations = revocations ? &*revocations : nullptr;
    options.revocation_check = std::chrono::milliseconds(std::max(crl_check_ms, 10u));
    options.session.max_frame_bytes = max_frame_bytes;
    options.session.hello_timeout = std::chrono::milliseconds(hello_timeout_ms);
    options.session.idle_timeout = std::chrono::milliseconds(idle_timeout_ms);
    options.session.busy_keepalive = std::chrono::milliseconds(busy_keepalive_ms);
    options.max_queued_recognitions = max_queued_recognitions > 0
                                          ? max_queued_recognitions
                                          : 2 * static_cast<std::size_t>(threads);
    // SIGINT/SIGTERM are caught from here on (handled below, once everything runs): a signal
    // that arrives as soon as the port files exist must stop the cloud cleanly, not kill it.
    asio::signal_set signals(io, SIGINT, SIGTERM);
    cloud::Gateway gateway(io, tls, service, work.get_executor(), options);
    gateway.start();
    if (!port_file.empty()) {
      std::ofstream(port_file) << gateway.localEndpoint().port() << "\n";
    }
    // The people's HTTPS API (api_v1.hpp), on the same I/O thread, its requests on threads of
    // its own; with the cloud's server certificate and no client certificate.
    std::optional<cloud::PeopleApi> people_api;
    if (!http_listen.empty()) {
      cloud::PeopleApiOptions api_options;
      api_options.conninfo = db;
      api_options.cert_file = cert;
      api_options.key_file = key;
      api_options.token_ttl = std::chrono::minutes(std::max(1u, token_ttl_minutes));
      api_options.server.listen = parseEndpoint(http_listen);
      api_options.server.max_body_bytes = http_max_body_bytes;
      api_options.card_hasher = &hasher;
      api_options.card_formats = cloud::loadCardFormats(models);
      api_options.max_import_bytes = http_max_import_bytes;
      api_options.fleet_thresholds = {.bin_percent = alert_bin_percent,
                                      .slots_percent = alert_slots_percent,
                                      .online_within = std::chrono::seconds(online_within_s)};
      api_options.image_vault = image_vault ? &*image_vault : nullptr;
      api_options.notice_vault = &notice_vault;
      api_options.pickup_code_ttl = store_options.pickup_code_ttl;
      api_options.pickup_code_tries = store_options.pickup_code_tries;
      api_options.signups_per_ip_per_hour = signups_per_ip_per_hour;
      api_options.signups_per_hour = signups_per_hour;
      api_options.allow_http_webhooks = signup_allow_http_webhooks;
      api_options.max_new_codes_per_hour = holder_new_codes_per_hour;
      api_options.resolve_tries = resolve_tries;
      api_options.resolve_window = std::chrono::seconds(resolve_window_s);
      people_api.emplace(io, api_options);
      people_api->start();
      if (!http_port_file.empty()) {
        std::ofstream(http_port_file) << people_api->localEndpoint().port() << "\n";
      }
      log->info("people's API on port {}", people_api->localEndpoint().port());
    }

    cloud::DeliveryOptions delivery_options;
    delivery_options.conninfo = db;
    delivery_options.notice_vault = &notice_vault;
    delivery_options.allow_internal_webhooks = allow_internal_webhooks;
    // One notice per round: the worker checks for stop() between rounds, so a stopping cloud
    // waits for the notice being sent, not for a whole batch.
    delivery_options.batch_size = 1;
    cloud::NoticeDelivery delivery(delivery_options);
    delivery.start();

    signals.async_wait([&](const boost::system::error_code& ec, int signo) {
      if (ec) {
        return;
      }
      const auto drain_timeout = std::chrono::milliseconds(drain_timeout_ms);
      if (people_api) {
        people_api->stop();  // API requests in hand are dropped: people retry, nothing is lost
      }
      log->info("signal {}: draining sessions (at most {} ms)", signo, drain_timeout.count());
      // A second signal: close the sessions now. (Armed first: with no session, drain() is done
      // at once, and its callback cancels this wait.)
      signals.async_wait([&](const boost::system::error_code& again_ec, int again) {
        if (!again_ec) {
          log->warn("signal {}: closing every session now", again);
          gateway.stop();
        }
      });
      gateway.drain(drain_timeout, [&signals] { signals.cancel(); });
      // The last resort: a worker call that never returns (a hung database call, say) must not
      // keep a stopping cloud alive. Nothing is lost: kiosks resend, the outbox keeps notices.
      std::thread([drain_timeout, log] {
        std::this_thread::sleep_for(drain_timeout + kStopGrace);
        log->critical("still stopping {} ms after the drain deadline; exiting now",
                      kStopGrace.count());
        std::_Exit(1);
      }).detach();
    });
    log->info("lostcard-cloud ready: {} workers, {} recognition places, gateway on port {}",
              threads, options.max_queued_recognitions, gateway.localEndpoint().port());
    io.run();
    people_api.reset();
    delivery.stop();
    retention.stop();
    unclaimed.reset();
    work.join();
    log->info("stopped");
  } catch (const std::exception& e) {
    log->critical("{}", e.what());
    return 1;
  }
  return 0;
}
