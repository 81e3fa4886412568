// A read-only memory map of a whole file (POSIX mmap; a plain read where mmap is unavailable).
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define TFORMER_HAS_MMAP 1
#else
#define TFORMER_HAS_MMAP 0
#endif

namespace tformer::io {

/// @brief The bytes of a file, mapped read-only for the object's lifetime. Move-only.
class mapped_file {
 public:
  mapped_file() = default;
  /// @brief Maps path; throws io_error naming the path and the system's reason.
  explicit mapped_file(const std::filesystem::path& path) : path_(path.string()) {
#if TFORMER_HAS_MMAP
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("cannot open");
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int e = errno;
      ::close(fd);
      errno = e;
      fail("cannot stat");
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      throw io_error("tformer: '" + path_ + "' is not a regular file");
    }
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        const int e = errno;
        ::close(fd);
        errno = e;
        fail("cannot map");
      }
      data_ = static_cast<const std::byte*>(p);
    }
    ::close(fd);
#else
    std::ifstream in(path, std::ios::binary);
    if (!in) throw io_error("tformer: cannot open '" + path_ + "'");
    copy_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    data_ = reinterpret_cast<const std::byte*>(copy_.data());
    size_ = copy_.size();
#endif
  }
  mapped_file(const mapped_file&) = delete;
  mapped_file& operator=(const mapped_file&) = delete;
  mapped_file(mapped_file&& o) noexcept { swap(o); }
  mapped_file& operator=(mapped_file&& o) noexcept {
    mapped_file tmp(std::move(o));
    swap(tmp);
    return *this;
  }
  ~mapped_file() {
#if TFORMER_HAS_MMAP
    if (data_ && size_) ::munmap(const_cast<std::byte*>(data_), size_);
#endif
  }

  std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
  std::size_t size() const noexcept { return size_; }
  const std::string& path() const noexcept { return path_; }

 private:
  [[noreturn]] void fail(const char* what) const {
    throw io_error(std::string("tformer: ") + what + " '" + path_ + "': " + std::strerror(errno));
  }
  void swap(mapped_file& o) noexcept {
    std::swap(path_, o.path_);
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
#if !TFORMER_HAS_MMAP
    std::swap(copy_, o.copy_);
#endif
  }

  std::string path_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
#if !TFORMER_HAS_MMAP
  std::vector<char> copy_;
#endif
};

}  // namespace tformer::io
