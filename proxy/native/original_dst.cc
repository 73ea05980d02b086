// originalDst(fd): the destination a connection had before an iptables nat
// REDIRECT rewrote it (SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST). The proxy uses it to
// pick the listener for a captured connection, the way Envoy's original_dst filter does.
#include <node_api.h>

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>

#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80  // linux/netfilter_ipv6/ip6_tables.h
#endif

namespace {

napi_value ThrowErrno(napi_env env, const char* what, int err) {
  std::string message = std::string("originalDst: ") + what + ": " + std::strerror(err);
  napi_value code;
  napi_value msg;
  napi_value error;
  const char* name = err == ENOENT ? "ENOENT" : "ERRNO";
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, message.c_str(), message.size(), &msg);
  napi_create_error(env, code, msg, &error);
  napi_value errnoValue;
  napi_create_int32(env, err, &errnoValue);
  napi_set_named_property(env, error, "errno", errnoValue);
  napi_throw(env, error);
  return nullptr;
}

napi_value MakeResult(napi_env env, const char* address, int port, int family) {
  napi_value result;
  napi_value addr;
  napi_value portValue;
  napi_value familyValue;
  napi_create_object(env, &result);
  napi_create_string_utf8(env, address, NAPI_AUTO_LENGTH, &addr);
  napi_create_int32(env, port, &portValue);
  napi_create_int32(env, family, &familyValue);
  napi_set_named_property(env, result, "address", addr);
  napi_set_named_property(env, result, "port", portValue);
  napi_set_named_property(env, result, "family", familyValue);
  return result;
}

napi_value OriginalDst(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc < 1) {
    napi_throw_type_error(env, nullptr, "originalDst(fd): fd is required");
    return nullptr;
  }
  int32_t fd = -1;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, nullptr, "originalDst(fd): fd must be a non-negative integer");
    return nullptr;
  }

  // Which family the socket has decides which netfilter table holds the original address.
  sockaddr_storage local{};
  socklen_t localLen = sizeof(local);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &localLen) != 0) {
    return ThrowErrno(env, "getsockname", errno);
  }

  if (local.ss_family == AF_INET6) {
    sockaddr_in6 dst{};
    socklen_t len = sizeof(dst);
    if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &dst, &len) == 0) {
      char text[INET6_ADDRSTRLEN];
      inet_ntop(AF_INET6, &dst.sin6_addr, text, sizeof(text));
      // An IPv4 connection accepted on a dual-stack socket is reported as ::ffff:a.b.c.d.
      if (IN6_IS_ADDR_V4MAPPED(&dst.sin6_addr)) {
        return MakeResult(env, text + 7, ntohs(dst.sin6_port), 4);
      }
      return MakeResult(env, text, ntohs(dst.sin6_port), 6);
    }
    int err6 = errno;
    // Dual-stack sockets carrying IPv4 traffic keep the original address in the IPv4 table.
    sockaddr_in dst4{};
    socklen_t len4 = sizeof(dst4);
    if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst4, &len4) == 0) {
      char text[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, &dst4.sin_addr, text, sizeof(text));
      return MakeResult(env, text, ntohs(dst4.sin_port), 4);
    }
    return ThrowErrno(env, "getsockopt(IP6T_SO_ORIGINAL_DST)", err6);
  }

  sockaddr_in dst{};
  socklen_t len = sizeof(dst);
  if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &len) != 0) {
    return ThrowErrno(env, "getsockopt(SO_ORIGINAL_DST)", errno);
  }
  char text[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &dst.sin_addr, text, sizeof(text));
  return MakeResult(env, text, ntohs(dst.sin_port), 4);
}

napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "originalDst", NAPI_AUTO_LENGTH, OriginalDst, nullptr, &fn);
  napi_set_named_property(env, exports, "originalDst", fn);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
