#include "lostcard/kiosk/uplink.hpp"

#include <openssl/ssl.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>

#include "lostcard/wire/framing.hpp"

namespace lostcard::kiosk {

namespace asio = boost::asio;

int fitToFrameLimit(v1::Envelope& env, std::size_t max_frame_bytes) {
  if (!env.has_card_captured()) {
    return 0;
  }
  auto* captured = env.mutable_card_captured();
  int dropped = 0;
  // A frame is the message plus a varint length of at most 10 bytes.
  while (env.ByteSizeLong() + 10 > max_frame_bytes &&
         (captured->front_size() > 0 || captured->back_size() > 0)) {
    auto* face = captured->back_size() >= captured->front_size() ? captured->mutable_back()
                                                                 : captured->mutable_front();
    face->RemoveLast();
    ++dropped;
  }
  return dropped;
}

Connector<TlsStream> makeTlsConnector(asio::any_io_executor executor, asio::ssl::context& context,
                                      TlsEndpoint endpoint, std::chrono::milliseconds timeout) {
  return [executor, &context, endpoint = std::move(endpoint),
          timeout]() -> asio::awaitable<Connected<TlsStream>> {
    Connected<TlsStream> out;
    boost::system::error_code ec;
    asio::ip::tcp::resolver resolver(executor);
    auto endpoints = co_await resolver.async_resolve(endpoint.host, endpoint.port,
                                                     asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      out.error = "cannot resolve " + endpoint.host + ": " + ec.message();
      co_return out;
    }
    auto stream = std::make_shared<TlsStream>(executor, context);
    // Gives up a connect or handshake that hangs: closing the socket ends the pending operation.
    auto deadline = std::make_shared<asio::steady_timer>(executor, timeout);
    deadline->async_wait([stream](boost::system::error_code wait_ec) {
      if (!wait_ec) {
        boost::system::error_code ignored;
        stream->lowest_layer().close(ignored);
      }
    });
    co_await asio::async_connect(stream->lowest_layer(), endpoints,
                                 asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      deadline->cancel();
      out.error = "cannot connect to " + endpoint.host + ":" + endpoint.port + ": " + ec.message();
      co_return out;
    }
    stream->lowest_layer().set_option(asio::socket_base::keep_alive(true), ec);
    if (SSL_set_tlsext_host_name(stream->native_handle(), endpoint.server_name.c_str()) != 1) {
      deadline->cancel();
      out.error = "cannot set TLS server name " + endpoint.server_name;
      co_return out;
    }
    stream->set_verify_callback(asio::ssl::host_name_verification(endpoint.server_name));
    co_await stream->async_handshake(asio::ssl::stream_base::client,
                                     asio::redirect_error(asio::use_awaitable, ec));
    deadline->cancel();
    if (ec) {
      out.error = "TLS handshake with " + endpoint.server_name + " failed: " + ec.message();
      co_return out;
    }
    out.stream.emplace(std::move(*stream));
    co_return out;
  };
}

}  // namespace lostcard::kiosk
