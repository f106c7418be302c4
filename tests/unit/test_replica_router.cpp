// Credit-based routing over replicas and backup copies at the tail (coordinator/replica_router.h).
#include <catch2/catch.hpp>

#include "coordinator/replica_router.h"

using namespace convoy;

TEST_CASE("replica router: replicas take work by credit and measured speed", "[router]") {
  ReplicaRouter r({2}, {0.01}, 3);
  // Equal estimates: work alternates, at most 3 outstanding each.
  std::vector<uint32_t> got;
  while (auto route = r.pick()) {
    got.push_back((*route)[0]);
    r.sent(*route);
  }
  CHECK(got.size() == 6);
  CHECK(std::count(got.begin(), got.end(), 0u) == 3);
  CHECK_FALSE(r.pick());  // both full
  // Replica 1 turns out 4x slower: once measured, replica 0 gets the work while both have room.
  for (int i = 0; i < 20; ++i) {
    r.done({0}, {0.01});
    r.sent({0});
    r.done({1}, {0.04});
    r.sent({1});
  }
  CHECK(r.estimate(0, 1) > 3 * r.estimate(0, 0));
  r.done({0}, {0.01});
  r.done({0}, {0.01});
  r.done({1}, {0.04});
  // replica 0: 1 outstanding, finish 2 x 0.01; replica 1: 2 outstanding, finish 3 x ~0.04
  REQUIRE(r.pick());
  CHECK((*r.pick())[0] == 0);
}

TEST_CASE("replica router: a route per stage, backups only on idle replicas elsewhere", "[router]") {
  ReplicaRouter r({1, 2}, {0.01, 0.02}, 2);
  auto a = r.pick();
  REQUIRE(a);
  CHECK(a->size() == 2);
  r.sent(*a);
  // A backup of `a` needs an idle replica of the replicated stage other than a's; stage 0 has no choice.
  auto b = r.pick_idle(*a);
  REQUIRE(b);
  CHECK((*b)[1] != (*a)[1]);
  CHECK((*b)[0] == 0);
  r.sent(*b);
  CHECK_FALSE(r.pick_idle(*a));  // both replicas of stage 1 are busy now
  r.done(*a, {});
  r.done(*b, {});
  CHECK(r.outstanding(0, 0) == 0);
  ReplicaRouter single({1}, {0.01}, 2);
  single.sent({0});
  CHECK_FALSE(single.pick_idle({0}));  // the same replica again would not help
}
