#ifndef OUTBOX_BRIDGE_CLIBPQ_SHIM_H
#define OUTBOX_BRIDGE_CLIBPQ_SHIM_H
#include <libpq-fe.h>
/* The socket reactor that waits for libpq's replies (Postgres/LibPQ/SocketReactor.swift);
   Glibc's Swift module leaves these Linux headers out. */
#include <sys/epoll.h>
#include <sys/timerfd.h>
#endif
