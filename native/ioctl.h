// ioctl that retries on EINTR and throws an errno error naming the request.
#pragma once

#include <sys/ioctl.h>

#include <cerrno>
#include <string>

#include "args.h"

namespace xen {

inline int Ioctl(Napi::Env env, int fd, unsigned long request, void* arg, const char* name) {
  int rc;
  do rc = ioctl(fd, request, arg);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) throw ErrnoError(env, errno, std::string("ioctl(") + name + ")");
  return rc;
}

}  // namespace xen
