// Opening and closing the Xen device files.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "args.h"
#include "exports.h"

namespace xen {
namespace {

// openDevice(path): fd, opened read-write and close-on-exec as libxengnttab does.
Napi::Value OpenDevice(const Napi::CallbackInfo& info) {
  std::string path = StringArg(info, 0, "path");
  int fd;
  do fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) throw ErrnoError(info.Env(), errno, "open", path);
  return Napi::Number::New(info.Env(), fd);
}

// closeDevice(fd). No retry on EINTR: on Linux the fd is gone either way.
Napi::Value CloseDevice(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0);
  if (close(fd) < 0 && errno != EINTR) throw ErrnoError(info.Env(), errno, "close");
  return info.Env().Undefined();
}

}  // namespace

void InitDevice(Napi::Env env, Napi::Object exports) {
  exports.Set("openDevice", Napi::Function::New(env, OpenDevice, "openDevice"));
  exports.Set("closeDevice", Napi::Function::New(env, CloseDevice, "closeDevice"));
}

}  // namespace xen
