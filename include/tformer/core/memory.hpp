// 64-byte aligned storage: one cache line, and a full AVX-512 register.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <new>
#include <type_traits>

namespace tformer {

/// @brief Alignment of every buffer tformer allocates, in bytes.
inline constexpr std::size_t buffer_alignment = 64;

namespace detail {
struct aligned_delete {
  void operator()(void* p) const noexcept { ::operator delete(p, std::align_val_t(buffer_alignment)); }
};
}  // namespace detail

/// @brief Owning pointer to an aligned, uninitialized array of trivially copyable T.
template <class T>
using aligned_buffer = std::unique_ptr<T[], detail::aligned_delete>;

/// @brief Allocates n elements of T aligned to buffer_alignment (not initialized); throws
/// std::bad_array_new_length when n * sizeof(T) does not fit in size_t (as new T[n] would).
template <class T>
aligned_buffer<T> allocate_aligned(std::size_t n) {
  static_assert(std::is_trivially_copyable_v<T>, "aligned buffers hold trivially copyable elements");
  if (n == 0) return aligned_buffer<T>();
  std::size_t bytes = 0;
  if (__builtin_mul_overflow(n, sizeof(T), &bytes)) throw std::bad_array_new_length();
  return aligned_buffer<T>(static_cast<T*>(::operator new(bytes, std::align_val_t(buffer_alignment))));
}

}  // namespace tformer
