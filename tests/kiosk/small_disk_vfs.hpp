#pragma once
// A small disk for tests, as SQLite sees it: a VFS that wraps SQLite's default one and refuses,
// with SQLITE_FULL (what a full disk gives), any write that would make the files in the written
// file's folder take more than a set capacity. Deleting a file (the journal's reserve) frees its
// bytes, as on a real disk. Deterministic, unlike filling a real filesystem, and needs no root.
//
//   SmallDisk::install();
//   Journal journal(dir / "journal.sqlite", Journal::Options{.vfs = SmallDisk::kVfsName});
//   SmallDisk::setCapacity(SmallDisk::usedBytes(dir));   // the disk is full now
//   ...
//   SmallDisk::setCapacity(SmallDisk::kUnlimited);       // room again
//
// One capacity for the whole process: tests that use it run one at a time (Catch2 does).
#include <cstdint>
#include <filesystem>

namespace lostcard::kiosk::test {

class SmallDisk {
 public:
  static constexpr const char* kVfsName = "lostcard-small-disk";
  static constexpr std::int64_t kUnlimited = -1;

  // Registers the VFS with SQLite (once; later calls do nothing).
  static void install();
  static void setCapacity(std::int64_t bytes);
  // What the regular files directly in `dir` take now, in bytes (their sizes).
  static std::int64_t usedBytes(const std::filesystem::path& dir);
  // Writes refused so far.
  static int refusedWrites();
};

}  // namespace lostcard::kiosk::test
