#include "small_disk_vfs.hpp"

#include <sqlite3.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>

namespace lostcard::kiosk::test {

namespace {

namespace fs = std::filesystem;

sqlite3_vfs* g_real = nullptr;
sqlite3_vfs g_vfs;
std::atomic<std::int64_t> g_capacity{SmallDisk::kUnlimited};
std::atomic<int> g_refused{0};

// Our file, with the default VFS's file right behind it in the same allocation.
struct File {
  sqlite3_file base;
  const char* name;  // SQLite keeps it valid until xClose; null for nameless temporary files
};

sqlite3_file* real(sqlite3_file* file) {
  return reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + sizeof(File));
}

int xClose(sqlite3_file* f) { return real(f)->pMethods->xClose(real(f)); }
int xRead(sqlite3_file* f, void* out, int amount, sqlite3_int64 offset) {
  return real(f)->pMethods->xRead(real(f), out, amount, offset);
}
int xWrite(sqlite3_file* f, const void* data, int amount, sqlite3_int64 offset) {
  const std::int64_t capacity = g_capacity.load();
  const char* name = reinterpret_cast<File*>(f)->name;
  if (capacity >= 0 && name != nullptr) {
    sqlite3_int64 size = 0;
    if (const int rc = real(f)->pMethods->xFileSize(real(f), &size); rc != SQLITE_OK) {
      return rc;
    }
    const std::int64_t growth = offset + amount - size;
    if (growth > 0 && SmallDisk::usedBytes(fs::path(name).parent_path()) + growth > capacity) {
      ++g_refused;
      return SQLITE_FULL;
    }
  }
  return real(f)->pMethods->xWrite(real(f), data, amount, offset);
}
int xTruncate(sqlite3_file* f, sqlite3_int64 size) {
  return real(f)->pMethods->xTruncate(real(f), size);
}
int xSync(sqlite3_file* f, int flags) { return real(f)->pMethods->xSync(real(f), flags); }
int xFileSize(sqlite3_file* f, sqlite3_int64* size) {
  return real(f)->pMethods->xFileSize(real(f), size);
}
int xLock(sqlite3_file* f, int level) { return real(f)->pMethods->xLock(real(f), level); }
int xUnlock(sqlite3_file* f, int level) { return real(f)->pMethods->xUnlock(real(f), level); }
int xCheckReservedLock(sqlite3_file* f, int* out) {
  return real(f)->pMethods->xCheckReservedLock(real(f), out);
}
int xFileControl(sqlite3_file* f, int op, void* arg) {
  return real(f)->pMethods->xFileControl(real(f), op, arg);
}
int xSectorSize(sqlite3_file* f) { return real(f)->pMethods->xSectorSize(real(f)); }
int xDeviceCharacteristics(sqlite3_file* f) {
  return real(f)->pMethods->xDeviceCharacteristics(real(f));
}
int xShmMap(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  return real(f)->pMethods->xShmMap(real(f), region, size, extend, out);
}
int xShmLock(sqlite3_file* f, int offset, int n, int flags) {
  return real(f)->pMethods->xShmLock(real(f), offset, n, flags);
}
void xShmBarrier(sqlite3_file* f) { real(f)->pMethods->xShmBarrier(real(f)); }
int xShmUnmap(sqlite3_file* f, int delete_flag) {
  return real(f)->pMethods->xShmUnmap(real(f), delete_flag);
}
int xFetch(sqlite3_file* f, sqlite3_int64 offset, int amount, void** out) {
  return real(f)->pMethods->xFetch(real(f), offset, amount, out);
}
int xUnfetch(sqlite3_file* f, sqlite3_int64 offset, void* p) {
  return real(f)->pMethods->xUnfetch(real(f), offset, p);
}

const sqlite3_io_methods kMethods = {
    .iVersion = 3,
    .xClose = xClose,
    .xRead = xRead,
    .xWrite = xWrite,
    .xTruncate = xTruncate,
    .xSync = xSync,
    .xFileSize = xFileSize,
    .xLock = xLock,
    .xUnlock = xUnlock,
    .xCheckReservedLock = xCheckReservedLock,
    .xFileControl = xFileControl,
    .xSectorSize = xSectorSize,
    .xDeviceCharacteristics = xDeviceCharacteristics,
    .xShmMap = xShmMap,
    .xShmLock = xShmLock,
    .xShmBarrier = xShmBarrier,
    .xShmUnmap = xShmUnmap,
    .xFetch = xFetch,
    .xUnfetch = xUnfetch,
};

int xOpen(sqlite3_vfs*, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  auto* ours = reinterpret_cast<File*>(file);
  ours->base.pMethods = nullptr;
  ours->name = name;
  const int rc = g_real->xOpen(g_real, name, real(file), flags, out_flags);
  if (rc != SQLITE_OK) {
    if (real(file)->pMethods != nullptr) {
      real(file)->pMethods->xClose(real(file));
    }
    return rc;
  }
  if (real(file)->pMethods->iVersion < 3) {
    real(file)->pMethods->xClose(real(file));
    return SQLITE_CANTOPEN;  // the methods above assume a version 3 file
  }
  ours->base.pMethods = &kMethods;
  return SQLITE_OK;
}

}  // namespace

void SmallDisk::install() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_real = sqlite3_vfs_find(nullptr);
    if (g_real == nullptr) {
      throw std::runtime_error("SmallDisk: SQLite has no default VFS");
    }
    std::memcpy(&g_vfs, g_real, sizeof(g_vfs));
    g_vfs.pNext = nullptr;
    g_vfs.zName = kVfsName;
    g_vfs.szOsFile = static_cast<int>(sizeof(File)) + g_real->szOsFile;
    g_vfs.xOpen = xOpen;
    if (sqlite3_vfs_register(&g_vfs, 0) != SQLITE_OK) {
      throw std::runtime_error("SmallDisk: cannot register the VFS");
    }
  });
}

void SmallDisk::setCapacity(std::int64_t bytes) { g_capacity = bytes; }

std::int64_t SmallDisk::usedBytes(const fs::path& dir) {
  std::int64_t used = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    std::error_code entry_ec;
    if (it->is_regular_file(entry_ec)) {
      const auto size = it->file_size(entry_ec);
      if (!entry_ec) {
        used += static_cast<std::int64_t>(size);
      }
    }
  }
  return used;
}

int SmallDisk::refusedWrites() { return g_refused.load(); }

}  // namespace lostcard::kiosk::test
