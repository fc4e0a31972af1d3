// gntalloc (share our pages) and gntdev (map a peer's pages) ioctls.
#include <cstring>
#include <vector>

#include "args.h"
#include "exports.h"
#include "ioctl.h"
#include "xen_ioctl.h"

namespace xen {
namespace {

constexpr uint32_t kMaxDomid = 0xffff;
// A bound on one request so a bad count cannot make us allocate gigabytes.
constexpr uint32_t kMaxPages = 1 << 16;

Napi::Number Index(Napi::Env env, uint64_t index, const char* what) {
  if (index > kMaxSafeInteger) {
    throw Napi::RangeError::New(env, std::string(what) + " returned an index beyond 2^53");
  }
  return Napi::Number::New(env, static_cast<double>(index));
}

// gntallocAllocGref(fd, domid, count, writable): { index, refs }
Napi::Value JsGntallocAllocGref(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  uint32_t domid = U32Arg(info, 1, "domid", 0, kMaxDomid);
  uint32_t count = U32Arg(info, 2, "count", 1, kMaxPages);
  bool writable = BoolArg(info, 3, "writable");

  // The struct ends in a one-element array the kernel fills with `count` refs.
  size_t bytes = offsetof(GntallocAllocGref, gref_ids) + sizeof(uint32_t) * count;
  std::vector<uint64_t> storage((bytes + 7) / 8, 0);
  auto* req = reinterpret_cast<GntallocAllocGref*>(storage.data());
  req->domid = static_cast<uint16_t>(domid);
  req->flags = writable ? kGntallocFlagWritable : 0;
  req->count = count;
  Ioctl(env, fd, kGntallocAllocGref, req, "GNTALLOC_ALLOC_GREF");

  Napi::Array refs = Napi::Array::New(env, count);
  for (uint32_t i = 0; i < count; i++) refs.Set(i, Napi::Number::New(env, req->gref_ids[i]));
  Napi::Object result = Napi::Object::New(env);
  result.Set("index", Index(env, req->index, "GNTALLOC_ALLOC_GREF"));
  result.Set("refs", refs);
  return result;
}

// gntallocDeallocGref(fd, index, count)
Napi::Value JsGntallocDeallocGref(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0);
  GntallocDeallocGref req{};
  req.index = U64Arg(info, 1, "index");
  req.count = U32Arg(info, 2, "count", 1, kMaxPages);
  Ioctl(info.Env(), fd, kGntallocDeallocGref, &req, "GNTALLOC_DEALLOC_GREF");
  return info.Env().Undefined();
}

UnmapNotify NotifyArgs(const Napi::CallbackInfo& info) {
  UnmapNotify req{};
  req.index = U64Arg(info, 1, "index");
  req.action = U32Arg(info, 2, "action", 1, kUnmapNotifyClearByte | kUnmapNotifySendEvent);
  req.event_channel_port = U32Arg(info, 3, "port", 0, 0xffffffff);
  return req;
}

// gntallocSetUnmapNotify(fd, index, action, port): index is the page's mmap
// offset plus the byte offset within it.
Napi::Value JsGntallocSetUnmapNotify(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0);
  UnmapNotify req = NotifyArgs(info);
  Ioctl(info.Env(), fd, kGntallocSetUnmapNotify, &req, "GNTALLOC_SET_UNMAP_NOTIFY");
  return info.Env().Undefined();
}

// gntdevMapGrantRef(fd, domid, refs): index
Napi::Value JsGntdevMapGrantRef(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  uint32_t domid = U32Arg(info, 1, "domid", 0, kMaxDomid);
  if (!info[2].IsArray()) throw Napi::TypeError::New(env, "refs must be an array of grant references");
  Napi::Array refs = info[2].As<Napi::Array>();
  uint32_t count = refs.Length();
  if (count < 1 || count > kMaxPages) {
    throw Napi::RangeError::New(env, "refs must hold 1.." + std::to_string(kMaxPages) + " grant references, got " +
                                         std::to_string(count));
  }

  size_t bytes = offsetof(GntdevMapGrantRef, refs) + sizeof(GntdevGrantRef) * count;
  std::vector<uint64_t> storage((bytes + 7) / 8, 0);
  auto* req = reinterpret_cast<GntdevMapGrantRef*>(storage.data());
  req->count = count;
  for (uint32_t i = 0; i < count; i++) {
    Napi::Value v = refs.Get(i);
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0 && d <= 0xffffffff) || d != static_cast<double>(static_cast<uint32_t>(d))) {
      throw Napi::TypeError::New(env, "refs[" + std::to_string(i) + "] must be a u32 grant reference");
    }
    req->refs[i].domid = domid;
    req->refs[i].ref = static_cast<uint32_t>(d);
  }
  Ioctl(env, fd, kGntdevMapGrantRef, req, "GNTDEV_MAP_GRANT_REF");
  return Index(env, req->index, "GNTDEV_MAP_GRANT_REF");
}

// gntdevUnmapGrantRef(fd, index, count)
Napi::Value JsGntdevUnmapGrantRef(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0);
  GntdevUnmapGrantRef req{};
  req.index = U64Arg(info, 1, "index");
  req.count = U32Arg(info, 2, "count", 1, kMaxPages);
  Ioctl(info.Env(), fd, kGntdevUnmapGrantRef, &req, "GNTDEV_UNMAP_GRANT_REF");
  return info.Env().Undefined();
}

// gntdevSetUnmapNotify(fd, index, action, port)
Napi::Value JsGntdevSetUnmapNotify(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0);
  UnmapNotify req = NotifyArgs(info);
  Ioctl(info.Env(), fd, kGntdevSetUnmapNotify, &req, "GNTDEV_SET_UNMAP_NOTIFY");
  return info.Env().Undefined();
}

// gntdevSetMaxGrants(fd, count): only some kernels have it (ENOTTY elsewhere).
Napi::Value JsGntdevSetMaxGrants(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0);
  GntdevSetMaxGrants req{};
  req.count = U32Arg(info, 1, "count", 1, 0xffffffff);
  Ioctl(info.Env(), fd, kGntdevSetMaxGrants, &req, "GNTDEV_SET_MAX_GRANTS");
  return info.Env().Undefined();
}

}  // namespace

void InitGrants(Napi::Env env, Napi::Object exports) {
  exports.Set("gntallocAllocGref", Napi::Function::New(env, JsGntallocAllocGref, "gntallocAllocGref"));
  exports.Set("gntallocDeallocGref", Napi::Function::New(env, JsGntallocDeallocGref, "gntallocDeallocGref"));
  exports.Set("gntallocSetUnmapNotify", Napi::Function::New(env, JsGntallocSetUnmapNotify, "gntallocSetUnmapNotify"));
  exports.Set("gntdevMapGrantRef", Napi::Function::New(env, JsGntdevMapGrantRef, "gntdevMapGrantRef"));
  exports.Set("gntdevUnmapGrantRef", Napi::Function::New(env, JsGntdevUnmapGrantRef, "gntdevUnmapGrantRef"));
  exports.Set("gntdevSetUnmapNotify", Napi::Function::New(env, JsGntdevSetUnmapNotify, "gntdevSetUnmapNotify"));
  exports.Set("gntdevSetMaxGrants", Napi::Function::New(env, JsGntdevSetMaxGrants, "gntdevSetMaxGrants"));
}

}  // namespace xen
