# EbHiredis.cmake -- which hiredis the bridge is built against: 0.14
# (Debian 12) or >= 1.0 (Debian 13: 1.2). src/redis/redis_conn.c, the one
# module that knows hiredis, compiles against both; what differs is TLS.
# Sets, for src/CMakeLists.txt:
#   EB_HIREDIS_SSL        1 when hiredis_ssl (hiredis >= 1.0 built with
#                         OpenSSL) and OpenSSL (libssl, libcrypto) are found, linked as
#                         PkgConfig::HIREDIS_SSL and PkgConfig::OPENSSL, else
#                         0; compiled in as a constant (no #ifdef in .c
#                         bodies: STYLE rule 21)
#   EB_REDIS_TLS_SOURCE   redis/redis_tls.c (OpenSSL + hiredis_ssl) with
#                         TLS, redis/redis_tls_none.c (says why not) without
# Any other hiredis (0.13, or 0.14 with a 1.x-only option) is refused here
# rather than failing somewhere in the compile.
pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)

set(EB_HIREDIS_SSL 0)
if(HIREDIS_VERSION VERSION_GREATER_EQUAL 1.0)
  # Optional: pkg_search_module, since Debian 12's hiredis has no such
  # module (tests/helm/test_packaging.py requires every pkg_check_modules
  # module to exist on the build machine).
  pkg_search_module(HIREDIS_SSL QUIET IMPORTED_TARGET hiredis_ssl)
  # redis_tls.c builds the OpenSSL context itself (hiredis's checks no host
  # name): libssl-dev, which the build lists already carry.
  pkg_search_module(OPENSSL QUIET IMPORTED_TARGET openssl)
  if(HIREDIS_SSL_FOUND AND OPENSSL_FOUND)
    set(EB_HIREDIS_SSL 1)
  elseif(HIREDIS_SSL_FOUND)
    message(WARNING "hiredis_ssl found but not OpenSSL (libssl-dev): building without TLS to Redis")
  endif()
elseif(HIREDIS_VERSION VERSION_LESS 0.14)
  message(FATAL_ERROR "hiredis ${HIREDIS_VERSION} is too old: expiry-bridge needs 0.14 or >= 1.0")
endif()
set(EB_REDIS_TLS_SOURCE redis/redis_tls_none.c)
if(EB_HIREDIS_SSL)
  set(EB_REDIS_TLS_SOURCE redis/redis_tls.c)
endif()
message(STATUS "hiredis ${HIREDIS_VERSION}, hiredis_ssl ${EB_HIREDIS_SSL}")
