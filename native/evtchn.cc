// Event channel ioctls on /dev/xen/evtchn.
#include <unistd.h>

#include <cerrno>

#include "args.h"
#include "exports.h"
#include "ioctl.h"
#include "xen_ioctl.h"

namespace xen {
namespace {

constexpr uint32_t kMaxDomid = 0xffff;

// evtchnBindUnboundPort(fd, remoteDomain): local port
Napi::Value BindUnboundPort(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0);
  EvtchnBindUnboundPort req{};
  req.remote_domain = U32Arg(info, 1, "remoteDomain", 0, kMaxDomid);
  int port = Ioctl(info.Env(), fd, kEvtchnBindUnboundPort, &req, "IOCTL_EVTCHN_BIND_UNBOUND_PORT");
  return Napi::Number::New(info.Env(), port);
}

// evtchnBindInterdomain(fd, remoteDomain, remotePort): local port
Napi::Value BindInterdomain(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0);
  EvtchnBindInterdomain req{};
  req.remote_domain = U32Arg(info, 1, "remoteDomain", 0, kMaxDomid);
  req.remote_port = U32Arg(info, 2, "remotePort", 0, 0xffffffff);
  int port = Ioctl(info.Env(), fd, kEvtchnBindInterdomain, &req, "IOCTL_EVTCHN_BIND_INTERDOMAIN");
  return Napi::Number::New(info.Env(), port);
}

Napi::Value PortOp(const Napi::CallbackInfo& info, unsigned long request, const char* name) {
  int fd = FdArg(info, 0);
  EvtchnPort req{};
  req.port = U32Arg(info, 1, "port", 0, 0xffffffff);
  Ioctl(info.Env(), fd, request, &req, name);
  return info.Env().Undefined();
}

// evtchnUnbind(fd, port)
Napi::Value Unbind(const Napi::CallbackInfo& info) {
  return PortOp(info, kEvtchnUnbind, "IOCTL_EVTCHN_UNBIND");
}

// evtchnNotify(fd, port)
Napi::Value Notify(const Napi::CallbackInfo& info) {
  return PortOp(info, kEvtchnNotify, "IOCTL_EVTCHN_NOTIFY");
}

// evtchnUnmask(fd, port): writing a fired port back re-enables it; an event
// that came while it was masked is delivered now.
Napi::Value Unmask(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0);
  uint32_t port = U32Arg(info, 1, "port", 0, 0xffffffff);
  ssize_t n;
  do n = write(fd, &port, sizeof port);
  while (n < 0 && errno == EINTR);
  if (n < 0) throw ErrnoError(info.Env(), errno, "write(evtchn)");
  return info.Env().Undefined();
}

}  // namespace

void InitEvtchn(Napi::Env env, Napi::Object exports) {
  exports.Set("evtchnBindUnboundPort", Napi::Function::New(env, BindUnboundPort, "evtchnBindUnboundPort"));
  exports.Set("evtchnBindInterdomain", Napi::Function::New(env, BindInterdomain, "evtchnBindInterdomain"));
  exports.Set("evtchnUnbind", Napi::Function::New(env, Unbind, "evtchnUnbind"));
  exports.Set("evtchnNotify", Napi::Function::New(env, Notify, "evtchnNotify"));
  exports.Set("evtchnUnmask", Napi::Function::New(env, Unmask, "evtchnUnmask"));
}

}  // namespace xen
