// workspace: scratch memory that a model's state owns and every block of a forward pass draws its
// temporaries from, so that a decode step allocates nothing once the first step has sized it.
//
//   workspace ws;
//   {
//     auto scope = ws.open();                        // temporaries taken inside live until scope ends
//     tensor_view<float> h = ws.take<float>(shape{B, S, d_ff});
//     ...
//   }                                                // released; the memory is reused by the next take
//
// Memory is a list of 64-byte aligned chunks used as a stack (a bump pointer that scopes rewind).
// A take that does not fit opens a new chunk (the only allocation); when the outermost scope
// closes after that happened, the chunks are merged into one of their total size, so the next
// pass of the same shapes fits without allocating. Views never move while their scope is open.
// One workspace serves one thread: parallel loops take per-thread slices before the loop.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "dtype.hpp"
#include "error.hpp"
#include "memory.hpp"
#include "shape.hpp"
#include "tensor.hpp"

namespace tformer {

/// @brief Reusable scratch memory for temporaries, used as a stack of scopes (see the file comment).
class workspace {
 public:
  workspace() = default;
  workspace(const workspace&) = delete;
  workspace& operator=(const workspace&) = delete;
  workspace(workspace&&) noexcept = default;
  workspace& operator=(workspace&&) noexcept = default;

  /// @brief Releases what was taken after it was opened, when it goes out of scope.
  class scope {
   public:
    scope(const scope&) = delete;
    scope& operator=(const scope&) = delete;
    ~scope() { ws_->release(mark_); }

   private:
    friend class workspace;
    struct mark {
      std::size_t chunk, offset;
    };
    scope(workspace* ws, mark m) noexcept : ws_(ws), mark_(m) {}
    workspace* ws_;
    mark mark_;
  };

  /// @brief Opens a scope: everything taken until it is destroyed is released together.
  [[nodiscard]] scope open() noexcept {
    ++depth_;
    return scope(this, {current_, offset_});
  }

  /// @brief n uninitialized, 64-byte aligned elements of T, valid until the enclosing scope ends.
  template <class T>
  T* take_raw(std::size_t n) {
    static_assert(std::is_trivially_copyable_v<T>, "workspace holds trivially copyable elements");
    if (n > (std::size_t{1} << 62) / sizeof(T))
      throw value_error("tformer::workspace: a request for " + std::to_string(n) + " elements of " +
                        std::to_string(sizeof(T)) + " bytes is too large");
    return static_cast<T*>(bump(round_up(n * sizeof(T))));
  }

  /// @brief An uninitialized contiguous view of shape s, valid until the enclosing scope ends.
  template <element T>
  tensor_view<T> take(const shape& s) {
    return tensor_view<T>(take_raw<T>(static_cast<std::size_t>(s.numel())), s);
  }

  /// @brief Bytes held (all chunks).
  std::size_t capacity() const noexcept {
    std::size_t n = 0;
    for (const auto& c : chunks_) n += c.size;
    return n;
  }
  /// @brief Chunks allocated so far (for tests: it stops growing once a pass has sized the workspace).
  std::size_t allocations() const noexcept { return allocations_; }

 private:
  struct chunk {
    aligned_buffer<std::byte> data;
    std::size_t size = 0;
  };
  static std::size_t round_up(std::size_t bytes) noexcept { return (bytes + buffer_alignment - 1) / buffer_alignment * buffer_alignment; }

  void* bump(std::size_t bytes) {
    if (bytes == 0) bytes = buffer_alignment;  // distinct, valid pointers for empty views
    while (current_ < chunks_.size()) {
      if (offset_ + bytes <= chunks_[current_].size) {
        void* p = chunks_[current_].data.get() + offset_;
        offset_ += bytes;
        return p;
      }
      ++current_;  // this chunk's tail stays unused until the scope that filled it closes
      offset_ = 0;
    }
    const std::size_t size = std::max(bytes, std::max<std::size_t>(capacity(), 64 * 1024));
    chunks_.push_back({allocate_aligned<std::byte>(size), size});
    ++allocations_;
    grew_ = true;
    current_ = chunks_.size() - 1;
    offset_ = bytes;
    return chunks_[current_].data.get();
  }

  void release(scope::mark m) noexcept {
    current_ = m.chunk;
    offset_ = m.offset;
    // merge into one chunk that holds a whole pass, once nothing taken is alive (the outermost
    // scope closed and nothing was taken outside a scope); allocation failure keeps the chunks
    if (--depth_ == 0 && grew_ && chunks_.size() > 1 && m.chunk == 0 && m.offset == 0) {
      try {
        const std::size_t total = capacity();
        chunk merged{allocate_aligned<std::byte>(total), total};
        chunks_.clear();
        chunks_.push_back(std::move(merged));
        ++allocations_;
      } catch (...) {
      }
      current_ = 0;
      offset_ = 0;
    }
    if (depth_ == 0) grew_ = false;
  }

  std::vector<chunk> chunks_;
  std::size_t current_ = 0, offset_ = 0;  // the bump position: chunk index and byte offset in it
  std::size_t depth_ = 0;                 // open scopes
  std::size_t allocations_ = 0;
  bool grew_ = false;
};

/// @brief The caller's workspace, or a private one when the caller gave none (then the
/// temporaries come from the heap each call, as before workspaces existed).
class workspace_ref {
 public:
  explicit workspace_ref(workspace* ws) noexcept : ws_(ws ? ws : &own_) {}
  workspace_ref(const workspace_ref&) = delete;
  workspace_ref& operator=(const workspace_ref&) = delete;
  workspace& operator*() const noexcept { return *ws_; }
  workspace* operator->() const noexcept { return ws_; }
  workspace* get() const noexcept { return ws_; }

 private:
  workspace own_;
  workspace* ws_;
};

}  // namespace tformer
