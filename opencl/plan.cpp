#include "opencl/plan.h"

#include <algorithm>
#include <numeric>

namespace convoy::opencl {

namespace {

bool overlap(const AllocationRecord& a, const AllocationRecord& b) {
  return a.birth < b.death && b.birth < a.death;
}

int64_t align_up(int64_t v, int64_t alignment) { return (v + alignment - 1) / alignment * alignment; }

bool occupies_time(const AllocationRecord& a) { return a.bytes > 0 && a.birth < a.death; }

}  // namespace

int64_t place_allocations(const std::vector<AllocationRecord>& allocs, std::vector<int64_t>& offsets,
                          int64_t alignment) {
  offsets.resize(allocs.size(), -1);
  std::vector<size_t> placed, todo;
  for (size_t i = 0; i < allocs.size(); ++i) {
    if (offsets[i] >= 0) {
      placed.push_back(i);
    } else if (!occupies_time(allocs[i])) {
      offsets[i] = 0;  // never live: any offset serves, and it conflicts with nothing
    } else {
      todo.push_back(i);
    }
  }
  // Largest first: big tensors get first pick of the gaps, small ones fill what is left (the
  // "greedy by size" strategy of TFLite's arena planner).
  std::stable_sort(todo.begin(), todo.end(), [&](size_t x, size_t y) {
    if (allocs[x].bytes != allocs[y].bytes) return allocs[x].bytes > allocs[y].bytes;
    return allocs[x].birth < allocs[y].birth;
  });
  std::vector<std::pair<int64_t, int64_t>> busy;  // [offset, end) of placed allocations live at the same time
  for (size_t i : todo) {
    const AllocationRecord& a = allocs[i];
    const int64_t size = align_up(a.bytes, alignment);
    busy.clear();
    for (size_t j : placed)
      if (occupies_time(allocs[j]) && overlap(a, allocs[j]))
        busy.emplace_back(offsets[j], offsets[j] + align_up(allocs[j].bytes, alignment));
    std::sort(busy.begin(), busy.end());
    // Best fit: the smallest gap between live allocations that holds this one; else above them all.
    int64_t best = -1, best_gap = INT64_MAX, cursor = 0;
    for (const auto& [begin, end] : busy) {
      if (begin > cursor) {
        int64_t gap = begin - cursor;
        if (gap >= size && gap < best_gap) {
          best = cursor;
          best_gap = gap;
        }
      }
      cursor = std::max(cursor, end);
    }
    offsets[i] = best >= 0 ? best : cursor;
    placed.push_back(i);
  }
  int64_t arena = 0;
  for (size_t i = 0; i < allocs.size(); ++i)
    if (occupies_time(allocs[i])) arena = std::max(arena, offsets[i] + align_up(allocs[i].bytes, alignment));
  return arena;
}

MemoryReport memory_report(const std::vector<AllocationRecord>& allocs, int64_t arena_bytes) {
  MemoryReport r;
  r.arena_bytes = arena_bytes;
  r.allocations = static_cast<int64_t>(allocs.size());
  // Sorted by size, the first partner found for each allocation is its largest co-live one.
  std::vector<size_t> order(allocs.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](size_t x, size_t y) { return allocs[x].bytes > allocs[y].bytes; });
  int64_t best = -1;
  for (size_t xi = 0; xi < order.size(); ++xi) {
    const AllocationRecord& a = allocs[order[xi]];
    if (a.scratch) r.largest_scratch_bytes = std::max(r.largest_scratch_bytes, a.bytes);
    if (!occupies_time(a) || a.scratch) continue;
    if (2 * a.bytes <= best) continue;
    for (size_t yi = xi + 1; yi < order.size(); ++yi) {
      const AllocationRecord& b = allocs[order[yi]];
      if (!occupies_time(b) || b.scratch || !overlap(a, b)) continue;
      if (a.bytes + b.bytes > best) {
        best = a.bytes + b.bytes;
        r.largest_pair_bytes[0] = a.bytes;
        r.largest_pair_bytes[1] = b.bytes;
        r.largest_pair_what[0] = a.what;
        r.largest_pair_what[1] = b.what;
      }
      break;
    }
  }
  for (const AllocationRecord& a : allocs)
    if (a.scratch) r.largest_scratch_bytes = std::max(r.largest_scratch_bytes, a.bytes);
  return r;
}

}  // namespace convoy::opencl
