// Watcher: an fd watched by libuv (uv_poll), so waiting never blocks the loop.
//
// In evtchn mode each wake-up drains every fired port from the
// (non-blocking) fd and makes one JS call: callback(null, ports). The ports
// stay masked until JS writes them back (evtchnUnmask): an event that fires
// meanwhile stays pending and is delivered at the unmask, and JS can delay
// the unmask of a port that floods it. In plain mode the callback(null)
// only says "readable"; JS reads (used for /dev/xen/xenbus).
//
// An active watcher keeps itself alive (and, while ref'ed, the event loop)
// until close(); close() inside the callback is safe.
#include <fcntl.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <memory>
#include <vector>

#include "args.h"
#include "exports.h"

namespace xen {
namespace {

// Drain at most this many ports per wake-up; the poll is level-triggered,
// so anything left fires again on the next loop turn.
constexpr size_t kMaxPortsPerWake = 4096;

class Watcher : public Napi::ObjectWrap<Watcher> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Watcher",
                       {InstanceMethod<&Watcher::Close>("close"), InstanceMethod<&Watcher::RefLoop>("ref"),
                        InstanceMethod<&Watcher::UnrefLoop>("unref")});
  }

  // new Watcher(fd, evtchn, callback)
  explicit Watcher(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Watcher>(info) {
    Napi::Env env = info.Env();
    fd_ = FdArg(info, 0);
    evtchn_ = BoolArg(info, 1, "evtchn");
    callback_ = Napi::Persistent(FunctionArg(info, 2, "callback"));
    context_ = std::make_unique<Napi::AsyncContext>(env, "XenWatcher");

    int flags = fcntl(fd_, F_GETFL);
    if (flags < 0 || fcntl(fd_, F_SETFL, flags | O_NONBLOCK) < 0) throw ErrnoError(env, errno, "fcntl");

    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok) throw Napi::Error::New(env, "no libuv loop");
    poll_ = new uv_poll_t;
    int rc = uv_poll_init(loop, poll_, fd_);
    if (rc < 0) {
      delete poll_;
      poll_ = nullptr;
      throw ErrnoError(env, -rc, "uv_poll_init");
    }
    poll_->data = this;
    rc = uv_poll_start(poll_, UV_READABLE, OnPoll);
    if (rc < 0) {
      CloseHandle();
      throw ErrnoError(env, -rc, "uv_poll_start");
    }
    // Stay alive while polling, whatever JS keeps; close() lets go.
    Ref();
    // A worker that exits with the watcher open must not leave the handle in its loop.
    napi_add_env_cleanup_hook(env, OnEnvCleanup, this);
    hooked_ = true;
  }

  ~Watcher() override {
    if (hooked_) napi_remove_env_cleanup_hook(Env(), OnEnvCleanup, this);
    CloseHandle();
  }

 private:
  static void OnEnvCleanup(void* self) {
    auto* w = static_cast<Watcher*>(self);
    w->hooked_ = false;
    w->CloseHandle();
  }

  static void OnPoll(uv_poll_t* handle, int status, int /*events*/) {
    auto* w = static_cast<Watcher*>(handle->data);
    // Nothing may throw into libuv. An event can arrive while Node tears the
    // environment down (an exiting process with a peer that just closed):
    // then no JS can run and N-API calls throw; stop watching quietly.
    try {
      w->Fire(status);
    } catch (...) {
      w->CloseHandle();
    }
  }

  void Fire(int status) {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (status < 0) return Fail(ErrnoError(env, -status, "uv_poll"));
    if (!evtchn_) {
      Call({env.Null()});
      return;
    }

    std::vector<uint32_t> ports;
    int error = 0;
    while (ports.size() < kMaxPortsPerWake) {
      uint32_t buf[256];
      ssize_t n = read(fd_, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n < 0) {
        error = errno;
        break;
      }
      if (n == 0) {
        error = -UV_EOF;  // the device (or the emulator's socket) went away
        break;
      }
      ports.insert(ports.end(), buf, buf + n / sizeof(uint32_t));
    }
    if (!ports.empty()) {
      Napi::Array list = Napi::Array::New(env, ports.size());
      for (size_t i = 0; i < ports.size(); i++) list.Set(static_cast<uint32_t>(i), Napi::Number::New(env, ports[i]));
      Call({env.Null(), list});
    }
    if (error != 0 && poll_ != nullptr) Fail(ErrnoError(env, error, "read(evtchn)"));
  }

  // Reports a failure once and stops: a broken fd would otherwise spin.
  void Fail(const Napi::Error& error) {
    CloseHandle();
    Call({error.Value()});
    StopAndRelease();
  }

  void Call(std::initializer_list<napi_value> args) {
    if (callback_.IsEmpty()) return;
    try {
      callback_.MakeCallback(Value(), args, *context_);
    } catch (const Napi::Error& e) {
      // An exception thrown by the callback goes where Node sends uncaught ones.
      napi_fatal_exception(Env(), e.Value());
    }
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    StopAndRelease();
    return info.Env().Undefined();
  }

  Napi::Value RefLoop(const Napi::CallbackInfo& info) {
    if (poll_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
    return info.Env().Undefined();
  }

  Napi::Value UnrefLoop(const Napi::CallbackInfo& info) {
    if (poll_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    return info.Env().Undefined();
  }

  // Idempotent: stops polling, drops the self-reference and the callback.
  void StopAndRelease() {
    if (released_) return;
    released_ = true;
    CloseHandle();
    if (hooked_) napi_remove_env_cleanup_hook(Env(), OnEnvCleanup, this);
    hooked_ = false;
    callback_.Reset();
    Unref();
  }

  void CloseHandle() {
    if (poll_ == nullptr) return;
    uv_poll_stop(poll_);
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
  }

  int fd_ = -1;
  bool evtchn_ = false;
  uv_poll_t* poll_ = nullptr;
  Napi::FunctionReference callback_;
  std::unique_ptr<Napi::AsyncContext> context_;
  bool hooked_ = false;
  bool released_ = false;  // self-reference and callback dropped
};

}  // namespace

void InitWatcher(Napi::Env env, Napi::Object exports) {
  exports.Set("Watcher", Watcher::Define(env));
}

}  // namespace xen
